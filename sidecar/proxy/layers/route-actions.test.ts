import { PassThrough } from 'node:stream';
import type { OutgoingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { corsLayer } from './cors';
import { localAnswerLayer, location } from './local-answer';
import { applyOps } from '../headers';
import type { Exchange, Handler } from '../exchange';
import type { UpstreamResponse } from '../dispatch';
import type { CorsModel, RouteModel } from '../../../proto/decode/model';
import { Cancel } from '../cancel';

const upstream: Handler = async () => ({ status: 200, headers: { 'content-type': 'text/html' }, body: new PassThrough(), trailers: Promise.resolve(undefined) });

function exchange(route: Partial<RouteModel>, req: { method?: string; authority?: string; path?: string; headers?: Record<string, string> } = {}): Exchange {
  const headers = req.headers ?? {};
  const ctl = new Cancel();
  const model = { name: 'r', path: { kind: 'prefix', value: '/' }, clusters: [], responseHeaders: { add: [], remove: [] }, ...route } as RouteModel;
  return {
    info: {
      method: req.method ?? 'GET',
      authority: req.authority ?? 'ratings',
      path: req.path ?? '/',
      header: (n: string) => (n === ':scheme' ? 'http' : headers[n]),
    } as Exchange['info'],
    conn: { mtls: false },
    started: Date.now(),
    rt: {} as Exchange['rt'],
    request: { method: req.method ?? 'GET', path: req.path ?? '/', authority: req.authority ?? 'ratings', headers: { 'x-forwarded-proto': 'http' } },
    body: null,
    signal: ctl,
    abort: (r) => ctl.abort(r),
    attempt: 1,
    route: { model, vhost: {} as never, pickCluster: () => model.clusters[0] },
    responseOps: [model.responseHeaders],
    facts: { route: 'r', cluster: null, host: null, flags: [], attempts: 0 },
    cleanup: [],
  };
}

/** What the client would see: the answer's headers with the response operations still pending. */
function seen(x: Exchange, up: UpstreamResponse): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = { ...up.headers };
  for (const ops of x.responseOps) applyOps(h, ops);
  return h;
}

const chain = (x: Exchange) => corsLayer(localAnswerLayer(upstream))(x);

const CORS: CorsModel = {
  allowOrigins: [{ kind: 'exact', value: 'https://example.com' }],
  allowMethods: 'POST,GET',
  allowHeaders: 'X-Foo',
  exposeHeaders: 'X-Trace',
  maxAge: '86400',
  allowCredentials: true,
  forwardNotMatchingPreflights: true,
};

describe('redirect', () => {
  const redirect = (rd: object, req: Parameters<typeof exchange>[1] = {}) => {
    const x = exchange({ answer: { kind: 'redirect', stripQuery: false, status: 301, ...rd } }, req);
    return location(x, x.route!.model.answer as never);
  };

  it('replaces the parts the redirect names and keeps the rest of the request URL', () => {
    expect(redirect({ path: '/v1/bookRatings', host: 'newratings' }, { path: '/v1/getProductRatings?id=1' })).toBe('http://newratings/v1/bookRatings?id=1');
    expect(redirect({ path: '/b?x=1' }, { path: '/a?id=1' })).toBe('http://ratings/b?x=1');
    expect(redirect({ path: '/b', stripQuery: true }, { path: '/a?id=1' })).toBe('http://ratings/b');
    expect(redirect({ scheme: 'https' }, { path: '/a', authority: 'ratings:80' })).toBe('https://ratings/a');
    expect(redirect({ scheme: 'https' }, { path: '/a', authority: 'ratings:8080' })).toBe('https://ratings:8080/a');
    expect(redirect({ port: 8443 }, { path: '/a', authority: 'ratings:9080' })).toBe('http://ratings:8443/a');
    expect(redirect({ port: 8443 }, { path: '/a', authority: '[::1]:9080' })).toBe('http://[::1]:8443/a');
  });

  it("replaces the route's matched prefix with prefixRewrite", () => {
    const x = exchange({ path: { kind: 'prefix', value: '/old/' }, answer: { kind: 'redirect', stripQuery: false, status: 301, prefixRewrite: '/new/' } }, { path: '/old/a/b?q=1' });
    expect(location(x, x.route!.model.answer as never)).toBe('http://ratings/new/a/b?q=1');
  });

  it('answers with the status and Location, an empty body, and the route response headers; nothing goes upstream', async () => {
    const x = exchange({ answer: { kind: 'redirect', stripQuery: false, status: 308, path: '/b' }, responseHeaders: { add: [['x-a', '1', true]], remove: [] } }, { path: '/a' });
    const up = await chain(x);
    expect(up).toMatchObject({ status: 308, endStream: true, local: true });
    expect(seen(x, up)).toEqual({ location: 'http://ratings/b', 'content-length': '0', 'x-a': '1' });
  });
});

describe('direct response', () => {
  const body = Buffer.from('unknown error');

  it('answers with the status and body, text/plain unless the route says otherwise', async () => {
    const x = exchange({ answer: { kind: 'direct', status: 503, body } });
    const up = await chain(x);
    expect(up).toMatchObject({ status: 503, endStream: false, local: true });
    expect(seen(x, up)).toEqual({ 'content-type': 'text/plain', 'content-length': '13' });
    const chunks: Buffer[] = [];
    for await (const c of up.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('unknown error');

    const json = exchange({ answer: { kind: 'direct', status: 200, body }, responseHeaders: { add: [['content-type', 'application/json', true]], remove: [] } });
    expect(seen(json, await chain(json))['content-type']).toBe('application/json');
  });

  it('gives a gRPC caller a trailers-only gRPC status (Envoy maps 503 to UNAVAILABLE), unless the route sets grpc-status', async () => {
    const grpc = { headers: { 'content-type': 'application/grpc' } };
    const x = exchange({ answer: { kind: 'direct', status: 503, body } }, grpc);
    const up = await chain(x);
    expect(up).toMatchObject({ status: 200, endStream: true });
    expect(seen(x, up)).toEqual({ 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'unknown%20error' });
    const set = exchange({ answer: { kind: 'direct', status: 200, body: Buffer.alloc(0) }, responseHeaders: { add: [['grpc-status', '5', true]], remove: [] } }, grpc);
    expect(seen(set, await chain(set))['grpc-status']).toBe('5');
  });

  it('says where for a 201 or a 3xx, as Envoy: the request URL', async () => {
    const x = exchange({ answer: { kind: 'direct', status: 302, body: Buffer.alloc(0) } }, { path: '/here?x=1', authority: 'ratings:9080' });
    expect(seen(x, await chain(x)).location).toBe('http://ratings:9080/here?x=1');
  });
});

describe('CORS', () => {
  const preflight = (origin: string, extra: Record<string, string> = {}) => ({ method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'PUT', ...extra } });

  it('answers a preflight from an allowed origin itself, with the allow headers', async () => {
    const x = exchange({ cors: CORS, responseHeaders: { add: [['x-route', '1', true]], remove: [] } }, preflight('https://example.com'));
    const up = await chain(x);
    expect(up).toMatchObject({ status: 200, endStream: true, local: true });
    // the filter's own answer: the route's response headers are the router's, not applied
    expect(seen(x, up)).toEqual({
      'access-control-allow-origin': 'https://example.com',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'POST,GET',
      'access-control-allow-headers': 'X-Foo',
      'access-control-max-age': '86400',
    });
  });

  it('echoes the request method and headers for "*"', async () => {
    const x = exchange({ cors: { ...CORS, allowMethods: '*', allowHeaders: '*' } }, preflight('https://example.com', { 'access-control-request-headers': 'x-a,x-b' }));
    expect(seen(x, await chain(x))).toMatchObject({ 'access-control-allow-methods': 'PUT', 'access-control-allow-headers': 'x-a,x-b' });
  });

  it('forwards a preflight from another origin untouched, or with forwarding off answers it with no Allow-Origin', async () => {
    const fwd = exchange({ cors: CORS }, preflight('https://evil.test'));
    const up = await chain(fwd);
    expect(up.local).toBeUndefined();
    expect(seen(fwd, up)).toEqual({ 'content-type': 'text/html' });
    const ignore = exchange({ cors: { ...CORS, forwardNotMatchingPreflights: false } }, preflight('https://evil.test'));
    const own = await chain(ignore);
    expect(own).toMatchObject({ status: 200, local: true });
    expect(seen(ignore, own)['access-control-allow-origin']).toBeUndefined();
  });

  it('puts Allow-Origin, Allow-Credentials and Expose-Headers on the response to an allowed origin, and nothing for another', async () => {
    const x = exchange({ cors: CORS }, { headers: { origin: 'https://example.com' } });
    expect(seen(x, await chain(x))).toEqual({
      'content-type': 'text/html',
      'access-control-allow-origin': 'https://example.com',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'X-Trace',
    });
    const other = exchange({ cors: CORS }, { headers: { origin: 'https://evil.test' } });
    expect(seen(other, await chain(other))).toEqual({ 'content-type': 'text/html' });
    const none = exchange({ cors: CORS });
    expect(seen(none, await chain(none))).toEqual({ 'content-type': 'text/html' });
  });

  it('allows any origin for an exact "*", and adds its headers to a direct response', async () => {
    const x = exchange({ cors: { ...CORS, allowOrigins: [{ kind: 'exact', value: '*' }] }, answer: { kind: 'direct', status: 200, body: Buffer.from('hi') } }, { headers: { origin: 'http://anyone.test' } });
    expect(seen(x, await chain(x))['access-control-allow-origin']).toBe('http://anyone.test');
  });
});
