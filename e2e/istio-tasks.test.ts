// Istio's own task files on a real mesh, checked against what Istio's docs say happens.
// Bookinfo (productpage → details, reviews v1/v2/v3 → ratings) and httpbin v1/v2 run as
// small apps, each behind its own sidecar with Bookinfo's service accounts, and a `sleep`
// workload is the client, as in the docs. Each test applies the task's files, unchanged
// from e2e/istio-corpus/, the way `kubectl apply` would (an object replaces the one of the
// same kind, namespace and name), and waits until the behaviour the docs describe is in
// force; before each, the config is emptied and the mesh checked back at its defaults.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as h from './harness';

const CORPUS = path.join(__dirname, 'istio-corpus');
const TIMEOUT = 15_000;
const FLAGS = 'x-tandem-response-flags';

interface Page {
  details: number;
  reviews: { status: number; version?: string; ratings?: number; flags?: string };
}

/** GET with a client-side timeout, through a sidecar's outbound port. */
function get(port: number, host: string, p: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, headers: { host, ...headers }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${host}${p} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const pick = (from: http.IncomingHttpHeaders): Record<string, string> => (typeof from['end-user'] === 'string' ? { 'end-user': from['end-user'] } : {});

describe('Istio task files on a real mesh behave as Istio documents', () => {
  let dir: string;
  let configPath: string;
  let cp: h.ControlPlane;
  const sc: Record<string, h.Sidecar> = {};
  const applied = new Map<string, unknown>();
  /** what httpbin v2 saw: the mirror's Host headers */
  const mirrored: string[] = [];
  let httpbinDelayMs = 0;

  const json = (s: string) => JSON.parse(s) as Record<string, unknown>;

  /** `kubectl apply -f` of corpus files: same kind/namespace/name replaces. */
  function apply(...files: string[]): void {
    for (const f of files) {
      for (const doc of parseAllDocuments(fs.readFileSync(path.join(CORPUS, f), 'utf8'))) {
        const o = doc.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string } } | null;
        if (!o?.kind) continue;
        applied.set(`${o.kind}/${o.metadata?.namespace ?? 'default'}/${o.metadata?.name}`, o);
      }
    }
    fs.writeFileSync(configPath, [...applied.values()].map((o) => stringify(o)).join('---\n'));
  }
  function reset(): void {
    applied.clear();
    fs.writeFileSync(configPath, '');
  }

  /** The sleep workload asks for /productpage, as a browser would. */
  const productpage = async (user?: string): Promise<{ status: number; page?: Page }> => {
    const r = await get(sc.sleep.outbound, 'productpage', '/productpage', user ? { 'end-user': user } : {}, 20_000);
    return { status: r.status, page: r.status === 200 ? (JSON.parse(r.body) as Page) : undefined };
  };

  async function diagnostics(): Promise<string> {
    const body = (port: number, p: string) => h.request(port, { path: p }).then((r) => r.body.slice(0, 3000), (e: Error) => e.message);
    return [`debug/config: ${await body(cp.admin, '/debug/config')}`, `cp: ${cp.proc.output().slice(-2000)}`].join('\n');
  }
  async function until<T>(what: string, fn: () => Promise<T | undefined | false>): Promise<T> {
    try {
      return await h.waitFor(what, fn, TIMEOUT, 100);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics()}`);
    }
  }
  /** n sequential product pages; how many reviews answers came from each version */
  async function versions(n: number, user?: string): Promise<Record<string, number>> {
    const seen: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const p = await productpage(user);
      const v = p.page?.reviews.version ?? `status ${p.page?.reviews.status ?? p.status}`;
      seen[v] = (seen[v] ?? 0) + 1;
    }
    return seen;
  }

  beforeAll(async () => {
    dir = h.tmpDir('tandem-istio-tasks-');
    configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, '');
    cp = await h.startControlPlane(dir, configPath);

    const answer = (res: http.ServerResponse, o: unknown) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(o));
    };
    // productpage: details and reviews through its own sidecar, the end-user header passed on
    const productpageApp = await h.startApp('productpage', (req, res) => {
      req.resume();
      void (async () => {
        const hdrs = pick(req.headers);
        const [d, r] = await Promise.all([
          get(sc.productpage.outbound, 'details', '/details/0', hdrs).catch(() => ({ status: 0, body: '', headers: {} })),
          get(sc.productpage.outbound, 'reviews', '/reviews/0', hdrs).catch(() => ({ status: 0, body: '', headers: {} })),
        ]);
        const reviews = r.status === 200 ? { status: 200, ...(json(r.body) as object) } : { status: r.status, flags: String((r.headers as http.IncomingHttpHeaders)[FLAGS] ?? '') };
        answer(res, { details: d.status, reviews });
      })();
    });
    const detailsApp = await h.startApp('details', (req, res) => (req.resume(), answer(res, { id: 0 })));
    const reviewsApp = (version: string) =>
      h.startApp(`reviews-${version}`, (req, res) => {
        req.resume();
        // v1 shows no stars; v2 and v3 ask ratings
        if (version === 'v1') return answer(res, { version });
        get(sc[`reviews-${version}`].outbound, 'ratings', '/ratings/0', pick(req.headers)).then(
          (r) => answer(res, { version, ratings: r.status }),
          () => answer(res, { version, ratings: 0 }),
        );
      });
    const ratingsApp = await h.startApp('ratings', (req, res) => (req.resume(), answer(res, { ratings: { reviewer1: 5 } })));
    const httpbin = (version: string) =>
      h.startApp(`httpbin-${version}`, (req, res) => {
        if (version === 'v2') mirrored.push(String(req.headers.host));
        req.resume();
        setTimeout(() => answer(res, { version }), httpbinDelayMs);
      });
    const sleepApp = await h.startApp('sleep');
    const [r1, r2, r3, hb1, hb2] = await Promise.all([reviewsApp('v1'), reviewsApp('v2'), reviewsApp('v3'), httpbin('v1'), httpbin('v2')]);

    const start = (name: string, service: string, app: h.App, version: string) =>
      h.startSidecar(cp, service, app.port, { app: service, version }, { serviceAccount: service === 'sleep' || service === 'httpbin' ? service : `bookinfo-${service}` }).then((s) => (sc[name] = s));
    // three at a time: nine sidecars making keys and asking for certificates at once crowd a small machine
    const all: [string, string, h.App, string][] = [
      ['sleep', 'sleep', sleepApp, 'v1'],
      ['productpage', 'productpage', productpageApp, 'v1'],
      ['details', 'details', detailsApp, 'v1'],
      ['reviews-v1', 'reviews', r1, 'v1'],
      ['reviews-v2', 'reviews', r2, 'v2'],
      ['reviews-v3', 'reviews', r3, 'v3'],
      ['ratings', 'ratings', ratingsApp, 'v1'],
      ['httpbin-v1', 'httpbin', hb1, 'v1'],
      ['httpbin-v2', 'httpbin', hb2, 'v2'],
    ];
    for (let i = 0; i < all.length; i += 3) await Promise.all(all.slice(i, i + 3).map((a) => start(...a)));
  });

  afterAll(async () => {
    await h.stopAll();
    await h.closeApps();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    reset();
    httpbinDelayMs = 0;
    mirrored.length = 0;
    // no config: every version of reviews answers, and every call succeeds
    await until('the mesh at its defaults (all three reviews versions seen, all calls 200)', async () => {
      const seen = await versions(9);
      return !!seen.v1 && !!seen.v2 && !!seen.v3;
    });
  });

  it('request routing: all traffic to v1, then end-user jason to v2 (virtual-service-all-v1, virtual-service-reviews-test-v2)', async () => {
    apply('bookinfo/destination-rule-all.yaml', 'bookinfo/virtual-service-all-v1.yaml');
    await until('reviews v1 only', async () => (await versions(5)).v1 === 5);
    expect(await versions(20)).toEqual({ v1: 20 });

    apply('bookinfo/virtual-service-reviews-test-v2.yaml');
    await until('jason sees v2', async () => (await versions(3, 'jason')).v2 === 3);
    // "the black stars": v2 calls ratings, which answers
    const jason = await productpage('jason');
    expect(jason.page).toMatchObject({ details: 200, reviews: { status: 200, version: 'v2', ratings: 200 } });
    expect(await versions(10, 'jason')).toEqual({ v2: 10 });
    expect(await versions(10)).toEqual({ v1: 10 });
    expect(await versions(10, 'someone-else')).toEqual({ v1: 10 });
  });

  it('fault injection: an HTTP abort for jason only (virtual-service-ratings-test-abort)', async () => {
    apply('bookinfo/destination-rule-all.yaml', 'bookinfo/virtual-service-all-v1.yaml', 'bookinfo/virtual-service-reviews-test-v2.yaml', 'bookinfo/virtual-service-ratings-test-abort.yaml');
    // "Ratings service is currently unavailable": reviews v2 gets a 500 from ratings for jason
    await until('ratings aborted with 500 for jason', async () => (await productpage('jason')).page?.reviews.ratings === 500);
    for (let i = 0; i < 10; i++) expect((await productpage('jason')).page?.reviews).toMatchObject({ version: 'v2', ratings: 500 });
    // and the abort is the proxy's, flagged FI
    const direct = await get(sc['reviews-v2'].outbound, 'ratings', '/ratings/0', { 'end-user': 'jason' });
    expect(direct.status).toBe(500);
    expect(direct.headers[FLAGS]).toBe('FI');
    // everyone else: ratings untouched
    const other = await get(sc['reviews-v2'].outbound, 'ratings', '/ratings/0');
    expect(other.status).toBe(200);
  });

  it('traffic shifting: 50% to v3, then all of it (virtual-service-reviews-50-v3, virtual-service-reviews-v3)', async () => {
    apply('bookinfo/destination-rule-all.yaml', 'bookinfo/virtual-service-all-v1.yaml');
    await until('reviews v1 only', async () => (await versions(5)).v1 === 5);
    apply('bookinfo/virtual-service-reviews-50-v3.yaml');
    await until('v3 appears', async () => !!(await versions(6)).v3);
    const split = await versions(100);
    expect(Object.keys(split).sort()).toEqual(['v1', 'v3']);
    expect(split.v3).toBeGreaterThanOrEqual(40);
    expect(split.v3).toBeLessThanOrEqual(60);
    apply('bookinfo/virtual-service-reviews-v3.yaml');
    await until('reviews v3 only', async () => (await versions(5)).v3 === 5);
    expect(await versions(20)).toEqual({ v3: 20 });
  });

  it('request timeouts: a 2 s ratings delay is waited out, then cut by a 0.5 s reviews timeout with 504 (request-timeouts 1-3)', async () => {
    apply('bookinfo/destination-rule-all.yaml', 'istio.io/request-timeouts-1.yaml', 'istio.io/request-timeouts-2.yaml');
    // "the Bookinfo application works normally (with ratings stars displayed), but there is a 2 second delay"
    const delayed = await until('reviews v2 with a delayed ratings', async () => {
      const t0 = Date.now();
      const p = await productpage();
      return p.page?.reviews.version === 'v2' && p.page.reviews.ratings === 200 && Date.now() - t0 >= 1900 && p;
    });
    expect(delayed.page?.details).toBe(200);

    apply('istio.io/request-timeouts-3.yaml');
    // "returns in about 1 second instead of 2, and the reviews are unavailable": reviews answers 504 UT
    const cut = await until('reviews cut by its timeout', async () => {
      const p = await productpage();
      return p.page?.reviews.status === 504 && p;
    });
    expect(cut.page?.reviews.flags).toBe('UT');
    expect(cut.page?.details).toBe(200);
  });

  it('circuit breaking: concurrent requests beyond one connection and one pending are refused with 503 UO (circuit-breaking)', async () => {
    apply('istio.io/circuit-breaking-1.yaml');
    httpbinDelayMs = 300;
    const burst = async () => {
      const rs = await Promise.all(Array.from({ length: 12 }, () => get(sc.sleep.outbound, 'httpbin', '/get')));
      return { ok: rs.filter((r) => r.status === 200).length, overflow: rs.filter((r) => r.status === 503 && r.headers[FLAGS] === 'UO').length, all: rs.length };
    };
    const b = await until('some requests tripped the circuit breaker', async () => {
      const r = await burst();
      return r.overflow > 0 && r;
    });
    // "most requests made it, some were refused": one in flight plus one pending at a time
    expect(b.ok).toBeGreaterThanOrEqual(1);
    expect(b.ok + b.overflow).toBe(b.all);
    expect(b.overflow).toBeGreaterThanOrEqual(b.all - 4);
  });

  it('mirroring: all traffic to httpbin v1, a copy of each request to v2 with Host httpbin-shadow (mirroring 5, 7)', async () => {
    apply('istio.io/mirroring-5.yaml');
    await until('httpbin v1 only', async () => {
      const rs = await Promise.all(Array.from({ length: 4 }, () => get(sc.sleep.outbound, 'httpbin', '/headers')));
      return rs.every((r) => r.status === 200 && json(r.body).version === 'v1');
    });
    mirrored.length = 0;
    for (let i = 0; i < 5; i++) await get(sc.sleep.outbound, 'httpbin', '/headers');
    expect(mirrored).toEqual([]);

    apply('istio.io/mirroring-7.yaml');
    await until('httpbin v2 receives mirrored requests', async () => {
      mirrored.length = 0;
      const r = await get(sc.sleep.outbound, 'httpbin', '/headers');
      await new Promise((res) => setTimeout(res, 100));
      return r.status === 200 && mirrored.length > 0;
    });
    mirrored.length = 0;
    const rs: string[] = [];
    for (let i = 0; i < 10; i++) rs.push(String(json((await get(sc.sleep.outbound, 'httpbin', '/headers')).body).version));
    // the caller always gets v1's answer; v2 sees each request, its Host marked as a shadow
    expect(rs).toEqual(Array(10).fill('v1'));
    await until('all 10 mirrored copies arrived', async () => mirrored.length >= 10);
    expect(new Set(mirrored)).toEqual(new Set(['httpbin-shadow']));
  });

  it('authorization for HTTP traffic: deny all, then allow productpage, details, reviews and ratings one by one (authz-http 1-5)', async () => {
    apply('istio.io/authz-http-1.yaml');
    // "RBAC: access denied" on the product page
    await until('everything denied', async () => (await productpage()).status === 403);

    apply('istio.io/authz-http-2.yaml');
    // the page loads, but details and reviews are still denied to productpage
    const page = await until('productpage allowed, its backends denied', async () => {
      const p = await productpage();
      return p.status === 200 && p;
    });
    expect(page.page).toMatchObject({ details: 403, reviews: { status: 403 } });

    apply('istio.io/authz-http-3.yaml', 'istio.io/authz-http-4.yaml');
    // "the reviews show 'Ratings service currently unavailable'": ratings still denied to reviews
    await until('details and reviews allowed, ratings denied', async () => {
      const p = await productpage('jason');
      return p.page?.details === 200 && p.page.reviews.status === 200 && (p.page.reviews.version === 'v1' || p.page.reviews.ratings === 403);
    });
    // a POST is not a GET: productpage-viewer allows only GET
    const post = await h.request(sc.sleep.outbound, { host: 'productpage', path: '/productpage', method: 'POST', body: 'x' });
    expect(post.status).toBe(403);

    apply('istio.io/authz-http-5.yaml');
    await until('ratings allowed for reviews', async () => {
      const seen = await Promise.all(Array.from({ length: 6 }, () => productpage()));
      return seen.every((p) => p.page?.details === 200 && p.page.reviews.status === 200 && (p.page.reviews.version === 'v1' || p.page.reviews.ratings === 200));
    });
    // and sleep, not reviews, is still refused by ratings
    const fromSleep = await get(sc.sleep.outbound, 'ratings', '/ratings/0');
    expect(fromSleep.status).toBe(403);
  });
});
