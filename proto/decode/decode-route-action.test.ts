import { describe, expect, it } from 'vitest';
import { pack } from '../any';
import { TypeUrl } from '../type-urls';
import { DecodeError, decodeListener, decodeRouteConfig } from './decode';

type Obj = Record<string, unknown>;

const rc = (routes: Obj[], over: Obj = {}) =>
  decodeRouteConfig(pack(TypeUrl.RouteConfiguration, { name: 'outbound', virtual_hosts: [{ name: 'ratings', domains: ['ratings'], routes }], ...over }));

const one = (route: Obj, over: Obj = {}) => rc([{ name: 'r', match: { prefix: '/' }, ...route }], over).virtualHosts[0].routes[0];

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return (err as DecodeError).field;
  }
  throw new Error('expected a DecodeError, got none');
}

const AT = 'virtual_hosts[0].routes[0]';
const CORS_AT = `${AT}.typed_per_filter_config.envoy.filters.http.cors`;

describe('redirect routes', () => {
  it('decode the RedirectAction, with no cluster', () => {
    const r = one({ redirect: { path_redirect: '/v1/bookRatings', host_redirect: 'newratings', response_code: 'FOUND' }, response_headers_to_add: [{ header: { key: 'x-a', value: 'b' } }] });
    expect(r.clusters).toEqual([]);
    expect(r.answer).toEqual({ kind: 'redirect', path: '/v1/bookRatings', host: 'newratings', status: 302, stripQuery: false });
    expect(r.responseHeaders.add).toEqual([['x-a', 'b', false]]);
    expect(one({ redirect: { https_redirect: true, port_redirect: 8443, strip_query: true, prefix_rewrite: '/new/' } }).answer).toEqual({
      kind: 'redirect',
      scheme: 'https',
      port: 8443,
      prefixRewrite: '/new/',
      stripQuery: true,
      status: 301,
    });
  });

  it('refuse what the sidecar does not do, naming the field', () => {
    expect(fieldOf(() => one({ redirect: { regex_rewrite: { pattern: { regex: 'a' }, substitution: 'b' } } }))).toBe(`${AT}.redirect.regex_rewrite`);
    expect(fieldOf(() => one({ redirect: { path_redirect: 'relative' } }))).toBe(`${AT}.redirect.path_redirect`);
  });
});

describe('direct response routes', () => {
  it('decode the status and an inline body', () => {
    expect(one({ direct_response: { status: 503, body: { inline_string: 'unknown error' } } }).answer).toEqual({ kind: 'direct', status: 503, body: Buffer.from('unknown error') });
    expect(one({ direct_response: { status: 200, body: { inline_bytes: Buffer.from([0, 1, 2]) } } }).answer).toEqual({ kind: 'direct', status: 200, body: Buffer.from([0, 1, 2]) });
    expect(one({ direct_response: { status: 204 } }).answer).toEqual({ kind: 'direct', status: 204, body: Buffer.alloc(0) });
  });

  it("hold bodies to the route configuration's max_direct_response_body_size_bytes, 4 KiB by default as in Envoy", () => {
    const body = { inline_string: 'a'.repeat(4097) };
    expect(fieldOf(() => one({ direct_response: { status: 200, body } }))).toBe(`${AT}.direct_response.body`);
    expect((one({ direct_response: { status: 200, body } }, { max_direct_response_body_size_bytes: { value: 1 << 20 } }).answer as { body: Buffer }).body).toHaveLength(4097);
  });

  it('refuse a body from a file, or a status out of range', () => {
    expect(fieldOf(() => one({ direct_response: { status: 200, body: { filename: '/etc/passwd' } } }))).toBe(`${AT}.direct_response.body.filename`);
    expect(fieldOf(() => one({ direct_response: { status: 99 } }))).toBe(`${AT}.direct_response.status`);
  });

  it('keep a fault on the route (the fault filter runs before the router answers)', () => {
    const r = one({ direct_response: { status: 200 }, typed_per_filter_config: { 'envoy.filters.http.fault': pack(TypeUrl.HTTPFault, { abort: { http_status: 418, percentage: { numerator: 100 } } }) } });
    expect(r.fault).toEqual({ abort: { httpStatus: 418, grpcStatus: undefined, fraction: 1 } });
  });
});

const policy = (over: Obj = {}) =>
  pack(TypeUrl.CorsPolicy, {
    allow_origin_string_match: [{ exact: 'https://example.com' }, { safe_regex: { regex: 'https://.*\\.test' } }],
    allow_methods: 'POST,GET',
    allow_headers: 'X-Foo',
    expose_headers: 'X-Trace',
    max_age: '86400',
    allow_credentials: { value: true },
    filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
    forward_not_matching_preflights: { value: false },
    ...over,
  });
const wrapped = (config = policy(), over: Obj = {}) => pack(TypeUrl.FilterConfig, { config, is_optional: true, ...over });
const withCors = (any: ReturnType<typeof pack>) => one({ route: { cluster: 'c' }, typed_per_filter_config: { 'envoy.filters.http.cors': any } });

describe('the CORS policy of a route', () => {
  it('decodes from a FilterConfig, as the control plane sends it, or bare', () => {
    for (const any of [wrapped(), policy()]) {
      const c = withCors(any).cors!;
      expect(c).toMatchObject({ allowMethods: 'POST,GET', allowHeaders: 'X-Foo', exposeHeaders: 'X-Trace', maxAge: '86400', allowCredentials: true, forwardNotMatchingPreflights: false });
      expect(c.allowOrigins.map((m) => m.kind)).toEqual(['exact', 'regex']);
    }
  });

  it("defaults as Envoy: preflights from other origins are forwarded, credentials are not allowed", () => {
    const c = withCors(wrapped(pack(TypeUrl.CorsPolicy, { allow_origin_string_match: [{ prefix: 'http://' }] }))).cors!;
    expect(c).toEqual({ allowOrigins: [{ kind: 'prefix', value: 'http://' }], allowMethods: '', allowHeaders: '', exposeHeaders: '', maxAge: '', allowCredentials: false, forwardNotMatchingPreflights: true });
  });

  it('refuses what it does not implement, naming the field', () => {
    expect(fieldOf(() => withCors(wrapped(policy({ shadow_enabled: { default_value: { numerator: 100 } } }))))).toBe(`${CORS_AT}.config.shadow_enabled`);
    expect(fieldOf(() => withCors(wrapped(policy({ filter_enabled: { default_value: { numerator: 50 } } }))))).toBe(`${CORS_AT}.config.filter_enabled`);
    expect(fieldOf(() => withCors(policy({ allow_private_network_access: { value: true } })))).toBe(`${CORS_AT}.allow_private_network_access`);
    expect(fieldOf(() => withCors(wrapped(policy(), { disabled: true })))).toBe(`${CORS_AT}.disabled`);
    expect(fieldOf(() => withCors(wrapped(pack(TypeUrl.HTTPFault, {}))))).toBe(`${CORS_AT}.config.type_url`);
    expect(fieldOf(() => withCors(wrapped(policy({ allow_origin_string_match: [{ exact: 'a', ignore_case: true }] }))))).toBe(`${CORS_AT}.config.allow_origin_string_match[0].ignore_case`);
  });
});

describe('the CORS filter in the connection manager', () => {
  const listener = (filters: Obj[]) =>
    pack(TypeUrl.Listener, {
      name: 'outbound',
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: pack(TypeUrl.HttpConnectionManager, { rds: { config_source: { ads: {} }, route_config_name: 'outbound' }, http_filters: filters }),
            },
          ],
        },
      ],
    });
  const router = { name: 'envoy.filters.http.router', typed_config: pack(TypeUrl.Router, {}) };

  it('is taken, optional or not, before the router', () => {
    expect(decodeListener(listener([{ name: 'envoy.filters.http.cors', typed_config: pack(TypeUrl.Cors, {}), is_optional: true }, router]))).toMatchObject({ kind: 'outbound', routeConfigName: 'outbound' });
  });

  it('refuses another config under its name', () => {
    expect(fieldOf(() => decodeListener(listener([{ name: 'envoy.filters.http.cors', typed_config: pack(TypeUrl.HTTPFault, {}) }, router])))).toBe(
      'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.type_url',
    );
  });
});
