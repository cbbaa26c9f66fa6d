import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { parseConfigText } from './load';

const vsWithMatch = (match: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: r
    match:
${match}
    route: [{destination: {host: reviews}}]
`;

const matchOf = (match: string) => parseConfigText(vsWithMatch(match), 'mesh.yaml').virtualServices[0].http[0].match;

function rejection(match: string): ConfigError {
  try {
    parseConfigText(vsWithMatch(match), 'mesh.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('config was accepted');
}

describe('VirtualService match[]: what is read', () => {
  it('reads every match kind of Istio HTTPMatchRequest', () => {
    expect(
      matchOf(`    - name: all
      uri: {prefix: /api}
      ignoreUriCase: true
      headers:
        X-User: {exact: jason}
        x-present: {}
        ":path": {prefix: /api}
      withoutHeaders:
        x-debug: {regex: "1|true"}
        x-canary: {}
      method: {exact: GET}
      authority: {prefix: reviews}
      scheme: {exact: http}
      queryParams:
        v: {exact: ""}
        page: {regex: "[0-9]+"}
        flag: {}
      port: 9080
      gateways: [mesh]`),
    ).toEqual([
      {
        name: 'all',
        uri: { prefix: '/api' },
        ignoreUriCase: true,
        headers: { 'x-user': { exact: 'jason' }, 'x-present': { present: true }, ':path': { prefix: '/api' } },
        withoutHeaders: { 'x-debug': { regex: '1|true' }, 'x-canary': { present: true } },
        method: { exact: 'GET' },
        authority: { prefix: 'reviews' },
        scheme: { exact: 'http' },
        queryParams: { v: { exact: '' }, page: { regex: '[0-9]+' }, flag: { present: true } },
        port: 9080,
      },
    ]);
  });

  it('reads an empty uri match as any path and ignoreUriCase: false as nothing', () => {
    expect(matchOf('    - uri: {}\n      ignoreUriCase: false')).toEqual([{}]);
  });

  it('allows an empty uri prefix (Envoy does) and an empty exact value', () => {
    expect(matchOf('    - uri: {prefix: ""}\n      headers: {x: {exact: ""}}')).toEqual([{ uri: { prefix: '' }, headers: { x: { exact: '' } } }]);
  });

  it('reads the regex "*" in withoutHeaders as presence (Istio translates it to present_match)', () => {
    expect(matchOf('    - withoutHeaders: {x-debug: {regex: "*"}}')).toEqual([{ withoutHeaders: { 'x-debug': { present: true } } }]);
  });

  it('lower-cases pseudo-header names as it does others', () => {
    expect(matchOf('    - headers: {":Authority": {exact: a}}')).toEqual([{ headers: { ':authority': { exact: 'a' } } }]);
  });
});

describe('VirtualService match[]: what is refused, naming the field', () => {
  it.each<[string, string, string, RegExp]>([
    ['two kinds in one match', '    - method: {exact: GET, prefix: G}', 'spec.http[0].match[0].method', /at most one of exact, prefix, regex, got exact and prefix/],
    ['an empty header prefix', '    - headers: {x: {prefix: ""}}', 'spec.http[0].match[0].headers.x.prefix', /must not be empty/],
    ['an empty query prefix', '    - queryParams: {q: {prefix: ""}}', 'spec.http[0].match[0].queryParams.q.prefix', /must not be empty/],
    ['an empty regex', '    - authority: {regex: ""}', 'spec.http[0].match[0].authority.regex', /must not be empty/],
    ['a bad regex', '    - scheme: {regex: "(h"}', 'spec.http[0].match[0].scheme.regex', /invalid regex/],
    ['the regex "*" outside withoutHeaders', '    - headers: {x: {regex: "*"}}', 'spec.http[0].match[0].headers.x.regex', /invalid regex/],
    ['a null header match', '    - headers: {x: }', 'spec.http[0].match[0].headers.x', /must be a mapping, got null/],
    ['a bad header name', '    - withoutHeaders: {"x y": {}}', 'spec.http[0].match[0].withoutHeaders["x y"]', /invalid header name/],
    ['JWT claim routing', '    - headers: {"@request.auth.claims.group": {exact: a}}', 'spec.http[0].match[0].headers["@request.auth.claims.group"]', /not supported by Tandem/],
    ['port 0', '    - port: 0', 'spec.http[0].match[0].port', /must be an integer 1\.\.65535/],
    ['a port as a string', '    - port: "80"', 'spec.http[0].match[0].port', /must be an integer/],
    ['ignoreUriCase not a boolean', '    - ignoreUriCase: yes', 'spec.http[0].match[0].ignoreUriCase', /must be true or false/],
    ['a gateway other than mesh', '    - gateways: [mesh, istio-system/ingress]', 'spec.http[0].match[0].gateways[1]', /not supported by Tandem/],
    ['statPrefix', '    - statPrefix: reviews', 'spec.http[0].match[0].statPrefix', /not supported by Tandem/],
    ['an unknown match field', '    - url: {exact: /}', 'spec.http[0].match[0].url', /unknown field/],
  ])('%s', (_what, match, field, detail) => {
    const e = rejection(match);
    expect(e.doc).toBe(0);
    expect(e.field).toBe(field);
    expect(e.detail).toMatch(detail);
  });
});
