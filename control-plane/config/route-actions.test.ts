import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { parseConfigText } from './load';

const vs = (http: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
${http}`;

const firstRoute = (http: string) => parseConfigText(vs(http), 'mesh.yaml').virtualServices[0].http[0];

function rejects(text: string): ConfigError {
  try {
    parseConfigText(text, 'mesh.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('config was accepted');
}

describe('redirect', () => {
  it("reads istio/api's example: a new uri and authority, 301 by default, and no destinations", () => {
    const r = firstRoute(`  - match: [{uri: {exact: /v1/getProductRatings}}]
    redirect:
      uri: /v1/bookRatings
      authority: newratings.default.svc.cluster.local
`);
    expect(r.route).toEqual([]);
    expect(r.redirect).toEqual({ uri: '/v1/bookRatings', authority: 'newratings.default.svc.cluster.local', redirectCode: 301 });
  });

  it('reads the code, scheme, port or derivePort, and a prefix rewrite under prefix matches', () => {
    expect(firstRoute('  - redirect: {scheme: https, port: 8443, redirectCode: 308}\n').redirect).toEqual({ scheme: 'https', port: 8443, redirectCode: 308 });
    expect(firstRoute('  - redirect: {derivePort: FROM_REQUEST_PORT, redirectCode: 302}\n').redirect).toEqual({ derivePort: 'FROM_REQUEST_PORT', redirectCode: 302 });
    expect(firstRoute('  - match: [{uri: {prefix: /old/}}, {headers: {x-a: {exact: b}}}]\n    redirect: {prefixRewrite: /new/}\n').redirect).toEqual({ prefixRewrite: '/new/', redirectCode: 301 });
    // istio/api's own example writes the protobuf name, which Istio reads too
    expect(firstRoute('  - match: [{uri: {prefix: /foo/}}]\n    redirect: {authority: foo.example.com, prefix_rewrite: /}\n').redirect).toEqual({ authority: 'foo.example.com', prefixRewrite: '/', redirectCode: 301 });
    // an empty route list is no route (Istio checks len(route) > 0)
    expect(firstRoute('  - route: []\n    redirect: {uri: /x}\n').redirect).toEqual({ uri: '/x', redirectCode: 301 });
  });
});

describe('directResponse', () => {
  it("reads istio/api's examples: a string body, base64 bytes, and response headers beside it", () => {
    expect(firstRoute('  - directResponse: {status: 503, body: {string: "unknown error"}}\n').directResponse).toEqual({ status: 503, body: { string: 'unknown error' } });
    const r = firstRoute(`  - directResponse:
      status: 503
      body: {bytes: "dW5rbm93biBlcnJvcg=="}
    headers:
      response: {set: {content-type: "application/json"}}
`);
    expect(r.directResponse).toEqual({ status: 503, body: { bytes: 'dW5rbm93biBlcnJvcg==' } });
    expect(r.headers?.response?.set).toEqual({ 'content-type': 'application/json' });
    expect(firstRoute('  - directResponse: {status: 204}\n').directResponse).toEqual({ status: 204 });
    // Istio's schema allows a body with neither: an empty one
    expect(firstRoute('  - directResponse: {status: 200, body: {}}\n').directResponse).toEqual({ status: 200 });
  });

  it('takes a body of exactly 1 MiB', () => {
    const big = 'a'.repeat(1024 * 1024);
    expect(firstRoute(`  - directResponse: {status: 200, body: {string: "${big}"}}\n`).directResponse?.body).toEqual({ string: big });
  });
});

describe('corsPolicy', () => {
  it("reads istio/api's example", () => {
    const r = firstRoute(`  - route: [{destination: {host: ratings}}]
    corsPolicy:
      allowOrigins:
      - exact: https://example.com
      - regex: "https://.*\\\\.example\\\\.org"
      allowMethods: [POST, GET]
      allowCredentials: false
      allowHeaders: [X-Foo-Bar]
      exposeHeaders: [X-Trace]
      maxAge: "24h"
`);
    expect(r.corsPolicy).toEqual({
      allowOrigins: [{ exact: 'https://example.com' }, { regex: 'https://.*\\.example\\.org' }],
      allowMethods: ['POST', 'GET'],
      allowHeaders: ['X-Foo-Bar'],
      exposeHeaders: ['X-Trace'],
      maxAgeSeconds: 86400,
      allowCredentials: false,
      unmatchedPreflights: 'FORWARD',
    });
  });

  it('reads the deprecated allowOrigin as exact matches, and unmatchedPreflights', () => {
    const r = firstRoute('  - route: [{destination: {host: ratings}}]\n    corsPolicy: {allowOrigin: ["*", "http://a.test"], unmatchedPreflights: IGNORE}\n');
    expect(r.corsPolicy).toEqual({
      allowOrigins: [{ exact: '*' }, { exact: 'http://a.test' }],
      allowMethods: [],
      allowHeaders: [],
      exposeHeaders: [],
      unmatchedPreflights: 'IGNORE',
    });
  });

  it('goes with a redirect or a direct response too', () => {
    expect(firstRoute('  - directResponse: {status: 200}\n    corsPolicy: {allowOrigins: [{prefix: "http://"}]}\n').corsPolicy?.allowOrigins).toEqual([{ prefix: 'http://' }]);
  });
});

describe('fault percentages, as Istio', () => {
  it('faults no request when neither percentage nor percent is given', () => {
    const f = (fault: string) => firstRoute(`  - route: [{destination: {host: ratings}}]\n    fault: ${fault}\n`).fault;
    expect(f('{delay: {fixedDelay: 5s}}')).toEqual({ delay: { fixedDelayMs: 5000, percentage: 0 } });
    expect(f('{abort: {httpStatus: 400}}')).toEqual({ abort: { httpStatus: 400, percentage: 0 } });
    expect(f('{delay: {fixedDelay: 5s, percent: 30}}')).toEqual({ delay: { fixedDelayMs: 5000, percentage: 30 } });
    expect(f('{abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.1}}}')).toEqual({ abort: { grpcStatus: 14, percentage: 0.1 } });
  });
});

describe('refused, naming the field', () => {
  const MIB = 'a'.repeat(1024 * 1024 + 1);
  it.each<[string, string, string, RegExp]>([
    ['redirect and route', '  - route: [{destination: {host: ratings}}]\n    redirect: {uri: /x}\n', 'spec.http[0].route', /cannot be used together with redirect/],
    ['directResponse and route', '  - route: [{destination: {host: ratings}}]\n    directResponse: {status: 503}\n', 'spec.http[0].route', /cannot be used together with directResponse/],
    ['redirect and directResponse', '  - redirect: {uri: /x}\n    directResponse: {status: 503}\n', 'spec.http[0].directResponse', /cannot be used together with redirect/],
    ['redirect and fault', '  - redirect: {uri: /x}\n    fault: {abort: {httpStatus: 503, percentage: {value: 1}}}\n', 'spec.http[0].fault', /cannot be used together with redirect/],
    ['redirect and rewrite', '  - redirect: {uri: /x}\n    rewrite: {uri: /y}\n', 'spec.http[0].rewrite', /cannot be used together with redirect/],
    ['directResponse and fault', '  - directResponse: {status: 503}\n    fault: {delay: {fixedDelay: 1s}}\n', 'spec.http[0].fault', /cannot be used together with directResponse/],
    ['directResponse and rewrite', '  - directResponse: {status: 503}\n    rewrite: {authority: x}\n', 'spec.http[0].rewrite', /cannot be used together with directResponse/],
    ['no action at all', '  - match: [{uri: {prefix: /}}]\n', 'spec.http[0].route', /is required unless the route has a redirect or a directResponse/],
    ['an empty route list alone', '  - route: []\n', 'spec.http[0].route', /is required unless/],
    ['an empty redirect', '  - redirect: {redirectCode: 302}\n', 'spec.http[0].redirect', /must set at least one of uri, prefixRewrite, authority, port, derivePort, scheme/],
    ['a redirect code that is no 3xx', '  - redirect: {uri: /x, redirectCode: 200}\n', 'spec.http[0].redirect.redirectCode', /must be a 3xx status, got 200/],
    ['a 3xx Envoy cannot send', '  - redirect: {uri: /x, redirectCode: 304}\n', 'spec.http[0].redirect.redirectCode', /304 is not supported by Tandem \(nor by Istio/],
    ['a scheme other than http(s)', '  - redirect: {scheme: ftp}\n', 'spec.http[0].redirect.scheme', /must be "http" or "https"/],
    ['uri and prefixRewrite', '  - redirect: {uri: /x, prefixRewrite: /y}\n', 'spec.http[0].redirect.prefixRewrite', /together with uri/],
    ['prefixRewrite under an exact match', '  - match: [{uri: {prefix: /a}}, {uri: {exact: /b}}]\n    redirect: {prefixRewrite: /y}\n', 'spec.http[0].redirect.prefixRewrite', /match\[1\]\.uri is not/],
    ['prefixRewrite written twice', '  - redirect: {prefixRewrite: /a, prefix_rewrite: /b}\n', 'spec.http[0].redirect.prefix_rewrite', /keep one/],
    ['port and derivePort', '  - redirect: {port: 80, derivePort: FROM_REQUEST_PORT}\n', 'spec.http[0].redirect.derivePort', /together with port/],
    ['an unknown derivePort', '  - redirect: {derivePort: FROM_HEADER}\n', 'spec.http[0].redirect.derivePort', /must be one of FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT/],
    ['an unknown redirect field', '  - redirect: {uri: /x, host: y}\n', 'spec.http[0].redirect.host', /unknown field/],
    ['a status Envoy cannot send', '  - directResponse: {status: 600}\n', 'spec.http[0].directResponse.status', /must be an integer 200\.\.599/],
    ['a direct response without status', '  - directResponse: {body: {string: x}}\n', 'spec.http[0].directResponse.status', /is required/],
    ['a body with string and bytes', '  - directResponse: {status: 200, body: {string: x, bytes: eA==}}\n', 'spec.http[0].directResponse.body', /one of string, bytes, not both/],
    ['bytes that are not base64', '  - directResponse: {status: 200, body: {bytes: "not base64!"}}\n', 'spec.http[0].directResponse.body.bytes', /must be base64/],
    ['a body over 1 MiB', `  - directResponse: {status: 200, body: {string: "${MIB}"}}\n`, 'spec.http[0].directResponse.body.string', /is 1048577 bytes; a direct response body may be at most 1 MiB/],
    ['an origin that matches the empty string', '  - directResponse: {status: 200}\n    corsPolicy: {allowOrigins: [{exact: ""}]}\n', 'spec.http[0].corsPolicy.allowOrigins[0]', /must not match the empty string/],
    ['an origin with two match kinds', '  - directResponse: {status: 200}\n    corsPolicy: {allowOrigins: [{exact: a, prefix: b}]}\n', 'spec.http[0].corsPolicy.allowOrigins[0]', /exactly one of exact, prefix, regex/],
    ['an unknown method', '  - directResponse: {status: 200}\n    corsPolicy: {allowMethods: [GET, FETCH]}\n', 'spec.http[0].corsPolicy.allowMethods[1]', /"FETCH" is not an HTTP method/],
    ['a bad header name', '  - directResponse: {status: 200}\n    corsPolicy: {allowHeaders: ["x y"]}\n', 'spec.http[0].corsPolicy.allowHeaders[0]', /invalid header name/],
    ['a bad expose header name', '  - directResponse: {status: 200}\n    corsPolicy: {exposeHeaders: ["a:b"]}\n', 'spec.http[0].corsPolicy.exposeHeaders[0]', /invalid header name/],
    ['a maxAge in fractions of a second', '  - directResponse: {status: 200}\n    corsPolicy: {maxAge: 1500ms}\n', 'spec.http[0].corsPolicy.maxAge', /whole seconds/],
    ['a zero maxAge', '  - directResponse: {status: 200}\n    corsPolicy: {maxAge: 0s}\n', 'spec.http[0].corsPolicy.maxAge', /positive/],
    ['allowOrigins beside allowOrigin', '  - directResponse: {status: 200}\n    corsPolicy: {allowOrigins: [{exact: a}], allowOrigin: [b]}\n', 'spec.http[0].corsPolicy.allowOrigin', /keep allowOrigins/],
    ['an unknown unmatchedPreflights', '  - directResponse: {status: 200}\n    corsPolicy: {unmatchedPreflights: DROP}\n', 'spec.http[0].corsPolicy.unmatchedPreflights', /must be one of UNSPECIFIED, FORWARD, IGNORE/],
    ['an unknown corsPolicy field', '  - directResponse: {status: 200}\n    corsPolicy: {allowPrivateNetwork: true}\n', 'spec.http[0].corsPolicy.allowPrivateNetwork', /unknown field/],
  ])('%s', (_name, http, field, detail) => {
    const e = rejects(vs(http));
    expect(e.field).toBe(field);
    expect(e.detail).toMatch(detail);
    expect(e.message).toContain(`mesh.yaml: document 0 (VirtualService default/ratings): ${field}: `);
  });
});
