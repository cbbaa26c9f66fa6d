import { describe, expect, it } from 'vitest';
import { pack, type AnyMessage } from '../../proto/any';
import { TypeUrl } from '../../proto/type-urls';
import { DecodeError } from '../../proto/decode/decode';
import { decodeRbacFilter } from '../../proto/decode/decode-rbac';
import { cidrContains, makeCidr, parseIp } from '../../proto/decode/rbac-model';
import { compileAuthorizer, type AuthzRequest } from './authz';

type Obj = Record<string, unknown>;

const AT = 'filter_chains[0].filters[0].typed_config.http_filters[0].typed_config';
const rbac = (cfg: Obj): AnyMessage => pack(TypeUrl.RBAC, cfg);
const decodeCfg = (cfg: Obj) => decodeRbacFilter(rbac(cfg), 'inbound', AT);

const ANY = { any: true };
const policy = (permissions: Obj[], principals: Obj[] = [ANY]) => ({ permissions, principals });
const rules = (action: string, policies: Record<string, Obj>) => ({ rules: { action, policies } });

function req(p: Partial<AuthzRequest> & { headers?: Record<string, string> } = {}): AuthzRequest {
  const headers = p.headers ?? {};
  return {
    method: 'GET',
    path: '/',
    authority: 'svc',
    header: (n) => headers[n],
    sourceIp: '10.0.0.2',
    remoteIp: '10.0.0.2',
    destinationIp: '10.0.0.9',
    destinationPort: 8080,
    peerPrincipal: 'spiffe://cluster.local/ns/default/sa/sleep',
    ...p,
  };
}

/** One ALLOW filter with one policy: does the request match the permission (and principal)? */
const allows = (permission: Obj, r: AuthzRequest, principal: Obj = ANY): boolean =>
  compileAuthorizer([decodeCfg(rules('ALLOW', { p: policy([permission], [principal]) }))]).check(r).allowed;
const header = (h: Obj) => ({ header: { name: 'x-h', ...h } });

describe('decodeRbacFilter refuses what the evaluator does not implement, naming the field', () => {
  const P = `${AT}.rules.policies["p"]`;
  it.each<[string, Obj, string, RegExp]>([
    ['a CEL condition', rules('ALLOW', { p: { ...policy([ANY]), condition: { const_expr: { bool_value: true } } } }), `${P}.condition`, /not supported/],
    ['a metadata permission', rules('ALLOW', { p: policy([{ metadata: { filter: 'f', path: [{ key: 'k' }], value: { string_match: { exact: 'x' } } } }]) }), `${P}.permissions[0].metadata`, /not supported/],
    ['a filter_state principal', rules('DENY', { p: policy([ANY], [{ filter_state: { key: 'k', string_match: { exact: 'x' } } }]) }), `${P}.principals[0].filter_state`, /not supported/],
    ['a nested metadata principal', rules('ALLOW', { p: policy([ANY], [{ not_id: { metadata: { filter: 'f', path: [{ key: 'k' }], value: { present_match: true } } } }]) }), `${P}.principals[0].not_id.metadata`, /not supported/],
    ['a uri_template permission', rules('ALLOW', { p: policy([{ uri_template: { name: 't', typed_config: pack(TypeUrl.Router, {}) } }]) }), `${P}.permissions[0].uri_template`, /not supported/],
    ['the matcher API', { matcher: { on_no_match: { action: { name: 'a', typed_config: pack(TypeUrl.Router, {}) } } } }, `${AT}.matcher`, /not supported/],
    ['audit logging', { rules: { action: 'LOG', audit_logging_options: { audit_condition: 'ON_DENY' } } }, `${AT}.rules.audit_logging_options`, /not supported/],
    ['shadow rules with a metadata matcher', { shadow_rules: rules('DENY', { p: policy([{ metadata: { filter: 'f', path: [{ key: 'k' }], value: { present_match: true } } }]) }).rules }, `${AT}.shadow_rules.policies["p"].permissions[0].metadata`, /not supported/],
    ['a custom string matcher', rules('ALLOW', { p: policy([ANY], [{ authenticated: { principal_name: { custom: { name: 'c', typed_config: pack(TypeUrl.Router, {}) } } } }]) }), `${P}.principals[0].authenticated.principal_name.custom`, /not supported/],
    ['a lookahead', rules('ALLOW', { p: policy([{ url_path: { path: { safe_regex: { regex: '/a(?=b)' } } } }]) }), `${P}.permissions[0].url_path.path.safe_regex.regex`, /lookarounds/],
    ['a backreference', rules('ALLOW', { p: policy([header({ safe_regex_match: { regex: '(a)\\1' } })]) }), `${P}.permissions[0].header.safe_regex_match.regex`, /backreferences/],
    ['a bad regex', rules('ALLOW', { p: policy([{ url_path: { path: { safe_regex: { regex: '(' } } } }]) }), `${P}.permissions[0].url_path.path.safe_regex.regex`, /invalid regex/],
    ['a CIDR too long', rules('ALLOW', { p: policy([ANY], [{ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 33 } } }]) }), `${P}.principals[0].direct_remote_ip`, /bad CIDR/],
    ['a CIDR that is no address', rules('ALLOW', { p: policy([{ destination_ip: { address_prefix: 'host', prefix_len: { value: 8 } } }]) }), `${P}.permissions[0].destination_ip`, /bad CIDR/],
    ['a policy without permissions', rules('ALLOW', { p: { principals: [ANY] } }), `${P}.permissions`, /at least one/],
    ['an empty and_rules', rules('ALLOW', { p: policy([{ and_rules: { rules: [] } }]) }), `${P}.permissions[0].and_rules.rules`, /at least one/],
    ['a permission with no rule', rules('ALLOW', { p: policy([{}]) }), `${P}.permissions[0]`, /exactly one of/],
    ['any: false', rules('ALLOW', { p: policy([{ any: false }]) }), `${P}.permissions[0].any`, /must be true/],
    ['an empty prefix', rules('ALLOW', { p: policy([{ url_path: { path: { prefix: '' } } }]) }), `${P}.permissions[0].url_path.path.prefix`, /must not be empty/],
    ['a header without a name', rules('ALLOW', { p: policy([{ header: { present_match: true } }]) }), `${P}.permissions[0].header.name`, /must be set/],
  ])('%s', (_name, cfg, field, detail) => {
    let err: unknown;
    try {
      decodeCfg(cfg);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).field).toBe(field);
    expect((err as DecodeError).resource).toBe('inbound');
    expect((err as Error).message).toMatch(detail);
  });

  it('refuses another type and undecodable bytes', () => {
    expect(() => decodeRbacFilter(pack(TypeUrl.Router, {}), 'l', 'tc')).toThrow(/^l: tc\.type_url: expected .*RBAC/);
    expect(() => decodeRbacFilter({ type_url: TypeUrl.RBAC, value: Uint8Array.of(0x0a, 0x05, 0x01) }, 'l', 'tc')).toThrow(/^l: tc: cannot decode/);
    // rules { action: 3 }: a number no Action has
    expect(() => decodeRbacFilter({ type_url: TypeUrl.RBAC, value: Uint8Array.of(0x0a, 0x02, 0x08, 0x03) }, 'l', 'tc')).toThrow(/^l: tc\.rules\.action: unknown action 3/);
  });

  it('accepts stat prefixes, and sorts policies as Envoy`s map does', () => {
    const m = decodeCfg({ ...rules('DENY', { b: policy([ANY]), a: policy([ANY]) }), rules_stat_prefix: 'x', track_per_rule_stats: true });
    expect(m.rules?.policies.map((p) => p.name)).toEqual(['a', 'b']);
  });
});

describe('compileAuthorizer', () => {
  // Any property read throws: proof that the fast path does no work.
  const untouchable = new Proxy({} as AuthzRequest, {
    get() {
      throw new Error('request read');
    },
  });

  it('allows without work when nothing can deny', () => {
    for (const filters of [[], [decodeCfg({})], [decodeCfg(rules('LOG', { p: policy([ANY]) }))], [decodeCfg({ shadow_rules: rules('DENY', { p: policy([ANY]) }).rules })]]) {
      const a = compileAuthorizer(filters);
      expect(a.empty).toBe(true);
      expect(a.check(untouchable)).toEqual({ allowed: true });
    }
  });

  it('denies in an ALLOW filter without policies, and says why', () => {
    const a = compileAuthorizer([decodeCfg(rules('ALLOW', {}))]);
    expect(a.empty).toBe(false);
    expect(a.check(req())).toEqual({ allowed: false, policy: 'none: no ALLOW policy matched' });
  });

  it('evaluates filters in order: a DENY match ends it, an ALLOW match goes on', () => {
    const deny = decodeCfg(rules('DENY', { 'z-deny-post': policy([header({ name: ':method', string_match: { exact: 'POST' } })]), 'a-deny-never': policy([{ not_rule: ANY }]) }));
    const allow = decodeCfg(rules('ALLOW', { 'b-all': policy([ANY]), 'a-get': policy([header({ name: ':method', string_match: { exact: 'GET' } })]) }));
    const a = compileAuthorizer([deny, allow]);
    expect(a.check(req({ method: 'POST' }))).toEqual({ allowed: false, policy: 'z-deny-post' });
    expect(a.check(req())).toEqual({ allowed: true, policy: 'a-get' });
    expect(a.check(req({ method: 'PUT' }))).toEqual({ allowed: true, policy: 'b-all' });
    expect(a.check(req())).toBe(a.check(req()));
    expect(compileAuthorizer([allow, decodeCfg(rules('DENY', { all: policy([ANY]) }))]).check(req())).toEqual({ allowed: false, policy: 'all' });
  });

  it('forgets each request: nothing parsed for one is used for the next', () => {
    const a = compileAuthorizer([
      decodeCfg(rules('ALLOW', { p: policy([{ url_path: { path: { exact: '/a' } } }], [{ direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 8 } } }]) })),
    ]);
    expect(a.check(req({ path: '/a' })).allowed).toBe(true);
    expect(a.check(req({ path: '/b' })).allowed).toBe(false);
    expect(a.check(req({ path: '/a', sourceIp: '192.168.0.1' })).allowed).toBe(false);
  });

  it('matches no authenticated principal over plaintext, even one that matches ""', () => {
    const anything = { authenticated: { principal_name: { safe_regex: { regex: '.*' } } } };
    expect(allows(ANY, req(), anything)).toBe(true);
    expect(allows(ANY, req({ peerPrincipal: undefined }), anything)).toBe(false);
  });

  it('needs a permission and a principal of the same policy', () => {
    const p = policy([{ destination_port: 8080 }], [{ authenticated: {} }]);
    const a = compileAuthorizer([decodeCfg(rules('ALLOW', { p }))]);
    expect(a.check(req()).allowed).toBe(true);
    expect(a.check(req({ destinationPort: 9090 })).allowed).toBe(false);
    expect(a.check(req({ peerPrincipal: undefined })).allowed).toBe(false);
  });

  it('matches headers as Envoy: missing, present, invert, treat-missing-as-empty, range, case', () => {
    const none = req();
    const v = (value: string) => req({ headers: { 'x-h': value } });
    expect(allows(header({ present_match: true }), none)).toBe(false);
    expect(allows(header({ present_match: false }), none)).toBe(true);
    expect(allows(header({ present_match: true, invert_match: true }), none)).toBe(true);
    expect(allows(header({ string_match: { exact: 'a' }, invert_match: true }), none)).toBe(false);
    expect(allows(header({ string_match: { exact: 'a' }, invert_match: true }), v('b'))).toBe(true);
    expect(allows(header({ string_match: { exact: '' }, treat_missing_header_as_empty: true }), none)).toBe(true);
    expect(allows(header({ range_match: { start: 10, end: 20 } }), v('19'))).toBe(true);
    expect(allows(header({ range_match: { start: 10, end: 20 } }), v('20'))).toBe(false);
    expect(allows(header({ range_match: { start: 10, end: 20 } }), v('1x'))).toBe(false);
    expect(allows(header({ string_match: { exact: 'AbC', ignore_case: true } }), v('aBc'))).toBe(true);
    expect(allows(header({ string_match: { exact: 'AbC' } }), v('aBc'))).toBe(false);
    expect(allows(header({ string_match: { contains: 'mid' } }), v('amidst'))).toBe(true);
    expect(allows(header({ suffix_match: '.com' }), v('a.com'))).toBe(true);
    expect(allows(header({ exact_match: '' }), v('anything'))).toBe(true);
    expect(allows(header({ safe_regex_match: { regex: '(?i)v[12]' } }), v('V2'))).toBe(true);
    expect(allows(header({ safe_regex_match: { regex: 'v[12]' } }), v('v21'))).toBe(false);
    // RE2 flags anywhere in the pattern, not only a leading (?i)
    expect(allows(header({ safe_regex_match: { regex: 'v(?i:X)' } }), v('vx'))).toBe(true);
    expect(allows(header({ safe_regex_match: { regex: 'v(?i:X)' } }), v('Vx'))).toBe(false);
    expect(allows({ header: { name: ':authority', string_match: { prefix: 'svc' } } }, req({ authority: 'svc.ns:80' }))).toBe(true);
  });

  it('matches url_path without query or fragment, and :path with them', () => {
    expect(allows({ url_path: { path: { exact: '/a' } } }, req({ path: '/a?x=1' }))).toBe(true);
    expect(allows({ url_path: { path: { exact: '/a' } } }, req({ path: '/a#top' }))).toBe(true);
    expect(allows({ header: { name: ':path', string_match: { exact: '/a' } } }, req({ path: '/a?x=1' }))).toBe(false);
  });

  it('matches addresses, ports and SNI', () => {
    const cidr = (address_prefix: string, len: number) => ({ address_prefix, prefix_len: { value: len } });
    expect(allows(ANY, req({ sourceIp: '::ffff:10.1.2.3' }), { direct_remote_ip: cidr('10.0.0.0', 8) })).toBe(true);
    expect(allows(ANY, req({ sourceIp: '2001:db8::1' }), { direct_remote_ip: cidr('0.0.0.0', 0) })).toBe(false);
    expect(allows(ANY, req({ sourceIp: 'garbage' }), { not_id: { direct_remote_ip: cidr('10.0.0.0', 8) } })).toBe(true);
    expect(allows(ANY, req({ remoteIp: '2001:db8:0:1::5' }), { remote_ip: cidr('2001:db8::', 63) })).toBe(true);
    expect(allows(ANY, req({ remoteIp: '2001:db8:0:2::5' }), { remote_ip: cidr('2001:db8::', 63) })).toBe(false);
    expect(allows({ destination_ip: cidr('10.0.0.9', 32) }, req())).toBe(true);
    expect(allows({ destination_port_range: { start: 8000, end: 8081 } }, req())).toBe(true);
    expect(allows({ destination_port_range: { start: 8000, end: 8080 } }, req())).toBe(false);
    expect(allows({ requested_server_name: { exact: '' } }, req())).toBe(true);
    expect(allows({ requested_server_name: { suffix: '.local' } }, req({ sni: 'a.local' }))).toBe(true);
  });

  it('never enforces shadow rules', () => {
    const a = compileAuthorizer([decodeCfg({ ...rules('ALLOW', { all: policy([ANY]) }), shadow_rules: rules('DENY', { all: policy([ANY]) }).rules })]);
    expect(a.check(req())).toEqual({ allowed: true, policy: 'all' });
  });
});

describe('addresses', () => {
  it('parses IPv4, IPv6 and IPv4-mapped forms', () => {
    expect(parseIp('10.1.2.3')).toEqual({ family: 4, words: [0x0a010203] });
    expect(parseIp('::ffff:10.1.2.3')).toEqual({ family: 4, words: [0x0a010203] });
    expect(parseIp('::ffff:a01:203')).toEqual({ family: 4, words: [0x0a010203] });
    expect(parseIp('2001:db8::1')).toEqual({ family: 6, words: [0x20010db8, 0, 0, 1] });
    expect(parseIp('fe80::1%eth0')).toEqual({ family: 6, words: [0xfe800000, 0, 0, 1] });
    expect(parseIp('::')).toEqual({ family: 6, words: [0, 0, 0, 0] });
    expect(parseIp('1:2:3:4:5:6:1.2.3.4')).toEqual({ family: 6, words: [0x10002, 0x30004, 0x50006, 0x01020304] });
    for (const bad of ['', '1.2.3', '01.2.3.4', '256.1.1.1', '1::2::3', '1:2:3:4::5:6:7:8', '1:2:3:4:5:6:7:8:9', '12345::', 'x']) expect(parseIp(bad)).toBeUndefined();
  });

  it('masks CIDRs and checks containment per family', () => {
    const c = makeCidr('10.1.2.3', 16)!;
    expect(c.words).toEqual([0x0a010000]);
    expect(cidrContains(c, parseIp('10.1.255.255')!)).toBe(true);
    expect(cidrContains(c, parseIp('10.2.0.0')!)).toBe(false);
    expect(cidrContains(makeCidr('::', 0)!, parseIp('10.0.0.1')!)).toBe(false);
    expect(cidrContains(makeCidr('2001:db8::', 33)!, parseIp('2001:db8:7fff::')!)).toBe(true);
    expect(cidrContains(makeCidr('2001:db8::', 33)!, parseIp('2001:db8:8000::')!)).toBe(false);
    expect(makeCidr('::', 129)).toBeUndefined();
    expect(makeCidr('fe80::1%eth0', 64)).toBeUndefined();
    expect(makeCidr('1.2.3.4', 33)).toBeUndefined();
  });
});
