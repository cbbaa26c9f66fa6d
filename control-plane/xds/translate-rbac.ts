// AuthorizationPolicy -> Envoy HTTP RBAC filters, encoding Istio's semantics the way
// Istio's generator does (pilot/pkg/security/authz/model): per rule one Envoy Policy whose
// permissions are its `to` entries and principals its `from` entries, each an AND of
// "any of values" and "none of notValues" per attribute, `when` conditions ANDed in.
import { pack, type AnyMessage } from '../../proto/any';
import { TypeUrl } from '../../proto/type-urls';
import { MESH_ROOT_NAMESPACE, selectorMatches, type WorkloadRef } from '../model/peer-authentication';
import type { AuthorizationCondition, AuthorizationPolicy, AuthorizationRule } from '../model/types';

export const RBAC_FILTER_NAME = 'envoy.filters.http.rbac';

export interface RbacOptions {
  /** this mesh's trust domain; principals written with Istio's "cluster.local" are moved into it */
  trustDomain: string;
  rootNamespace?: string;
}

export interface RbacHttpFilter {
  name: string;
  typed_config: AnyMessage;
}

// The slice of Envoy's RBAC protos this file writes (envoy.config.rbac.v3, snake_case).
type StringMatcher =
  | { exact: string; ignore_case?: boolean }
  | { prefix: string; ignore_case?: boolean }
  | { suffix: string; ignore_case?: boolean }
  | { safe_regex: { regex: string } };
type HeaderMatcher = { name: string; present_match: true } | { name: string; string_match: StringMatcher };
type CidrRange = { address_prefix: string; prefix_len: { value: number } };
type Permission =
  | { any: true }
  | { and_rules: { rules: Permission[] } }
  | { or_rules: { rules: Permission[] } }
  | { not_rule: Permission }
  | { header: HeaderMatcher }
  | { url_path: { path: StringMatcher } }
  | { destination_ip: CidrRange }
  | { destination_port: number }
  | { requested_server_name: StringMatcher };
type Principal =
  | { any: true }
  | { and_ids: { ids: Principal[] } }
  | { or_ids: { ids: Principal[] } }
  | { not_id: Principal }
  | { authenticated: { principal_name: StringMatcher } }
  | { direct_remote_ip: CidrRange }
  | { remote_ip: CidrRange }
  | { header: HeaderMatcher };
type Policy = { permissions: Permission[]; principals: Principal[] };

/** Escapes a literal for RE2. */
export function escapeRegex(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

/** Istio's value rules: "*" is any non-empty value, "x*" a prefix, "*x" a suffix. */
function stringMatcher(v: string, prefix = '', ignoreCase = false): StringMatcher {
  const ic = ignoreCase ? { ignore_case: true } : {};
  if (v === '*') return { safe_regex: { regex: '.+' } };
  if (v.startsWith('*')) return prefix ? { safe_regex: { regex: escapeRegex(prefix) + '.*' + escapeRegex(v.slice(1)) } } : { suffix: v.slice(1), ...ic };
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1), ...ic };
  return { exact: prefix + v, ...ic };
}

function headerMatcher(name: string, v: string, ignoreCase = false): HeaderMatcher {
  return v === '*' ? { name, present_match: true } : { name, string_match: stringMatcher(v, '', ignoreCase) };
}

// What Envoy's URI templates match: {*} one segment, {**} the rest.
const PCHAR = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=]";

function pathMatcher(v: string): StringMatcher {
  if (!v.includes('{')) return stringMatcher(v);
  // Envoy's uri_template extension is not among the protos Tandem loads; a regex says the same.
  const parts = v.split(/(\{\*\*\}|\{\*\})/);
  const regex = parts.map((p) => (p === '{*}' ? `${PCHAR}+` : p === '{**}' ? `(?:${PCHAR}|/)*` : escapeRegex(p))).join('');
  return { safe_regex: { regex } };
}

function cidr(v: string): CidrRange {
  const [addr, len] = v.split('/');
  return { address_prefix: addr, prefix_len: { value: len !== undefined ? Number(len) : addr.includes(':') ? 128 : 32 } };
}

const glob = (v: string): string => v.split('*').map(escapeRegex).join('.*');

const authenticated = (m: StringMatcher): Principal => ({ authenticated: { principal_name: m } });

/** Istio treats "cluster.local" in a principal as "this mesh's trust domain". */
function inTrustDomain(v: string, trustDomain: string): string {
  const at = v.indexOf('/ns/');
  return !v.startsWith('*') && at > 0 && v.slice(0, at) === 'cluster.local' ? trustDomain + v.slice(at) : v;
}

function serviceAccount(v: string, policyNamespace: string): Principal {
  const [ns, sa] = v.includes('/') ? v.split('/') : [policyNamespace, v];
  return authenticated({ safe_regex: { regex: `spiffe://.+/ns/${escapeRegex(ns)}/(.+/|)sa/${escapeRegex(sa)}(/.+)?` } });
}

// Without RequestAuthentication no request carries a JWT, so these never match; their
// notValues then always do, as in Istio for a request without a token.
const NEVER: Principal = { not_id: { any: true } };

type Gen<T> = (v: string) => T;

/** One attribute: any of `values` and none of `notValues`, as Istio's rule.permission/principal. */
function attr<T>(g: Gen<T>, values: readonly string[] | undefined, notValues: readonly string[] | undefined, or: (xs: T[]) => T, not: (x: T) => T): T[] {
  const out: T[] = [];
  if (values?.length) out.push(or(values.map(g)));
  if (notValues?.length) out.push(not(or(notValues.map(g))));
  return out;
}

const pOr = (rules: Permission[]): Permission => ({ or_rules: { rules } });
const pNot = (rule: Permission): Permission => ({ not_rule: rule });
const iOr = (ids: Principal[]): Principal => ({ or_ids: { ids } });
const iNot = (id: Principal): Principal => ({ not_id: id });
const perm = (g: Gen<Permission>, v?: readonly (string | number)[], nv?: readonly (string | number)[]): Permission[] =>
  attr(g, v?.map(String), nv?.map(String), pOr, pNot);
const princ = (g: Gen<Principal>, v?: readonly string[], nv?: readonly string[]): Principal[] => attr(g, v, nv, iOr, iNot);

interface Generators {
  principal: Gen<Principal>;
  namespace: Gen<Principal>;
  serviceAccount: Gen<Principal>;
}

function whenParts(c: AuthorizationCondition, g: Generators): { permission?: Permission[]; principal?: Principal[] } {
  const { key, values: v, notValues: nv } = c;
  const header = /^request\.headers\[(.*)\]$/.exec(key);
  if (header) return { principal: princ((x) => ({ header: headerMatcher(header[1].toLowerCase(), x) }), v, nv) };
  if (key.startsWith('request.auth.')) return { principal: princ(() => NEVER, v, nv) };
  switch (key) {
    case 'destination.ip':
      return { permission: perm((x) => ({ destination_ip: cidr(x) }), v, nv) };
    case 'destination.port':
      return { permission: perm((x) => ({ destination_port: Number(x) }), v, nv) };
    case 'connection.sni':
      return { permission: perm((x) => ({ requested_server_name: stringMatcher(x) }), v, nv) };
    case 'source.ip':
      return { principal: princ((x) => ({ direct_remote_ip: cidr(x) }), v, nv) };
    case 'remote.ip':
      return { principal: princ((x) => ({ remote_ip: cidr(x) }), v, nv) };
    case 'source.namespace':
      return { principal: princ(g.namespace, v, nv) };
    case 'source.principal':
      return { principal: princ(g.principal, v, nv) };
    case 'source.serviceAccount':
      return { principal: princ(g.serviceAccount, v, nv) };
  }
  // validation admits no other key; failing loudly beats an ALLOW rule that says less
  throw new Error(`translate-rbac: unhandled condition key ${key}`);
}

function policy(rule: AuthorizationRule, g: Generators): Policy {
  const basePermission: Permission[] = [];
  const basePrincipal: Principal[] = [];
  for (const c of rule.when ?? []) {
    const parts = whenParts(c, g);
    basePermission.push(...(parts.permission ?? []));
    basePrincipal.push(...(parts.principal ?? []));
  }
  const permissions = (rule.to ?? [undefined]).map((o): Permission => {
    const rules = !o
      ? basePermission
      : [
          ...perm((x) => ({ header: headerMatcher(':authority', x, true) }), o.hosts, o.notHosts),
          ...perm((x) => ({ header: headerMatcher(':method', x) }), o.methods, o.notMethods),
          ...perm((x) => ({ url_path: { path: pathMatcher(x) } }), o.paths, o.notPaths),
          ...perm((x) => ({ destination_port: Number(x) }), o.ports, o.notPorts),
          ...basePermission,
        ];
    return { and_rules: { rules: rules.length ? rules : [{ any: true }] } };
  });
  const principals = (rule.from ?? [undefined]).map((s): Principal => {
    const ids = !s
      ? basePrincipal
      : [
          ...princ(g.principal, s.principals, s.notPrincipals),
          ...princ(() => NEVER, s.requestPrincipals, s.notRequestPrincipals),
          ...princ(g.serviceAccount, s.serviceAccounts, s.notServiceAccounts),
          ...princ(g.namespace, s.namespaces, s.notNamespaces),
          ...princ((x) => ({ remote_ip: cidr(x) }), s.remoteIpBlocks, s.notRemoteIpBlocks),
          ...princ((x) => ({ direct_remote_ip: cidr(x) }), s.ipBlocks, s.notIpBlocks),
          ...basePrincipal,
        ];
    return { and_ids: { ids: ids.length ? ids : [{ any: true }] } };
  });
  return { permissions, principals };
}

/** Istio's scoping: root-namespace policies apply mesh-wide, others in their namespace; a selector narrows either. */
export function applicablePolicies(
  policies: readonly AuthorizationPolicy[],
  w: WorkloadRef,
  rootNamespace: string = MESH_ROOT_NAMESPACE,
): AuthorizationPolicy[] {
  return policies.filter((p) => (p.namespace === rootNamespace || p.namespace === w.namespace) && selectorMatches(p.selector, w.labels));
}

/** Istio's policy names, which Envoy reports as the matched policy. */
export const rbacPolicyName = (p: AuthorizationPolicy, i: number): string => `ns[${p.namespace}]-policy[${p.name}]-rule[${i}]`;

function rbacConfig(action: 'ALLOW' | 'DENY' | 'LOG', policies: AuthorizationPolicy[], trustDomain: string): RbacHttpFilter {
  const entries: [string, Policy][] = [];
  for (const p of policies) {
    const g: Generators = {
      principal: (v) => authenticated(stringMatcher(inTrustDomain(v, trustDomain), 'spiffe://')),
      namespace: (v) => authenticated({ safe_regex: { regex: `.*/ns/${glob(v)}/.*` } }),
      serviceAccount: (v) => serviceAccount(v, p.namespace),
    };
    p.rules.forEach((r, i) => entries.push([rbacPolicyName(p, i), policy(r, g)]));
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { name: RBAC_FILTER_NAME, typed_config: pack(TypeUrl.RBAC, { rules: { action, policies: Object.fromEntries(entries) } }) };
}

/**
 * The RBAC filters for workload `w`'s inbound HTTP connection manager, ahead of the
 * router: AUDIT policies as a LOG filter (it never denies), then DENY, then ALLOW, as
 * Istio orders them. No filter for an action no applicable policy has; an applicable
 * ALLOW policy without rules yields an ALLOW filter without policies, which denies all.
 */
export function rbacHttpFilters(policies: readonly AuthorizationPolicy[], w: WorkloadRef, o: RbacOptions): RbacHttpFilter[] {
  const applicable = applicablePolicies(policies, w, o.rootNamespace);
  const out: RbacHttpFilter[] = [];
  for (const [action, envoyAction] of [['AUDIT', 'LOG'], ['DENY', 'DENY'], ['ALLOW', 'ALLOW']] as const) {
    const group = applicable.filter((p) => p.action === action);
    if (group.length) out.push(rbacConfig(envoyAction, group, o.trustDomain));
  }
  return out;
}
