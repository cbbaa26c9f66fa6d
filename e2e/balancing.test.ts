// Load balancing, outlier detection, circuit breakers and sticky splits end to end, with
// real processes on 127.0.0.1: one control plane watching an Istio YAML file, one client
// sidecar that every request enters (as its application would send them), and a service
// per behaviour, each endpoint a tiny app behind its own sidecar:
//
//   flaky   two endpoints, one answers 503 to everything but /health    outlier detection
//   speed   two endpoints, one answers in 1 ms, the other in 100 ms     LEAST_REQUEST
//   hashed  three endpoints; subsets ring / maglev / cookie             consistent hash
//   pooled  one endpoint holding each request 300 ms; subsets per limit circuit breakers
//   canary  v1 and v2                                                   tandem.io/split-key
//
// Every VirtualService route tags its answers `x-route: <name>`, so a test knows an answer
// came from the route under test and not from the default route used while it was not yet
// in force.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

interface ClusterInfo {
  name: string;
  lb_policy: string;
  endpoints: { address: string; active_requests: number; total_requests: number }[];
}

function meshYaml(canary: { v1: number; v2: number }): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: flaky}
spec:
  host: flaky
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 3s, maxEjectionPercent: 100}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: flaky}
spec:
  hosts: [flaky]
  http:
  - headers: {response: {set: {x-route: flaky}}}
    retries: {attempts: 0}
    route: [{destination: {host: flaky}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: speed}
spec:
  host: speed
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: speed}
spec:
  hosts: [speed]
  http:
  - headers: {response: {set: {x-route: speed}}}
    retries: {attempts: 0}
    route: [{destination: {host: speed}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: hashed}
spec:
  host: hashed
  subsets:
  - name: ring
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpHeaderName: x-user}}
  - name: maglev
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {}}}
  - name: cookie
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpCookie: {name: sticky, ttl: 60s}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: hashed}
spec:
  hosts: [hashed]
  http:
  - match: [{uri: {prefix: /maglev}}]
    headers: {response: {set: {x-route: hashed-maglev}}}
    route: [{destination: {host: hashed, subset: maglev}}]
  - match: [{uri: {prefix: /cookie}}]
    headers: {response: {set: {x-route: hashed-cookie}}}
    route: [{destination: {host: hashed, subset: cookie}}]
  - headers: {response: {set: {x-route: hashed-ring}}}
    route: [{destination: {host: hashed, subset: ring}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: pooled}
spec:
  host: pooled
  subsets:
  - name: capped
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {http: {http2MaxRequests: 3}}
  - name: conns
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 3}, http: {http1MaxPendingRequests: 1}}
  - name: zeros
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 0}, http: {http1MaxPendingRequests: 0, http2MaxRequests: 0}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pooled}
spec:
  hosts: [pooled]
  http:
  - match: [{uri: {prefix: /conns}}]
    headers: {response: {set: {x-route: pooled-conns}}}
    retries: {attempts: 0}
    route: [{destination: {host: pooled, subset: conns}}]
  - match: [{uri: {prefix: /zeros}}]
    headers: {response: {set: {x-route: pooled-zeros}}}
    retries: {attempts: 0}
    route: [{destination: {host: pooled, subset: zeros}}]
  - headers: {response: {set: {x-route: pooled-capped}}}
    retries: {attempts: 0}
    route: [{destination: {host: pooled, subset: capped}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: canary}
spec:
  host: canary
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: canary
  annotations:
    tandem.io/split-key: "header:x-user-id"
spec:
  hosts: [canary]
  http:
  - headers: {response: {set: {x-route: "canary-${canary.v1}-${canary.v2}"}}}
    route:
    - {destination: {host: canary, subset: v1}, weight: ${canary.v1}}
    - {destination: {host: canary, subset: v2}, weight: ${canary.v2}}
`;
}

// The harness's agent allows 16 sockets; the pool and least-request tests need more callers
// in flight than that, each on its own connection to the client sidecar.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

interface Answer extends h.HttpResult {
  /** the app that answered (from its JSON body), or undefined for a proxy's own reply */
  app?: string;
  ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An app answering `{"app": name}` after `delayMs`, or what `status` says for the path. */
function behaviour(name: string, o: { delayMs?: number; status?: (path: string) => number; onStart?: () => void; onEnd?: () => void } = {}) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    o.onStart?.();
    req.resume();
    req.on('end', () => {
      const answer = () => {
        o.onEnd?.();
        const status = o.status?.(req.url ?? '/') ?? 200;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ app: name, status }));
      };
      if (o.delayMs) setTimeout(answer, o.delayMs);
      else answer();
    });
  };
}

describe('balancing e2e: load balancers, outlier detection, circuit breakers, sticky splits', () => {
  let dir: string;
  let configPath: string;
  let cp: h.ControlPlane;
  let client: h.Sidecar;
  const apps: Record<string, h.App> = {};
  const sidecars: Record<string, h.Sidecar> = {};
  // the pooled app's requests in flight, and the most seen at once since the last reset
  const pooled = { now: 0, max: 0 };

  const writeConfig = (text: string): void => fs.writeFileSync(configPath, text);

  /** One request through the client sidecar, as its application would send it. */
  function send(host: string, p: string, headers: Record<string, string> = {}): Promise<Answer> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: client.outbound, path: p, headers: { ...headers, host }, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          let app: string | undefined;
          try {
            app = (JSON.parse(body) as { app?: string }).app;
          } catch {
            app = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, app, ms: performance.now() - t0 });
        });
      });
      req.once('error', reject);
      req.end();
    });
  }

  const clusters = () => h.json<ClusterInfo[]>(client.admin, '/clusters');

  /** The client sidecar knows every endpoint of every cluster of this mesh. */
  async function converged(): Promise<boolean> {
    const cs = await clusters();
    const eps = (re: RegExp) => new Set(cs.filter((c) => re.test(c.name)).flatMap((c) => c.endpoints.map((e) => e.address)));
    const want = (re: RegExp, ...names: string[]) => {
      const have = eps(re);
      return names.every((n) => have.has(`127.0.0.1:${sidecars[n].inbound}`));
    };
    return (
      want(/\|\|flaky\./, 'flakyGood', 'flakyBad') &&
      want(/\|\|speed\./, 'fast', 'slow') &&
      ['ring', 'maglev', 'cookie'].every((s) => want(new RegExp(`\\|${s}\\|hashed\\.`), 'hashedA', 'hashedB', 'hashedC')) &&
      ['capped', 'conns', 'zeros'].every((s) => want(new RegExp(`\\|${s}\\|pooled\\.`), 'pooled')) &&
      want(/\|v1\|canary\./, 'canaryV1') &&
      want(/\|v2\|canary\./, 'canaryV2')
    );
  }

  /** Waits until requests for host+path answer from the VirtualService route tagged `tag`. */
  async function routeInForce(host: string, p: string, tag: string, headers: Record<string, string> = {}): Promise<void> {
    let last = '';
    await h.waitFor(
      `route ${tag} in force`,
      async () => {
        const r = await send(host, p, headers);
        last = `${r.status} x-route=${String(r.headers['x-route'])} ${r.body.slice(0, 200)}`;
        return r.headers['x-route'] === tag;
      },
      15_000,
      100,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last answer: ${last}`);
    });
  }

  beforeAll(async () => {
    dir = h.tmpDir('tandem-balancing-e2e-');
    configPath = path.join(dir, 'mesh.yaml');
    writeConfig(meshYaml({ v1: 90, v2: 10 }));
    cp = await h.startControlPlane(dir, configPath);

    apps.client = await h.startApp('client');
    apps.flakyGood = await h.startApp('flaky-good', behaviour('flaky-good'));
    apps.flakyBad = await h.startApp('flaky-bad', behaviour('flaky-bad', { status: (p) => (p === '/health' ? 200 : 503) }));
    apps.fast = await h.startApp('fast', behaviour('fast', { delayMs: 1 }));
    apps.slow = await h.startApp('slow', behaviour('slow', { delayMs: 100 }));
    for (const n of ['A', 'B', 'C']) apps[`hashed${n}`] = await h.startApp(`hashed-${n}`, behaviour(`hashed-${n}`));
    apps.pooled = await h.startApp(
      'pooled',
      behaviour('pooled', {
        delayMs: 300,
        onStart: () => (pooled.max = Math.max(pooled.max, ++pooled.now)),
        onEnd: () => pooled.now--,
      }),
    );
    apps.canaryV1 = await h.startApp('canary-v1', behaviour('canary-v1'));
    apps.canaryV2 = await h.startApp('canary-v2', behaviour('canary-v2'));

    const workloads: [string, string, Record<string, string>][] = [
      ['flakyGood', 'flaky', { version: 'v1' }],
      ['flakyBad', 'flaky', { version: 'v1' }],
      ['fast', 'speed', { version: 'v1' }],
      ['slow', 'speed', { version: 'v1' }],
      ['hashedA', 'hashed', { version: 'v1' }],
      ['hashedB', 'hashed', { version: 'v1' }],
      ['hashedC', 'hashed', { version: 'v1' }],
      ['pooled', 'pooled', { version: 'v1' }],
      ['canaryV1', 'canary', { version: 'v1' }],
      ['canaryV2', 'canary', { version: 'v2' }],
    ];
    const started = await Promise.all([
      h.startSidecar(cp, 'client', apps.client.port),
      ...workloads.map(([name, service, labels]) => h.startSidecar(cp, service, apps[name].port, labels)),
    ]);
    client = started[0];
    workloads.forEach(([name], i) => (sidecars[name] = started[i + 1]));

    try {
      await h.waitFor('the client sidecar to learn every endpoint', converged, 20_000, 100);
    } catch (err) {
      const cs = await h.request(client.admin, { path: '/clusters' }).catch((e: Error) => e.message);
      throw new Error(`${(err as Error).message}\nclusters: ${JSON.stringify(cs).slice(0, 6000)}\ncp: ${cp.proc.output().slice(-3000)}`);
    }
    // every route of the config in force (flaky by /health, which both of its apps answer 200)
    await routeInForce('flaky', '/health', 'flaky');
    await routeInForce('speed', '/', 'speed');
    await routeInForce('hashed', '/', 'hashed-ring', { 'x-user': 'warm-up' });
    await routeInForce('hashed', '/maglev', 'hashed-maglev', { 'x-user': 'warm-up' });
    await routeInForce('hashed', '/cookie', 'hashed-cookie');
    await routeInForce('pooled', '/', 'pooled-capped');
    await routeInForce('pooled', '/conns', 'pooled-conns');
    await routeInForce('canary', '/', 'canary-90-10', { 'x-user-id': 'warm-up' });
  });

  afterAll(async () => {
    agent.destroy();
    await h.stopAll();
    await h.closeApps();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ejects an endpoint after 3 consecutive 5xx, sends it nothing while ejected, tries it again after baseEjectionTime, and ejects it longer the second time', async () => {
    const good = apps.flakyGood;
    const bad = apps.flakyBad;
    const flaky = (p = '/work') => send('flaky', p);

    // Round robin alternates the two, so the bad one sees its third 503 within a few requests.
    const before = bad.hits;
    const early: Answer[] = [];
    for (let i = 0; i < 20 && bad.hits - before < 3; i++) early.push(await flaky());
    const ejectedAt = performance.now();
    expect(bad.hits - before, 'the bad endpoint was tried 3 times').toBe(3);
    const fromBad = early.filter((r) => r.app === 'flaky-bad');
    expect(fromBad.map((r) => r.status)).toEqual([503, 503, 503]);
    for (const r of fromBad) expect(r.headers['x-tandem-response-flags'], 'the upstream 503, not a proxy reply').toBeUndefined();

    // Ejected: for the next ~2 s (of the 3 s ejection) every request goes to the good one.
    const during = { good: good.hits, bad: bad.hits };
    const window: Answer[] = [];
    while (performance.now() - ejectedAt < 2000) {
      window.push(...(await Promise.all([flaky(), flaky()])));
      await sleep(10);
    }
    console.info(`ejected: ${window.length} requests in ${(performance.now() - ejectedAt).toFixed(0)} ms, all to the good endpoint`);
    expect(window.length).toBeGreaterThan(20);
    expect(bad.hits - during.bad, 'requests reaching the ejected endpoint').toBe(0);
    expect(good.hits - during.good).toBe(window.length);
    expect(window.filter((r) => r.status !== 200 || r.app !== 'flaky-good')).toEqual([]);
    // the client sidecar's admin counts them on the good endpoint only
    const flakyCluster = (await clusters()).find((c) => /^[^|]*\|[^|]*\|\|flaky\./.test(c.name))!;
    const ep = (sc: h.Sidecar) => flakyCluster.endpoints.find((e) => e.address === `127.0.0.1:${sc.inbound}`)!;
    expect(ep(sidecars.flakyGood).total_requests).toBeGreaterThanOrEqual(window.length);
    expect(ep(sidecars.flakyBad).active_requests).toBe(0);

    // After baseEjectionTime (3 s) the bad endpoint is tried again.
    const back = await h.waitFor(
      'the ejected endpoint to be tried again',
      async () => {
        const seen = bad.hits;
        await flaky();
        return bad.hits > seen ? performance.now() : undefined;
      },
      6000,
      20,
    );
    const outMs = back - ejectedAt;
    console.info(`first ejection: tried again ${outMs.toFixed(0)} ms after it`);
    expect(outMs).toBeGreaterThanOrEqual(2800);
    expect(outMs).toBeLessThan(3000 + 2000);

    // Still failing: ejected again after 3 more consecutive 503s, now for 2 × 3 s, so it
    // gets nothing for longer than the first ejection lasted.
    const second = bad.hits - 1; // the request that found it back already counted one
    for (let i = 0; i < 20 && bad.hits - second < 3; i++) await flaky();
    expect(bad.hits - second).toBe(3);
    const reEjectedAt = performance.now();
    const quiet = bad.hits;
    while (performance.now() - reEjectedAt < 4000) {
      const r = await flaky();
      expect(r.app).toBe('flaky-good');
      await sleep(20);
    }
    expect(bad.hits - quiet, 'requests reaching the endpoint 0-4 s into its second (6 s) ejection').toBe(0);
  });

  it('LEAST_REQUEST (power of two choices) sends most requests to the faster of two endpoints', async () => {
    const N = 1000;
    const before = { fast: apps.fast.hits, slow: apps.slow.hits };
    const totals = async () => {
      const c = (await clusters()).find((x) => /\|\|speed\./.test(x.name))!;
      expect(c.lb_policy).toBe('LEAST_REQUEST');
      const by = (sc: h.Sidecar) => c.endpoints.find((e) => e.address === `127.0.0.1:${sc.inbound}`)!;
      return { fast: by(sidecars.fast), slow: by(sidecars.slow) };
    };
    const adminBefore = await totals();

    // While the load runs, the client sidecar's /clusters shows the slow endpoint the busier.
    let sampling = true;
    const busier = { slow: 0, fast: 0 };
    const sampler = (async () => {
      while (sampling) {
        const t = await totals();
        if (t.slow.active_requests > t.fast.active_requests) busier.slow++;
        else if (t.fast.active_requests > t.slow.active_requests) busier.fast++;
        await sleep(15);
      }
    })();
    const t0 = performance.now();
    const answers = await h.pool(N, 20, () => send('speed', '/'));
    sampling = false;
    await sampler;

    expect(answers.filter((r) => r.status !== 200 || r.headers['x-route'] !== 'speed').map((r) => `${r.status} ${r.body}`)).toEqual([]);
    const fast = answers.filter((r) => r.app === 'fast').length;
    const slow = answers.filter((r) => r.app === 'slow').length;
    console.info(`LEAST_REQUEST: fast ${fast}, slow ${slow} of ${N} in ${(performance.now() - t0).toFixed(0)} ms; /clusters samples with slow busier ${busier.slow}, fast busier ${busier.fast}`);
    expect(fast + slow).toBe(N);
    expect(apps.fast.hits - before.fast).toBe(fast);
    expect(apps.slow.hits - before.slow).toBe(slow);
    // Two random picks with replacement: both land on the slow endpoint a quarter of the
    // time, so the fast one's share tends to 75% (74.5% here: the first 20, sent at once,
    // split evenly); round robin or random would give 50%. Over 1000 requests one standard
    // deviation is 1.4 points, so 68% is more than 4 of them below the mean (over 300, the
    // share seen ranged 69-78% and a 70% bar would fail now and then).
    expect(fast / N).toBeGreaterThan(0.68);
    expect(busier.slow).toBeGreaterThan(busier.fast);

    // /clusters agrees with the apps, and nothing is left in flight
    const after = await totals();
    expect(after.fast.total_requests - adminBefore.fast.total_requests).toBe(fast);
    expect(after.slow.total_requests - adminBefore.slow.total_requests).toBe(slow);
    expect(after.fast.active_requests).toBe(0);
    expect(after.slow.active_requests).toBe(0);
  });

  describe('consistent hash', () => {
    for (const [subset, p] of [
      ['ring', '/'],
      ['maglev', '/maglev'],
    ] as const) {
      it(`httpHeaderName (${subset}): each user's requests all reach one endpoint, and users spread over several`, async () => {
        const users = Array.from({ length: 20 }, (_, i) => `user-${subset}-${i}`);
        const seen = new Map<string, Set<string>>();
        const answers = await h.pool(users.length * 10, 10, async (i) => {
          const user = users[i % users.length];
          const r = await send('hashed', `${p}?i=${i}`, { 'x-user': user });
          if (r.status === 200 && r.app) seen.set(user, (seen.get(user) ?? new Set()).add(r.app));
          return r;
        });
        expect(answers.filter((r) => r.status !== 200 || r.headers['x-route'] !== `hashed-${subset}`).map((r) => `${r.status} ${r.body}`)).toEqual([]);
        const endpointOf = users.map((u) => [...(seen.get(u) ?? [])]);
        for (const [i, eps] of endpointOf.entries()) expect(eps, users[i]).toHaveLength(1);
        const used = new Set(endpointOf.map((e) => e[0]));
        console.info(`${subset}: 20 users over ${[...used].sort().join(', ')}`);
        expect(used.size).toBeGreaterThan(1);

        // the same user later still lands where it did
        for (const [i, u] of users.slice(0, 5).entries()) expect((await send('hashed', p, { 'x-user': u })).app).toBe(endpointOf[i][0]);
      });
    }

    it('httpCookie with ttl: a first request gets Set-Cookie, and that cookie always reaches the same endpoint', async () => {
      // twelve clients at once, each with its own cookie
      const placed = await Promise.all(
        Array.from({ length: 12 }, async (_, client) => {
          const first = await send('hashed', `/cookie/first-${client}`);
          expect(first.status).toBe(200);
          expect(first.headers['x-route']).toBe('hashed-cookie');
          const setCookie = first.headers['set-cookie'] ?? [];
          expect(setCookie, 'one Set-Cookie for the sticky cookie').toHaveLength(1);
          expect(setCookie[0]).toMatch(/^sticky=("?)[^";]+\1(;|$)/);
          expect(setCookie[0]).toMatch(/;\s*Max-Age=60(;|$)/i);
          // a browser sends back name=value as set
          const cookie = setCookie[0].split(';')[0];

          const reached = new Set<string>([first.app!]);
          for (let i = 0; i < 10; i++) {
            const r = await send('hashed', `/cookie/${client}/${i}`, { cookie: `other=1; ${cookie}` });
            expect(r.status).toBe(200);
            expect(r.headers['set-cookie'], 'no new cookie when the request has one').toBeUndefined();
            reached.add(r.app!);
          }
          // the request that made the cookie was placed by it too
          expect([...reached], `client ${client} with ${cookie}`).toHaveLength(1);
          return first.app!;
        }),
      );
      // different cookies are different keys: twelve clients spread over more than one endpoint
      // (all on one of three: (1/3)^11, about 1 in 180,000)
      expect(new Set(placed).size).toBeGreaterThan(1);
    });
  });

  describe('connection pool (circuit breakers)', () => {
    /** 30 requests at once through the client sidecar; the app holds each 300 ms. */
    async function burst(p: string, tag: string) {
      pooled.max = 0;
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => send('pooled', `${p}/${i}`)));
      const ok = answers.filter((r) => r.status === 200 && r.app === 'pooled');
      const overflow = answers.filter((r) => r.status === 503 && r.headers['x-tandem-response-flags'] === 'UO');
      const other = answers.filter((r) => !ok.includes(r) && !overflow.includes(r)).map((r) => `${r.status} ${String(r.headers['x-tandem-response-flags'])} ${r.body}`);
      expect(answers.every((r) => r.headers['x-route'] === tag || r.status === 503)).toBe(true);
      return { answers, ok, overflow, other, maxAtApp: pooled.max };
    }

    it('http2MaxRequests: 3 caps requests in flight; the rest get 503 UO at once', async () => {
      const hits = apps.pooled.hits;
      const b = await burst('/capped', 'pooled-capped');
      console.info(`http2MaxRequests 3: ${b.ok.length} ok, ${b.overflow.length} UO, at most ${b.maxAtApp} at the app at once`);
      expect(b.other).toEqual([]);
      expect(b.ok.length + b.overflow.length).toBe(30);
      expect(b.overflow.length).toBeGreaterThan(0);
      expect(b.ok.length).toBeGreaterThanOrEqual(3);
      expect(b.maxAtApp).toBeLessThanOrEqual(3);
      expect(apps.pooled.hits - hits).toBe(b.ok.length);
      // refused at once, not after waiting for a slot
      for (const r of b.overflow) expect(r.ms).toBeLessThan(250);
      // slots come back: nothing leaked, the next request goes through
      const next = await send('pooled', '/capped/after');
      expect(next.status).toBe(200);
    });

    it('tcp.maxConnections: 3 with http1MaxPendingRequests: 1: three in flight, one waits, the rest get 503 UO', async () => {
      const hits = apps.pooled.hits;
      const b = await burst('/conns', 'pooled-conns');
      const slowest = Math.max(...b.ok.map((r) => r.ms));
      console.info(`maxConnections 3 + 1 pending: ${b.ok.length} ok, ${b.overflow.length} UO, at most ${b.maxAtApp} at the app at once, slowest ok ${slowest.toFixed(0)} ms`);
      expect(b.other).toEqual([]);
      expect(b.ok.length + b.overflow.length).toBe(30);
      expect(b.overflow.length).toBeGreaterThan(0);
      expect(b.ok.length).toBeGreaterThanOrEqual(4);
      expect(b.maxAtApp).toBeLessThanOrEqual(3);
      expect(apps.pooled.hits - hits).toBe(b.ok.length);
      // the pending one waited for a slot: its 300 ms behind another's 300 ms (less however
      // long the burst took to arrive; one not queued answers in about 300 ms)
      expect(slowest).toBeGreaterThanOrEqual(450);
      expect((await send('pooled', '/conns/after')).status).toBe(200);
    });

    // Istio treats a 0 in connectionPool (tcp.maxConnections, http.http1MaxPendingRequests,
    // http.http2MaxRequests, http.maxRetries) as unset: no limit, never "allow nothing".
    // (The zeros route is in force with the others: one VirtualService, one route table,
    // and its cluster's endpoint is known since beforeAll.)
    it('zeros in connectionPool mean "unset", as in Istio: no limit', async () => {
      const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => send('pooled', `/zeros/${i}`)));
      expect(answers.map((r) => `${r.status} ${String(r.headers['x-tandem-response-flags'] ?? '')}`)).toEqual(Array(5).fill('200 '));
    });
  });

  it('sticky canary (tandem.io/split-key): each key keeps its version, ~10% on v2, and 10% -> 20% moves keys v1 -> v2 only', async () => {
    const keys = Array.from({ length: 500 }, (_, i) => `user-${i}`);

    /**
     * Each key sent 3 times; its version, which must be the same every time. Each round
     * takes the keys in another order (strides coprime with 500), so a key that kept its
     * version by the luck of a periodic weighted round robin would not keep it here.
     */
    async function versions(tag: string): Promise<Map<string, string>> {
      const seen = new Map<string, Set<string>>();
      const strides = [1, 7, 13];
      const answers = await h.pool(keys.length * 3, 32, async (i) => {
        const key = keys[(i * strides[Math.floor(i / keys.length)]) % keys.length];
        const r = await send('canary', `/c/${i}`, { 'x-user-id': key });
        if (r.status === 200 && r.app) seen.set(key, (seen.get(key) ?? new Set()).add(r.app));
        return r;
      });
      expect(answers.filter((r) => r.status !== 200 || r.headers['x-route'] !== tag).map((r) => `${r.status} ${String(r.headers['x-route'])} ${r.body}`)).toEqual([]);
      const out = new Map<string, string>();
      const unstable: string[] = [];
      for (const k of keys) {
        const s = [...(seen.get(k) ?? [])];
        if (s.length !== 1) unstable.push(`${k}: ${s.join(',')}`);
        out.set(k, s[0]);
      }
      expect(unstable, 'keys answered by more than one version').toEqual([]);
      return out;
    }
    const onV2 = (m: Map<string, string>) => keys.filter((k) => m.get(k) === 'canary-v2');

    const before = await versions('canary-90-10');
    const v2Before = onV2(before);
    console.info(`90/10: ${v2Before.length} of 500 keys on v2`);
    expect(Math.abs(v2Before.length / 500 - 0.1)).toBeLessThanOrEqual(0.04);

    writeConfig(meshYaml({ v1: 80, v2: 20 }));
    await routeInForce('canary', '/', 'canary-80-20', { 'x-user-id': 'probe' });
    const after = await versions('canary-80-20');
    const v2After = onV2(after);
    const moved = keys.filter((k) => before.get(k) !== after.get(k));
    const movedBack = moved.filter((k) => after.get(k) === 'canary-v1');
    console.info(`80/20: ${v2After.length} of 500 keys on v2; ${moved.length} moved, ${movedBack.length} of them v2 -> v1`);
    expect(Math.abs(v2After.length / 500 - 0.2)).toBeLessThanOrEqual(0.04);
    expect(v2Before.filter((k) => after.get(k) !== 'canary-v2'), 'keys on v2 before and not after').toEqual([]);
    expect(movedBack).toEqual([]);
    expect(Math.abs(moved.length / 500 - 0.1)).toBeLessThanOrEqual(0.04);
  });
});
