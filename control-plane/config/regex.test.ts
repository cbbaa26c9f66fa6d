// Config regexes are RE2, checked at load with the engine the sidecar runs; uriRegexRewrite
// is read and translated to Envoy's regex_rewrite.
import { describe, expect, it } from 'vitest';
import { unpack } from '../../proto/any';
import { TypeUrl } from '../../proto/type-urls';
import { Snapshot } from '../xds/snapshot';
import { ConfigError } from './errors';
import { parseConfigText } from './load';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const vs = (http: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
${http}`;

function refusal(yaml: string): ConfigError {
  try {
    parseConfigText(yaml, 'mesh.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('config was accepted');
}

const matchRoute = (match: string) => vs(`  - match: [${match}]\n    route: [{destination: {host: reviews}}]\n`);
const rewriteRoute = (rewrite: string) => vs(`  - rewrite: ${rewrite}\n    route: [{destination: {host: reviews}}]\n`);

describe('RE2 regexes in VirtualService matches', () => {
  it("accepts Istio's documented (?i) and other RE2-only syntax", () => {
    const c = parseConfigText(
      matchRoute('{uri: {regex: "(?i)/Reviews/.*"}, headers: {x-user: {regex: "\\\\Qa.b\\\\E|(?P<n>[[:alpha:]]+)"}}, method: {regex: "(?i)get"}, queryParams: {v: {regex: "\\\\d+\\\\z"}}}'),
      'mesh.yaml',
    );
    expect(c.virtualServices[0].http[0].match[0].uri).toEqual({ regex: '(?i)/Reviews/.*' });
  });

  it.each<[string, string, string, RegExp]>([
    ['a lookahead in a uri', '{uri: {regex: "/a(?=b)"}}', 'spec.http[0].match[0].uri.regex', /lookarounds are not RE2/],
    ['a lookbehind in a header', '{headers: {x-user: {regex: "(?<=a)b"}}}', 'spec.http[0].match[0].headers["x-user"].regex', /lookarounds are not RE2/],
    ['a backreference in a query parameter', '{queryParams: {v: {regex: "(a)\\\\1"}}}', 'spec.http[0].match[0].queryParams.v.regex', /backreferences are not RE2/],
    ['a malformed method regex', '{method: {regex: "GET|("}}', 'spec.http[0].match[0].method.regex', /missing closing \)/],
    ['an empty regex', '{uri: {regex: ""}}', 'spec.http[0].match[0].uri.regex', /must not be empty/],
    ['a regex longer than Istio allows', `{uri: {regex: "${'a'.repeat(1025)}"}}`, 'spec.http[0].match[0].uri.regex', /1025 characters long; Istio allows at most 1024/],
  ])('refuses %s at load, naming the field', (_, match, field, detail) => {
    const e = refusal(matchRoute(match));
    expect(e.field).toBe(field);
    expect(e.message).toMatch(detail);
  });

  it('refuses a regex whose RE2 program is too large', () => {
    const big = `(?:${Array.from({ length: 40 }, (_, i) => `${String.fromCharCode(97 + (i % 26))}${i}{999}`).join('|')})`;
    expect(refusal(matchRoute(`{uri: {regex: "${big}"}}`)).message).toMatch(/program size \d+ exceeds 32768/);
  });
});

describe('rewrite.uriRegexRewrite', () => {
  it('reads match and rewrite, and translates them to Envoy regex_rewrite', () => {
    const yaml = rewriteRoute('{uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: "\\\\2/instance/\\\\1"}, authority: reviews-v2}');
    const config = parseConfigText(yaml, 'mesh.yaml');
    expect(config.virtualServices[0].http[0].rewrite).toEqual({
      authority: 'reviews-v2',
      uriRegexRewrite: { match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1' },
    });
    const snap = new Snapshot(1, config, [], { domain: 'cluster.local', trustDomain: 'cluster.local' });
    const [res] = snap.served(TypeUrl.RouteConfiguration, null).resources;
    const rc = unpack<Obj>(res.any, TypeUrl.RouteConfiguration);
    const route = rc.virtual_hosts.find((v: Obj) => v.name === 'reviews.default.svc.cluster.local').routes[0].route;
    expect(route.regex_rewrite).toEqual({ pattern: { regex: '^/service/([^/]+)(/.*)$' }, substitution: '\\2/instance/\\1' });
    expect(route.prefix_rewrite).toBeUndefined();
    expect(route.host_rewrite_literal).toBe('reviews-v2');
  });

  it.each<[string, string, string | undefined, RegExp]>([
    ['uri together with uriRegexRewrite', '{uri: /v2, uriRegexRewrite: {match: "^/a", rewrite: /b}}', 'spec.http[0].rewrite', /only contain one of uri, uriRegexRewrite/],
    ['a non-RE2 match', '{uriRegexRewrite: {match: "/a(?!b)", rewrite: /b}}', 'spec.http[0].rewrite.uriRegexRewrite.match', /lookarounds are not RE2/],
    ['a rewrite naming a group the match lacks', '{uriRegexRewrite: {match: "^/(a)", rewrite: "/\\\\2"}}', 'spec.http[0].rewrite.uriRegexRewrite.rewrite', /refers to group \\2, but "\^\/\(a\)" has 1 capture group/],
    ['a rewrite with a stray backslash', '{uriRegexRewrite: {match: "^/a", rewrite: "/\\\\x"}}', 'spec.http[0].rewrite.uriRegexRewrite.rewrite', /backslash must be followed by a group number/],
    ['a missing rewrite', '{uriRegexRewrite: {match: "^/a"}}', 'spec.http[0].rewrite.uriRegexRewrite.rewrite', /is required/],
    ['an empty match', '{uriRegexRewrite: {match: "", rewrite: /b}}', 'spec.http[0].rewrite.uriRegexRewrite.match', /must not be empty/],
    ['an empty rewrite', '{}', 'spec.http[0].rewrite', /at least one of uri, uriRegexRewrite, authority/],
  ])('refuses %s', (_, rewrite, field, detail) => {
    const e = refusal(rewriteRoute(rewrite));
    expect(e.field).toBe(field);
    expect(e.message).toMatch(detail);
  });
});
