import { describe, expect, it } from 'vitest';
import { compileRe2 } from '../../common/re2';
import { unpack } from '../../proto/any';
import { TypeUrl } from '../../proto/type-urls';
import type { AuthorizationPolicy, AuthorizationRule } from '../model/types';
import { applicablePolicies, escapeRegex, rbacHttpFilters, RBAC_FILTER_NAME } from './translate-rbac';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ap = (name: string, p: Partial<AuthorizationPolicy> = {}): AuthorizationPolicy => ({
  name,
  namespace: 'foo',
  action: 'ALLOW',
  rules: [{}],
  source: { file: 'mesh.yaml', doc: 0 },
  ...p,
});

const W = { namespace: 'foo', labels: { app: 'httpbin' } };
const TD = { trustDomain: 'cluster.local' };

const filters = (policies: AuthorizationPolicy[], o = TD, w = W) =>
  rbacHttpFilters(policies, w, o).map((f) => {
    expect(f.name).toBe(RBAC_FILTER_NAME);
    expect(f.typed_config.type_url).toBe(TypeUrl.RBAC);
    return unpack<Obj>(f.typed_config).rules as Obj;
  });

/** The principals of the only policy of the only filter. */
const principalsOf = (rule: AuthorizationRule, o = TD): Obj[] => Object.values(filters([ap('p', { rules: [rule] })], o)[0].policies as Obj)[0].principals;

describe('rbacHttpFilters', () => {
  it('emits nothing when no policy applies', () => {
    expect(rbacHttpFilters([], W, TD)).toEqual([]);
    expect(rbacHttpFilters([ap('p', { namespace: 'bar' })], W, TD)).toEqual([]);
  });

  it('orders AUDIT (as LOG), DENY, ALLOW, one filter per action', () => {
    const got = filters([ap('a'), ap('d', { action: 'DENY' }), ap('l', { action: 'AUDIT' }), ap('a2')]);
    expect(got.map((r) => r.action ?? 'ALLOW')).toEqual(['LOG', 'DENY', 'ALLOW']);
    expect(Object.keys(got[2].policies)).toEqual(['ns[foo]-policy[a2]-rule[0]', 'ns[foo]-policy[a]-rule[0]']);
  });

  it('turns allow-nothing into an ALLOW filter without policies', () => {
    const [allow] = filters([ap('allow-nothing', { rules: [] })]);
    expect(allow.action ?? 'ALLOW').toBe('ALLOW');
    expect(allow.policies ?? {}).toEqual({});
  });

  it('names each rule as Istio does, sorted, whatever the config order', () => {
    const a = ap('zeta', { rules: [{}, { to: [{ methods: ['GET'] }] }] });
    const b = ap('alpha', { namespace: 'istio-system' });
    expect(Object.keys(filters([a, b])[0].policies)).toEqual([
      'ns[foo]-policy[zeta]-rule[0]',
      'ns[foo]-policy[zeta]-rule[1]',
      'ns[istio-system]-policy[alpha]-rule[0]',
    ]);
    const bytes = (ps: AuthorizationPolicy[]) => Buffer.from(rbacHttpFilters(ps, W, TD)[0].typed_config.value).toString('hex');
    expect(bytes([a, b])).toBe(bytes([b, a]));
  });

  it('encodes a rule with Istio`s structure: per `to` an AND of attributes, `when` last', () => {
    const [allow] = filters([
      ap('p', {
        rules: [{ to: [{ hosts: ['h.example'], methods: ['GET'], paths: ['/a*'], notPorts: [9000] }], when: [{ key: 'destination.ip', values: ['10.0.0.0/8'] }] }],
      }),
    ]);
    const or = (rules: Obj[]) => ({ or_rules: { rules } });
    expect(allow.policies['ns[foo]-policy[p]-rule[0]']).toEqual({
      permissions: [
        {
          and_rules: {
            rules: [
              or([{ header: { name: ':authority', string_match: { exact: 'h.example', ignore_case: true } } }]),
              or([{ header: { name: ':method', string_match: { exact: 'GET' } } }]),
              or([{ url_path: { path: { prefix: '/a' } } }]),
              { not_rule: or([{ destination_port: 9000 }]) },
              or([{ destination_ip: { address_prefix: '10.0.0.0', prefix_len: { value: 8 } } }]),
            ],
          },
        },
      ],
      principals: [{ and_ids: { ids: [{ any: true }] } }],
    });
  });

  it('writes principals as SPIFFE URIs, moving cluster.local into the trust domain', () => {
    const names = (o: { trustDomain: string }) =>
      principalsOf({ from: [{ principals: ['cluster.local/ns/a/sa/b', 'other.org/ns/a/sa/b', 'cluster.local/ns/c/*', '*/sa/x.y', '*'] }] }, o)[0].and_ids.ids[0].or_ids.ids.map(
        (p: Obj) => p.authenticated.principal_name,
      );
    expect(names({ trustDomain: 'example.org' })).toEqual([
      { exact: 'spiffe://example.org/ns/a/sa/b' },
      { exact: 'spiffe://other.org/ns/a/sa/b' },
      { prefix: 'spiffe://example.org/ns/c/' },
      { safe_regex: { regex: 'spiffe://.*/sa/x\\.y' } },
      { safe_regex: { regex: '.+' } },
    ]);
    expect(names(TD)[0]).toEqual({ exact: 'spiffe://cluster.local/ns/a/sa/b' });
  });

  it('matches namespaces and service accounts on the SPIFFE path, escaped', () => {
    const ids = principalsOf({ from: [{ namespaces: ['prod-*'], notNamespaces: ['a.b'] }, { serviceAccounts: ['bar/sleep', 'httpbin'] }] });
    expect(ids[0].and_ids.ids).toEqual([
      { or_ids: { ids: [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/prod-.*/.*' } } } }] } },
      { not_id: { or_ids: { ids: [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/a\\.b/.*' } } } }] } } },
    ]);
    expect(ids[1].and_ids.ids[0].or_ids.ids.map((p: Obj) => p.authenticated.principal_name.safe_regex.regex)).toEqual([
      'spiffe://.+/ns/bar/(.+/|)sa/sleep(/.+)?',
      'spiffe://.+/ns/foo/(.+/|)sa/httpbin(/.+)?',
    ]);
  });

  it('encodes requestPrincipals and request.auth conditions as never matching (no JWT in Tandem)', () => {
    const never = { not_id: { any: true } };
    expect(principalsOf({ from: [{ requestPrincipals: ['*'] }] })[0].and_ids.ids).toEqual([{ or_ids: { ids: [never] } }]);
    expect(principalsOf({ when: [{ key: 'request.auth.claims[iss]', notValues: ['x'] }] })[0].and_ids.ids).toEqual([{ not_id: { or_ids: { ids: [never] } } }]);
  });

  it('reads IPs, headers and SNI from the right attributes', () => {
    const ids = principalsOf({
      from: [{ ipBlocks: ['1.2.3.4'], remoteIpBlocks: ['2001:db8::/32'] }],
      when: [{ key: 'request.headers[X-Token]', values: ['*', 'pre*'] }],
    })[0].and_ids.ids;
    expect(ids).toEqual([
      { or_ids: { ids: [{ remote_ip: { address_prefix: '2001:db8::', prefix_len: { value: 32 } } }] } },
      { or_ids: { ids: [{ direct_remote_ip: { address_prefix: '1.2.3.4', prefix_len: { value: 32 } } }] } },
      { or_ids: { ids: [{ header: { name: 'x-token', present_match: true } }, { header: { name: 'x-token', string_match: { prefix: 'pre' } } }] } },
    ]);
    const [f] = filters([ap('p', { rules: [{ when: [{ key: 'connection.sni', values: ['*.local'] }] }] })]);
    expect(f.policies['ns[foo]-policy[p]-rule[0]'].permissions[0].and_rules.rules).toEqual([{ or_rules: { rules: [{ requested_server_name: { suffix: '.local' } }] } }]);
  });

  it('turns path templates into RE2 regexes', () => {
    const [f] = filters([ap('p', { rules: [{ to: [{ paths: ['/u.x/{*}/{**}'] }] }] })]);
    const path = f.policies['ns[foo]-policy[p]-rule[0]'].permissions[0].and_rules.rules[0].or_rules.rules[0].url_path.path;
    const re = compileRe2(path.safe_regex.regex);
    expect(path.safe_regex.regex.startsWith('/u\\.x/')).toBe(true);
    expect(['/u.x/1/', '/u.x/1/a/b'].map((p) => re.test(p))).toEqual([true, true]);
    expect(['/uax/1/a', '/u.x/1', '/u.x//a'].map((p) => re.test(p))).toEqual([false, false, false]);
  });
});

describe('applicablePolicies', () => {
  it('applies Istio`s scoping', () => {
    const ps = [
      ap('ns-wide'),
      ap('ns-selected', { selector: { app: 'httpbin' } }),
      ap('ns-other-app', { selector: { app: 'reviews' } }),
      ap('mesh', { namespace: 'istio-system' }),
      ap('mesh-selected', { namespace: 'istio-system', selector: { app: 'httpbin' } }),
      ap('mesh-other-app', { namespace: 'istio-system', selector: { app: 'reviews' } }),
      ap('elsewhere', { namespace: 'bar' }),
    ];
    expect(applicablePolicies(ps, W).map((p) => p.name)).toEqual(['ns-wide', 'ns-selected', 'mesh', 'mesh-selected']);
    expect(applicablePolicies(ps, { namespace: 'bar', labels: { app: 'reviews' } }).map((p) => p.name)).toEqual([
      'mesh',
      'mesh-other-app',
      'elsewhere',
    ]);
    expect(applicablePolicies(ps, W, 'bar').map((p) => p.name)).toEqual(['ns-wide', 'ns-selected', 'elsewhere']);
  });
});

describe('escapeRegex', () => {
  it('escapes every RE2 metacharacter, and only those', () => {
    const s = 'a.b*c+d?e(f)g[h]i{j}k|l^m$n\\o-p/q';
    expect(escapeRegex(s)).toBe('a\\.b\\*c\\+d\\?e\\(f\\)g\\[h\\]i\\{j\\}k\\|l\\^m\\$n\\\\o-p/q');
    expect(compileRe2(escapeRegex(s)).test(s)).toBe(true);
  });
});
