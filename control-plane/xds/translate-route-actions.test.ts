import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../config';
import { unpack, type AnyMessage } from '../../proto/any';
import { TypeUrl } from '../../proto/type-urls';
import { Snapshot } from './snapshot';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pay}
spec:
  hosts: [pay.example.com]
  ports: [{number: 8443, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
`;

const vs = (host: string, http: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${host.split('.')[0]}}
spec:
  hosts: [${host}]
  http:
${http}`;

const snapshot = (yaml: string) =>
  new Snapshot(1, parseConfigText(yaml, 'mesh.yaml'), [], { domain: 'cluster.local', trustDomain: 'cluster.local' });

function routeConfig(snap: Snapshot, name = 'outbound'): Obj {
  const r = snap.served(TypeUrl.RouteConfiguration, [name]).resources[0];
  return unpack<Obj>(r.any, TypeUrl.RouteConfiguration);
}

/** The Envoy routes of one host in the outbound route configuration. */
function routesOf(yaml: string, host: string): Obj[] {
  return routeConfig(snapshot(yaml)).virtual_hosts.find((v: Obj) => v.name === host).routes;
}

const RATINGS = 'ratings.default.svc.cluster.local';

describe('redirect', () => {
  it("translates istio/api's example to Envoy's RedirectAction, with no RouteAction", () => {
    const [r] = routesOf(
      vs('ratings', '  - match: [{uri: {exact: /v1/getProductRatings}}]\n    redirect: {uri: /v1/bookRatings, authority: newratings.default.svc.cluster.local}\n'),
      RATINGS,
    );
    expect(r.match).toEqual({ path: '/v1/getProductRatings' });
    expect(r.route).toBeUndefined();
    expect(r.redirect).toEqual({ path_redirect: '/v1/bookRatings', host_redirect: 'newratings.default.svc.cluster.local', response_code: 'MOVED_PERMANENTLY' });
  });

  it.each([
    [302, 'FOUND'],
    [303, 'SEE_OTHER'],
    [307, 'TEMPORARY_REDIRECT'],
    [308, 'PERMANENT_REDIRECT'],
  ])('maps redirectCode %i to %s', (code, name) => {
    const [r] = routesOf(vs('ratings', `  - redirect: {uri: /x, redirectCode: ${code}}\n`), RATINGS);
    expect(r.redirect.response_code).toBe(name);
  });

  it('writes a port only where it is not the scheme default, FROM_REQUEST_PORT as the service port (Istio: the listener port)', () => {
    const port = (host: string, redirect: string) => routesOf(`${SE}---\n${vs(host, `  - redirect: ${redirect}\n`)}`, host === 'ratings' ? RATINGS : host)[0].redirect.port_redirect;
    expect(port('ratings', '{derivePort: FROM_REQUEST_PORT}')).toBeUndefined(); // a mesh service is on 80, http
    expect(port('pay.example.com', '{derivePort: FROM_REQUEST_PORT}')).toBe(8443);
    expect(port('pay.example.com', '{derivePort: FROM_PROTOCOL_DEFAULT}')).toBeUndefined();
    expect(port('ratings', '{port: 8080}')).toBe(8080);
    expect(port('ratings', '{port: 443, scheme: https}')).toBeUndefined();
    expect(port('ratings', '{port: 443}')).toBe(443);
    expect(port('ratings', '{port: 80, scheme: https}')).toBe(80);
  });

  it('translates scheme and prefixRewrite', () => {
    const [r] = routesOf(vs('ratings', '  - match: [{uri: {prefix: /old/}}]\n    redirect: {prefixRewrite: /new/, scheme: https}\n'), RATINGS);
    expect(r.redirect).toEqual({ prefix_rewrite: '/new/', scheme_redirect: 'https', response_code: 'MOVED_PERMANENTLY' });
  });
});

describe('directResponse', () => {
  it("translates istio/api's examples to Envoy's DirectResponseAction, keeping the route's response headers", () => {
    const [s, b] = routesOf(
      vs(
        'ratings',
        `  - match: [{uri: {exact: /a}}]
    directResponse: {status: 503, body: {string: "unknown error"}}
    headers: {response: {set: {content-type: application/json}}}
  - directResponse: {status: 503, body: {bytes: "dW5rbm93biBlcnJvcg=="}}
`,
      ),
      RATINGS,
    );
    expect(s.direct_response).toEqual({ status: 503, body: { inline_string: 'unknown error' } });
    expect(s.route).toBeUndefined();
    expect(s.response_headers_to_add).toEqual([{ header: { key: 'content-type', value: 'application/json' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
    expect(Buffer.from(b.direct_response.body.inline_bytes).toString()).toBe('unknown error');
  });

  it("raises Envoy's 4 KiB cap on bodies to Istio's 1 MiB in every route configuration", () => {
    const snap = snapshot(vs('ratings', '  - directResponse: {status: 200}\n'));
    expect(routeConfig(snap).max_direct_response_body_size_bytes).toEqual({ value: 1024 * 1024 });
    expect(routeConfig(snap, 'ratings').max_direct_response_body_size_bytes).toEqual({ value: 1024 * 1024 });
  });
});

describe('corsPolicy', () => {
  it('becomes the CORS filter per route as Istio writes it, wrapped as optional for proxyless clients', () => {
    const [r] = routesOf(
      vs(
        'ratings',
        `  - route: [{destination: {host: ratings}}]
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}, {prefix: "http://"}, {regex: ".*\\\\.test"}]
      allowMethods: [POST, GET]
      allowHeaders: [X-Foo-Bar, X-Baz]
      exposeHeaders: [X-Trace]
      maxAge: 24h
      allowCredentials: true
`,
      ),
      RATINGS,
    );
    const wrapped = r.typed_per_filter_config['envoy.filters.http.cors'] as AnyMessage;
    expect(wrapped.type_url).toBe(TypeUrl.FilterConfig);
    const fc = unpack<Obj>(wrapped, TypeUrl.FilterConfig);
    expect(fc.is_optional).toBe(true);
    expect(unpack<Obj>(fc.config, TypeUrl.CorsPolicy)).toEqual({
      allow_origin_string_match: [{ exact: 'https://example.com' }, { prefix: 'http://' }, { safe_regex: { regex: '.*\\.test' } }],
      allow_methods: 'POST,GET',
      allow_headers: 'X-Foo-Bar,X-Baz',
      expose_headers: 'X-Trace',
      max_age: '86400',
      allow_credentials: { value: true },
      filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
      forward_not_matching_preflights: { value: true },
    });
  });

  it('with unmatchedPreflights IGNORE, does not forward preflights from other origins; beside a fault, both filters get their config', () => {
    const [r] = routesOf(
      vs('ratings', '  - route: [{destination: {host: ratings}}]\n    fault: {abort: {httpStatus: 503, percentage: {value: 1}}}\n    corsPolicy: {allowOrigin: ["*"], unmatchedPreflights: IGNORE}\n'),
      RATINGS,
    );
    expect(Object.keys(r.typed_per_filter_config).sort()).toEqual(['envoy.filters.http.cors', 'envoy.filters.http.fault']);
    const policy = unpack<Obj>(unpack<Obj>(r.typed_per_filter_config['envoy.filters.http.cors'], TypeUrl.FilterConfig).config, TypeUrl.CorsPolicy);
    expect(policy.allow_origin_string_match).toEqual([{ exact: '*' }]);
    expect(policy.forward_not_matching_preflights).toEqual({ value: false });
  });

  it('puts the CORS filter after fault and before the router, optional, in every connection manager', () => {
    const snap = snapshot(vs('ratings', '  - route: [{destination: {host: ratings}}]\n'));
    for (const name of [null, ['ratings']]) {
      const l = unpack<Obj>(snap.served(TypeUrl.Listener, name).resources[0].any, TypeUrl.Listener);
      const hcm = unpack<Obj>(l.api_listener?.api_listener ?? l.filter_chains[0].filters[0].typed_config, TypeUrl.HttpConnectionManager);
      expect(hcm.http_filters.map((f: Obj) => [f.name, f.typed_config.type_url, f.is_optional ?? false])).toEqual([
        ['envoy.filters.http.fault', TypeUrl.HTTPFault, false],
        ['envoy.filters.http.cors', TypeUrl.Cors, true],
        ['envoy.filters.http.router', TypeUrl.Router, false],
      ]);
    }
  });
});

describe('fault percentages, as Istio translates them', () => {
  it('gives a delay or abort without percentage 0%', () => {
    const [r] = routesOf(vs('ratings', '  - route: [{destination: {host: ratings}}]\n    fault: {delay: {fixedDelay: 1s}, abort: {httpStatus: 503}}\n'), RATINGS);
    const f = unpack<Obj>(r.typed_per_filter_config['envoy.filters.http.fault'], TypeUrl.HTTPFault);
    expect(f.delay.percentage.numerator ?? 0).toBe(0);
    expect(f.abort.percentage.numerator ?? 0).toBe(0);
  });
});
