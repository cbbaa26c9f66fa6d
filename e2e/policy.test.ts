// Security policy end to end, with real processes on 127.0.0.1: one control plane watching
// an Istio YAML file, two callers (frontend and admin-ui, each its own sidecar and service
// account) and a server (reviews), plus an HTTPS server outside the mesh. Each test rewrites
// the config file and polls until the behaviour it expects is in force; before each test the
// config is emptied and the mesh checked to be back at its defaults (STRICT mTLS, no
// authorization policy, no DestinationRule, no ServiceEntry), so that no wait can be
// satisfied by the state an earlier test left behind.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import type * as tls from 'node:tls';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CertificateAuthority, createRootCA } from '../certs/ca';
import * as h from './harness';

interface AppAnswer {
  app: string;
  host: string;
  path: string;
  method: string;
  headers: http.IncomingHttpHeaders;
}

interface DebugConfig {
  snapshotGeneration: number;
  lastError?: { message: string; file?: string; field?: string };
}

const ID = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;
const XFCC = 'x-forwarded-client-cert';
const TIMEOUT = 10_000;

type Doc = Record<string, unknown>;

const authz = (name: string, spec: Doc, namespace = 'default'): Doc => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name, namespace },
  spec,
});
const peerAuthn = (name: string, spec: Doc, namespace = 'default'): Doc => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name, namespace },
  spec,
});
const destinationRule = (name: string, spec: Doc): Doc => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name, namespace: 'default' },
  spec,
});
const serviceEntry = (name: string, spec: Doc): Doc => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'ServiceEntry',
  metadata: { name, namespace: 'default' },
  spec,
});

const ON_REVIEWS = { matchLabels: { app: 'reviews' } };

/** reviews: ALLOW only from frontend's service account. */
const ALLOW_FRONTEND = authz('reviews-viewer', {
  selector: ON_REVIEWS,
  action: 'ALLOW',
  rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/frontend'] } }] }],
});
/** reviews: DENY DELETE under /admin/. */
const DENY_ADMIN_DELETE = authz('reviews-no-admin-delete', {
  selector: ON_REVIEWS,
  action: 'DENY',
  rules: [{ to: [{ operation: { methods: ['DELETE'], paths: ['/admin/*'] } }] }],
});
const ALLOW_NOTHING = authz('allow-nothing', {});

describe('policy e2e: AuthorizationPolicy, PeerAuthentication, DestinationRule TLS', () => {
  let dir: string;
  let configPath: string;
  let cp: h.ControlPlane;
  let front: h.Sidecar;
  let adminUi: h.Sidecar;
  let reviews: h.Sidecar;
  let reviewsApp: h.App;
  /** the HTTPS server outside the mesh (api.test) */
  const api = { port: 0, hits: 0, servernames: [] as (string | false | null)[], handshakeErrors: 0, server: undefined as https.Server | undefined };
  let apiCaFile: string;
  let otherCaFile: string;

  const writeConfig = (...docs: Doc[]): void => fs.writeFileSync(configPath, docs.map((d) => stringify(d)).join('---\n'));
  const debugConfig = () => h.json<DebugConfig>(cp.admin, '/debug/config');

  /** A request for reviews sent by a caller application to its own sidecar's outbound port. */
  const call = (from: h.Sidecar, opts: Parameters<typeof h.request>[1] = {}) => h.request(from.outbound, { host: 'reviews', path: '/reviews/1', ...opts });
  const answer = (r: h.HttpResult): AppAnswer => JSON.parse(r.body) as AppAnswer;
  /** The URI= part of the XFCC the app saw, or undefined. */
  const xfccUri = (a: AppAnswer): string | undefined => /(?:^|;)URI=([^;,]+)/.exec(String(a.headers[XFCC] ?? ''))?.[1];

  /**
   * A plaintext HTTP/1.1 request straight to reviews' inbound port, on a connection of its
   * own (never a pooled one, which could have been accepted under an earlier policy).
   */
  function plaintext(opts: { path?: string; headers?: Record<string, string> } = {}): Promise<h.HttpResult | { error: string }> {
    return new Promise((resolve) => {
      const req = http.request(
        { host: '127.0.0.1', port: reviews.inbound, path: opts.path ?? '/plain', method: 'GET', agent: false, headers: { host: 'reviews', connection: 'close', ...opts.headers }, timeout: 5000 },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          res.on('error', (err) => resolve({ error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.once('error', (err) => resolve({ error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` }));
      req.end();
    });
  }
  const refused = (r: h.HttpResult | { error: string }): r is { error: string } => 'error' in r;

  const refusedPlaintext = async (): Promise<number> =>
    h.metricValue((await h.request(reviews.admin, { path: '/metrics' })).body, 'tandem_inbound_connections_refused_total', { reason: 'plaintext' }) ?? 0;

  /** What the mesh does with no config at all; every test starts from here. */
  async function atDefaults(): Promise<boolean> {
    const [f, a, p, ext] = await Promise.all([call(front), call(adminUi), plaintext(), h.request(front.outbound, { host: 'api.test', path: '/' })]);
    return (
      f.status === 200 &&
      xfccUri(answer(f)) === ID('frontend') &&
      a.status === 200 &&
      xfccUri(answer(a)) === ID('admin-ui') &&
      refused(p) &&
      ext.status === 404
    );
  }

  async function diagnostics(): Promise<string> {
    const get = (port: number, p: string) => h.request(port, { path: p }).then((r) => r.body.slice(0, 4000), (e: Error) => e.message);
    return [
      `debug/config: ${await get(cp.admin, '/debug/config')}`,
      `syncz: ${await get(cp.admin, '/debug/syncz')}`,
      `cp: ${cp.proc.output().slice(-3000)}`,
      ...[front, adminUi, reviews].map((s) => `${s.service} (exit ${s.proc.child.exitCode}): ${s.proc.output().slice(-2000)}`),
    ].join('\n');
  }

  /** Polls until `fn` holds; on a timeout, says how the mesh stood. */
  async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = TIMEOUT): Promise<T> {
    try {
      return await h.waitFor(what, fn, timeoutMs, 50);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics()}`);
    }
  }

  beforeAll(async () => {
    dir = h.tmpDir('tandem-policy-e2e-');
    configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, '');

    // api.test: an HTTPS server outside the mesh, its certificate signed by a CA of the test's own
    const apiCa = new CertificateAuthority(createRootCA());
    const serving = apiCa.issueServing({ commonName: 'api.test', dnsNames: ['api.test'], ttlMs: 3600e3, client: false });
    apiCaFile = path.join(dir, 'api-ca.pem');
    fs.writeFileSync(apiCaFile, apiCa.rootPem);
    otherCaFile = path.join(dir, 'other-ca.pem');
    fs.writeFileSync(otherCaFile, createRootCA().certPem);
    api.server = https.createServer({ key: serving.keyPem, cert: serving.certPem }, (req, res) => {
      api.hits++;
      api.servernames.push((req.socket as tls.TLSSocket).servername);
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ app: 'api.test', host: req.headers.host, path: req.url, method: req.method, headers: req.headers }));
      });
    });
    api.server.on('tlsClientError', () => api.handshakeErrors++);
    await new Promise<void>((r) => api.server!.listen(0, '127.0.0.1', () => r()));
    api.port = (api.server.address() as net.AddressInfo).port;

    cp = await h.startControlPlane(dir, configPath);
    const frontApp = await h.startApp('frontend');
    const adminApp = await h.startApp('admin-ui');
    reviewsApp = await h.startApp('reviews');
    [front, adminUi, reviews] = await Promise.all([
      h.startSidecar(cp, 'frontend', frontApp.port, { app: 'frontend' }),
      h.startSidecar(cp, 'admin-ui', adminApp.port, { app: 'admin-ui' }),
      h.startSidecar(cp, 'reviews', reviewsApp.port, { app: 'reviews', version: 'v1' }),
    ]);
  });

  afterAll(async () => {
    await h.stopAll();
    await h.closeApps();
    if (api.server) {
      api.server.closeAllConnections();
      await new Promise<void>((r) => api.server!.close(() => r()));
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    fs.writeFileSync(configPath, '');
    await until('the mesh at its defaults (empty config)', atDefaults, 15_000);
  });

  it('AuthorizationPolicy: ALLOW by principal, DENY beside it wins, allow-nothing, and removal', async () => {
    // 1. ALLOW from frontend's service account only
    writeConfig(ALLOW_FRONTEND);
    await until('admin-ui refused by the ALLOW policy', async () => (await call(adminUi)).status === 403);

    let hits = reviewsApp.hits;
    const ok = await call(front, { path: '/reviews/7' });
    expect(ok.status).toBe(200);
    expect(answer(ok)).toMatchObject({ app: 'reviews', path: '/reviews/7' });
    expect(xfccUri(answer(ok))).toBe(ID('frontend'));
    expect(reviewsApp.hits).toBe(hits + 1);

    hits = reviewsApp.hits;
    for (const method of ['GET', 'POST', 'DELETE']) {
      const denied = await call(adminUi, { method, path: '/reviews/7', body: method === 'POST' ? '{}' : undefined });
      expect(denied.status, method).toBe(403);
      expect(denied.headers['x-tandem-response-flags'], method).toBe('RBAC');
      expect(denied.body).not.toMatch(/"app"/);
    }
    expect(reviewsApp.hits, 'a denied request never reaches the app').toBe(hits);

    // 2. a DENY policy beside it: DELETE under /admin/ is refused even to frontend
    writeConfig(ALLOW_FRONTEND, DENY_ADMIN_DELETE);
    await until('frontend DELETE /admin/x denied', async () => (await call(front, { method: 'DELETE', path: '/admin/x' })).status === 403);
    hits = reviewsApp.hits;
    const del = await call(front, { method: 'DELETE', path: '/admin/x' });
    expect(del.status).toBe(403);
    expect(del.headers['x-tandem-response-flags']).toBe('RBAC');
    expect(reviewsApp.hits).toBe(hits);
    // the DENY names DELETE on /admin/* only: frontend's GET there, and DELETE elsewhere, pass
    const get = await call(front, { method: 'GET', path: '/admin/x' });
    expect(get.status).toBe(200);
    expect(answer(get)).toMatchObject({ app: 'reviews', method: 'GET', path: '/admin/x' });
    const delElsewhere = await call(front, { method: 'DELETE', path: '/reviews/9' });
    expect(delElsewhere.status).toBe(200);
    expect(answer(delElsewhere)).toMatchObject({ method: 'DELETE', path: '/reviews/9' });
    expect(reviewsApp.hits).toBe(hits + 2);
    // and the ALLOW still keeps admin-ui out
    expect((await call(adminUi, { path: '/admin/x' })).status).toBe(403);
    expect(reviewsApp.hits).toBe(hits + 2);

    // 3. allow-nothing (spec: {}) for the whole namespace: nobody gets in
    writeConfig(ALLOW_NOTHING);
    await until('frontend refused by allow-nothing', async () => (await call(front)).status === 403);
    hits = reviewsApp.hits;
    for (const caller of [front, adminUi]) {
      for (const p of ['/reviews/1', '/admin/x', '/']) {
        const r = await call(caller, { path: p });
        expect(r.status, `${caller.service} ${p}`).toBe(403);
        expect(r.headers['x-tandem-response-flags']).toBe('RBAC');
      }
    }
    expect(reviewsApp.hits).toBe(hits);

    // an invalid edit is refused whole: allow-nothing stays in force
    const generation = (await debugConfig()).snapshotGeneration;
    writeConfig(authz('broken', { selector: ON_REVIEWS, rules: [{ from: [{ source: { principalz: ['x'] } }] }] }));
    const dbg = await until('the invalid edit reported', async () => {
      const d = await debugConfig();
      return d.lastError && /principalz/.test(d.lastError.message) ? d : undefined;
    });
    expect(dbg.snapshotGeneration).toBe(generation);
    expect((await call(front)).status).toBe(403);
    expect((await call(adminUi)).status).toBe(403);
    expect(reviewsApp.hits).toBe(hits);

    // 4. the policies removed: everyone passes again
    writeConfig();
    await until('admin-ui allowed again', async () => (await call(adminUi)).status === 200);
    hits = reviewsApp.hits;
    for (const [caller, sa] of [[front, 'frontend'], [adminUi, 'admin-ui']] as const) {
      const r = await call(caller, { method: 'DELETE', path: '/admin/x' });
      expect(r.status, sa).toBe(200);
      expect(xfccUri(answer(r))).toBe(ID(sa));
    }
    expect(reviewsApp.hits).toBe(hits + 2);
    expect((await debugConfig()).lastError).toBeUndefined();
  });

  it('AuthorizationPolicy `when` on a request header: only x-tenant: gold passes', async () => {
    writeConfig(
      authz('gold-only', {
        selector: ON_REVIEWS,
        rules: [{ when: [{ key: 'request.headers[x-tenant]', values: ['gold'] }] }],
      }),
    );
    await until('a request without x-tenant denied', async () => (await call(front)).status === 403);

    const hits = reviewsApp.hits;
    for (const caller of [front, adminUi]) {
      const gold = await call(caller, { headers: { 'x-tenant': 'gold' } });
      expect(gold.status, caller.service).toBe(200);
      expect(answer(gold).headers['x-tenant']).toBe('gold');
      expect(xfccUri(answer(gold))).toBe(ID(caller.service));
    }
    expect(reviewsApp.hits).toBe(hits + 2);

    for (const headers of [{}, { 'x-tenant': 'silver' }, { 'x-tenant': 'Gold' }, { 'x-tenant': 'gold-plus' }, { 'x-other': 'gold' }] as Record<string, string>[]) {
      const r = await call(front, { headers });
      expect(r.status, JSON.stringify(headers)).toBe(403);
      expect(r.headers['x-tandem-response-flags']).toBe('RBAC');
    }
    expect(reviewsApp.hits).toBe(hits + 2);
  });

  it('PeerAuthentication: plaintext refused under STRICT, served under namespace PERMISSIVE, refused again at STRICT', async () => {
    // STRICT, the default: the connection is closed, nothing reaches the app
    let hits = reviewsApp.hits;
    let before = await refusedPlaintext();
    const strict = await plaintext();
    expect(refused(strict), JSON.stringify(strict)).toBe(true);
    expect(reviewsApp.hits).toBe(hits);
    expect(await refusedPlaintext()).toBeGreaterThan(before);

    writeConfig(peerAuthn('default', { mtls: { mode: 'PERMISSIVE' } }));
    await until('plaintext accepted under PERMISSIVE', async () => !refused(await plaintext()));

    // plaintext reaches the app, which sees no caller identity; a forged XFCC is dropped
    hits = reviewsApp.hits;
    const p = await plaintext({ path: '/plain?x=1', headers: { [XFCC]: `By=${ID('reviews')};URI=${ID('frontend')}` } });
    if (refused(p)) throw new Error(`plaintext refused under PERMISSIVE: ${p.error}`);
    expect(p.status).toBe(200);
    expect(answer(p)).toMatchObject({ app: 'reviews', path: '/plain?x=1' });
    expect(xfccUri(answer(p))).toBeUndefined();
    expect(String(answer(p).headers[XFCC] ?? '')).not.toContain(ID('frontend'));
    expect(reviewsApp.hits).toBe(hits + 1);

    // mTLS callers still work, and still say who they are
    for (const caller of [front, adminUi]) {
      const r = await call(caller);
      expect(r.status, caller.service).toBe(200);
      expect(answer(r).headers[XFCC]).toBe(`By=${ID('reviews')};URI=${ID(caller.service)}`);
    }

    // back to STRICT (written out, as an operator would): plaintext refused again
    writeConfig(peerAuthn('default', { mtls: { mode: 'STRICT' } }));
    await until('plaintext refused again under STRICT', async () => refused(await plaintext()));
    hits = reviewsApp.hits;
    before = await refusedPlaintext();
    for (let i = 0; i < 3; i++) expect(refused(await plaintext())).toBe(true);
    expect(await refusedPlaintext()).toBeGreaterThanOrEqual(before + 3);
    expect(reviewsApp.hits).toBe(hits);
    const mtls = await call(front);
    expect(mtls.status).toBe(200);
    expect(xfccUri(answer(mtls))).toBe(ID('frontend'));
  });

  it('PeerAuthentication with a workload selector: portLevelMtls is keyed by the app port', async () => {
    // A. STRICT for the workload, PERMISSIVE on its app port: plaintext is served
    writeConfig(peerAuthn('reviews', { selector: ON_REVIEWS, mtls: { mode: 'STRICT' }, portLevelMtls: { [reviewsApp.port]: { mode: 'PERMISSIVE' } } }));
    await until('plaintext accepted by port-level PERMISSIVE', async () => !refused(await plaintext()));
    const a = await plaintext();
    if (refused(a)) throw new Error(a.error);
    expect(a.status).toBe(200);
    expect(answer(a).app).toBe('reviews');
    expect(xfccUri(answer(a))).toBeUndefined();
    expect(xfccUri(answer(await call(front)))).toBe(ID('frontend'));

    // B. PERMISSIVE for the workload, STRICT on its app port: the port wins
    writeConfig(peerAuthn('reviews', { selector: ON_REVIEWS, mtls: { mode: 'PERMISSIVE' }, portLevelMtls: { [reviewsApp.port]: { mode: 'STRICT' } } }));
    await until('plaintext refused by port-level STRICT', async () => refused(await plaintext()));
    const hits = reviewsApp.hits;
    expect(refused(await plaintext())).toBe(true);
    expect(reviewsApp.hits).toBe(hits);
    expect((await call(front)).status).toBe(200);

    // C. the same with the sidecar's inbound port as the key: not the workload's port, so
    //    the workload-level PERMISSIVE applies
    writeConfig(peerAuthn('reviews', { selector: ON_REVIEWS, mtls: { mode: 'PERMISSIVE' }, portLevelMtls: { [reviews.inbound]: { mode: 'STRICT' } } }));
    await until('plaintext accepted: a port-level setting for another port does not apply', async () => !refused(await plaintext()));

    // D. a selector that matches another workload leaves reviews at the namespace's mode
    writeConfig(peerAuthn('reviews', { selector: { matchLabels: { app: 'ratings' } }, mtls: { mode: 'PERMISSIVE' }, portLevelMtls: { [reviewsApp.port]: { mode: 'PERMISSIVE' } } }));
    await until('plaintext refused: the policy selects another workload', async () => refused(await plaintext()));
  });

  /** Whether a caller's sidecar holds a reviews cluster that its DestinationRule left in plaintext. */
  async function reviewsClusterPlaintext(caller: h.Sidecar): Promise<boolean> {
    const dump = await h.json<{ clusters: { name: string; resource: { tls?: unknown } }[] }>(caller.admin, '/config_dump');
    const c = dump.clusters.find((x) => /\|\|reviews\./.test(x.name));
    return !!c && c.resource.tls === undefined;
  }

  const PERMISSIVE = peerAuthn('default', { mtls: { mode: 'PERMISSIVE' } });
  const DISABLE_TO_REVIEWS = destinationRule('reviews', { host: 'reviews', trafficPolicy: { tls: { mode: 'DISABLE' } } });

  /** reviews PERMISSIVE and the DestinationRule DISABLE: frontend's hop is plaintext. */
  async function plaintextHopFromFrontend(): Promise<void> {
    writeConfig(PERMISSIVE);
    await until('reviews PERMISSIVE', async () => !refused(await plaintext()));
    writeConfig(PERMISSIVE, DISABLE_TO_REVIEWS);
    await until('frontend reaching reviews in plaintext', async () => {
      const r = await call(front);
      return r.status === 200 && xfccUri(answer(r)) === undefined;
    });
  }

  it('DestinationRule tls DISABLE: plaintext to a PERMISSIVE peer, 503 once the peer is STRICT', async () => {
    await plaintextHopFromFrontend();
    let hits = reviewsApp.hits;
    for (let i = 0; i < 5; i++) {
      const r = await call(front, { path: `/plain/${i}` });
      expect(r.status).toBe(200);
      expect(answer(r)).toMatchObject({ app: 'reviews', path: `/plain/${i}` });
      expect(xfccUri(answer(r)), 'the hop was plaintext: no caller identity').toBeUndefined();
    }
    expect(reviewsApp.hits).toBe(hits + 5);
    // admin-ui has the same DestinationRule (checked without sending it any traffic, so that
    // it holds no connection to reviews made while reviews took plaintext)
    await until('admin-ui holding the DISABLE DestinationRule', () => reviewsClusterPlaintext(adminUi));

    // reviews STRICT again, the DestinationRule still DISABLE: the plaintext hop is refused
    writeConfig(DISABLE_TO_REVIEWS);
    await until('reviews STRICT again', async () => refused(await plaintext()));
    hits = reviewsApp.hits;
    for (let i = 0; i < 5; i++) {
      const r = await call(adminUi, { path: `/strict/${i}` });
      expect(r.status, `${r.status} ${String(r.headers['x-tandem-response-flags'])} ${r.body}`).toBe(503);
      expect(r.body).not.toMatch(/"app"/);
    }
    expect(reviewsApp.hits, 'nothing reaches the app').toBe(hits);
  });

  // A plaintext connection accepted while the workload was PERMISSIVE must not outlive the
  // switch to STRICT as a 403 RBAC: the connection is closed (as Envoy drains the connections
  // of a removed filter chain), so the caller sees the hop fail (503) like a new connection
  // would, whatever its connection history.
  it('DestinationRule tls DISABLE: a caller that already spoke plaintext to the peer also gets 503 once it is STRICT', async () => {
    await plaintextHopFromFrontend();
    writeConfig(DISABLE_TO_REVIEWS);
    await until('reviews STRICT again', async () => refused(await plaintext()));
    const hits = reviewsApp.hits;
    const answers: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(front, { path: `/strict/${i}` });
      answers.push(`${r.status} ${String(r.headers['x-tandem-response-flags'])}`);
    }
    expect(reviewsApp.hits, 'nothing reaches the app').toBe(hits);
    expect(answers.map((a) => a.split(' ')[0]), answers.join(', ')).toEqual(Array(5).fill('503'));
  });

  it('DestinationRule tls SIMPLE: TLS originated to a ServiceEntry host, verified against caCertificates', async () => {
    const entry = serviceEntry('api', {
      hosts: ['api.test'],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      resolution: 'STATIC',
      endpoints: [{ address: '127.0.0.1', ports: { http: api.port } }],
    });
    const simple = (caCertificates: string) => destinationRule('api', { host: 'api.test', trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates, sni: 'api.test' } } });

    writeConfig(entry, simple(apiCaFile));
    await until('api.test reached over TLS', async () => (await h.request(front.outbound, { host: 'api.test', path: '/' })).status === 200);
    const hits = api.hits;
    const r = await h.request(front.outbound, { host: 'api.test', path: '/v1/things?id=3', method: 'POST', body: 'x' });
    expect(r.status).toBe(200);
    expect(answer(r)).toMatchObject({ app: 'api.test', host: 'api.test', path: '/v1/things?id=3', method: 'POST' });
    expect(r.headers['x-tandem-response-flags']).toBeUndefined();
    expect(api.hits).toBe(hits + 1);
    expect(api.servernames.at(-1), 'the SNI the DestinationRule names').toBe('api.test');

    // the same with a trust anchor of another CA: the handshake fails, no request is served
    writeConfig(entry, simple(otherCaFile));
    await until('api.test refused by verification', async () => (await h.request(front.outbound, { host: 'api.test', path: '/' })).status === 503);
    const hitsBefore = api.hits;
    const handshakesBefore = api.handshakeErrors;
    for (let i = 0; i < 3; i++) {
      const bad = await h.request(front.outbound, { host: 'api.test', path: `/v1/things/${i}` });
      expect(bad.status).toBe(503);
      expect(bad.body).not.toMatch(/"app"/);
    }
    expect(api.hits, 'the https server never got an HTTP request').toBe(hitsBefore);
    expect(api.handshakeErrors, 'handshakes were attempted and failed').toBeGreaterThan(handshakesBefore);

    // and back to the right CA
    writeConfig(entry, simple(apiCaFile));
    await until('api.test reached again', async () => (await h.request(front.outbound, { host: 'api.test', path: '/' })).status === 200);
  });

  // A TLS handshake that fails (the server's certificate is not signed by caCertificates)
  // is a connection failure, 503 UF (SPEC section 6, as Envoy), never an upstream reset.
  it('DestinationRule tls SIMPLE: a failed verification is a connect failure (503 UF)', async () => {
    writeConfig(
      serviceEntry('api', {
        hosts: ['api.test'],
        ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
        resolution: 'STATIC',
        endpoints: [{ address: '127.0.0.1', ports: { http: api.port } }],
      }),
      destinationRule('api', { host: 'api.test', trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: otherCaFile, sni: 'api.test' } } }),
    );
    await until('api.test refused by verification', async () => (await h.request(front.outbound, { host: 'api.test', path: '/' })).status === 503);
    const hits = api.hits;
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await h.request(front.outbound, { host: 'api.test', path: `/v1/things/${i}` });
      answers.push(`${r.status} ${String(r.headers['x-tandem-response-flags'])}`);
    }
    expect(api.hits).toBe(hits);
    expect(answers).toEqual(Array(3).fill('503 UF'));
  });
});
