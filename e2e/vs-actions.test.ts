// VirtualService routes that answer without an upstream (redirect, directResponse) and
// corsPolicy, on a real mesh: a control plane, a caller's sidecar and the ratings service
// behind its own sidecar, on 127.0.0.1. Requests enter at the caller's outbound port, as its
// application (or a browser's page, for CORS) would send them.
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

// The examples of istio/api's reference (HTTPRedirect, HTTPDirectResponse, CorsPolicy), and
// a few more of each.
const YAML = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings-route}
spec:
  hosts: [ratings]
  http:
  - match: [{uri: {exact: /v1/getProductRatings}}]
    redirect:
      uri: /v1/bookRatings
      authority: newratings.default.svc.cluster.local
  - match: [{uri: {prefix: /moved/}}]
    redirect: {prefixRewrite: /now/, scheme: https, redirectCode: 307}
  - match: [{uri: {exact: /v1/unknown}}]
    directResponse:
      status: 503
      body: {string: '{"error": "unknown error"}'}
    headers:
      response: {set: {content-type: application/json}}
  - match: [{uri: {prefix: /api/}}]
    corsPolicy:
      allowOrigins:
      - exact: https://example.com
      - regex: "https://[a-z]+\\\\.example\\\\.org"
      allowMethods: [POST, GET]
      allowHeaders: [X-Foo-Bar]
      exposeHeaders: [X-Trace]
      maxAge: "24h"
      allowCredentials: true
    route: [{destination: {host: ratings}}]
  - match: [{uri: {prefix: /strict/}}]
    corsPolicy:
      allowOrigins: [{exact: https://example.com}]
      unmatchedPreflights: IGNORE
    route: [{destination: {host: ratings}}]
  - match: [{uri: {prefix: /no-percentage/}}]
    fault: {abort: {httpStatus: 500}, delay: {fixedDelay: 1s}}
    route: [{destination: {host: ratings}}]
  - route: [{destination: {host: ratings}}]
`;

let dir: string;
let caller: h.Sidecar;
let ratings: h.App;
let accessLog: string;

beforeAll(async () => {
  dir = h.tmpDir('tandem-vs-actions-');
  const config = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(config, YAML);
  const cp = await h.startControlPlane(dir, config);
  ratings = await h.startApp('ratings');
  await h.startSidecar(cp, 'ratings', ratings.port);
  accessLog = path.join(dir, 'caller-access.log');
  caller = await h.startSidecar(cp, 'caller', (await h.startApp('caller')).port, {}, { accessLog });
  // the route table is in force once the catch-all route reaches ratings
  await h.waitFor('ratings reachable', async () => (await h.request(caller.outbound, { host: 'ratings', path: '/' })).status === 200);
}, 60_000);

afterAll(async () => {
  await h.stopAll();
  await h.closeApps();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The caller sidecar's access-log line for a request id. */
async function logged(requestId: string): Promise<Record<string, unknown>> {
  return h.waitFor(`access-log line for ${requestId}`, () => {
    const lines = fs.existsSync(accessLog) ? fs.readFileSync(accessLog, 'utf8').split('\n') : [];
    const line = lines.find((l) => l.includes(`"request_id":"${requestId}"`));
    return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
  });
}

describe('redirect', () => {
  it("answers istio/api's example with 301 and the new Location, the query kept; ratings never sees it", async () => {
    const before = ratings.hits;
    const r = await h.request(caller.outbound, { host: 'ratings', path: '/v1/getProductRatings?id=7', headers: { 'x-request-id': 'redirect-1' } });
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('http://newratings.default.svc.cluster.local/v1/bookRatings?id=7');
    expect(r.body).toBe('');
    expect(ratings.hits).toBe(before);
    // a local answer: no response flag, no upstream
    expect(await logged('redirect-1')).toMatchObject({ response_code: 301, response_flags: '-', upstream_cluster: null, upstream_host: null, upstream_service_time_ms: null });
  });

  it('replaces the matched prefix, the scheme and the code; the port the request named stays', async () => {
    const r = await h.request(caller.outbound, { host: 'ratings:9080', path: '/moved/a/b?q=1' });
    expect(r.status).toBe(307);
    expect(r.headers.location).toBe('https://ratings:9080/now/a/b?q=1');
  });

  it('answers an HTTP/2 caller too', async () => {
    const session = http2.connect(`http://127.0.0.1:${caller.outbound}`);
    try {
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = session.request({ ':path': '/v1/getProductRatings', ':authority': 'ratings' });
        req.once('response', resolve);
        req.once('error', reject);
        req.resume();
        req.end();
      });
      expect(headers[':status']).toBe(301);
      expect(headers.location).toBe('http://newratings.default.svc.cluster.local/v1/bookRatings');
    } finally {
      session.close();
    }
  });
});

describe('directResponse', () => {
  it('answers with the status, the body and the route\'s response headers; ratings never sees it', async () => {
    const before = ratings.hits;
    const r = await h.request(caller.outbound, { host: 'ratings', path: '/v1/unknown', headers: { 'x-request-id': 'direct-1' } });
    expect(r.status).toBe(503);
    expect(r.body).toBe('{"error": "unknown error"}');
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['x-tandem-response-flags']).toBeUndefined();
    expect(ratings.hits).toBe(before);
    expect(await logged('direct-1')).toMatchObject({ response_code: 503, response_flags: '-', upstream_cluster: null, route_name: 'default/ratings-route/2' });
  });
});

describe('corsPolicy', () => {
  const preflight = (origin: string, p = '/api/ratings') =>
    h.request(caller.outbound, { host: 'ratings', method: 'OPTIONS', path: p, headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-foo-bar' } });

  it('answers a preflight from an allowed origin itself, with the allow headers', async () => {
    const before = ratings.hits;
    for (const origin of ['https://example.com', 'https://shop.example.org']) {
      const r = await preflight(origin);
      expect(r.status).toBe(200);
      expect(r.headers).toMatchObject({
        'access-control-allow-origin': origin,
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'POST,GET',
        'access-control-allow-headers': 'X-Foo-Bar',
        'access-control-max-age': '86400',
      });
    }
    expect(ratings.hits).toBe(before);
  });

  it('forwards a preflight from another origin to ratings, which the browser then refuses: no CORS headers', async () => {
    const before = ratings.hits;
    const r = await preflight('https://evil.test');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ app: 'ratings', method: 'OPTIONS' });
    expect(ratings.hits).toBe(before + 1);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect(r.headers['access-control-allow-methods']).toBeUndefined();
  });

  it('with unmatchedPreflights IGNORE, answers it without Allow-Origin and forwards nothing', async () => {
    const before = ratings.hits;
    const r = await preflight('https://evil.test', '/strict/x');
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect(ratings.hits).toBe(before);
  });

  it('puts the CORS headers on the response to a request from an allowed origin, and none for another origin or none', async () => {
    const ok = await h.request(caller.outbound, { host: 'ratings', path: '/api/ratings', headers: { origin: 'https://example.com' } });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ app: 'ratings', path: '/api/ratings' });
    expect(ok.headers).toMatchObject({ 'access-control-allow-origin': 'https://example.com', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'X-Trace' });
    for (const headers of [{ origin: 'https://evil.test' }, {}] as Record<string, string>[]) {
      const r = await h.request(caller.outbound, { host: 'ratings', path: '/api/ratings', headers });
      expect(r.status).toBe(200);
      expect(Object.keys(r.headers).filter((k) => k.startsWith('access-control-'))).toEqual([]);
    }
  });
});

describe('fault without percentage', () => {
  it('faults no request, as in Istio', async () => {
    const answers = await h.pool(50, 10, (i) => h.request(caller.outbound, { host: 'ratings', path: `/no-percentage/${i}` }));
    expect(answers.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    expect(answers.filter((r) => r.headers['x-tandem-response-flags'] !== undefined)).toEqual([]);
  });
});
