// envoy.filters.http.rbac typed_config -> RbacFilterModel. Everything the evaluator does not
// implement (CEL conditions, metadata and filter-state matchers, the matcher API, custom
// string matchers, audit loggers) is a DecodeError naming the field: a NACK beats a
// silently different decision.
import { compileRe2 } from '../../common/re2';
import { unpack, type AnyMessage } from '../any';
import { TypeUrl } from '../type-urls';
import { DecodeError } from './decode-error';
import {
  makeCidr,
  type Cidr,
  type HeaderMatch,
  type PermissionModel,
  type PolicyModel,
  type PrincipalModel,
  type RbacAction,
  type RbacFilterModel,
  type RbacRulesModel,
  type StringMatch,
} from './rbac-model';

// The proto shapes read here, as protobufjs decodes them (snake_case, enums as names,
// defaults omitted). Fields not declared are refused by `only`.
interface RegexPb { regex?: string; google_re2?: object }
interface StringMatcherPb { exact?: string; prefix?: string; suffix?: string; contains?: string; safe_regex?: RegexPb; ignore_case?: boolean }
interface RangePb { start?: number; end?: number }
interface HeaderMatcherPb {
  name?: string; exact_match?: string; safe_regex_match?: RegexPb; range_match?: RangePb; present_match?: boolean;
  prefix_match?: string; suffix_match?: string; contains_match?: string; string_match?: StringMatcherPb;
  invert_match?: boolean; treat_missing_header_as_empty?: boolean;
}
interface CidrPb { address_prefix?: string; prefix_len?: { value?: number } }
interface PathMatcherPb { path?: StringMatcherPb }
interface PermissionPb {
  and_rules?: { rules?: PermissionPb[] }; or_rules?: { rules?: PermissionPb[] }; any?: boolean; header?: HeaderMatcherPb;
  url_path?: PathMatcherPb; destination_ip?: CidrPb; destination_port?: number; destination_port_range?: RangePb;
  not_rule?: PermissionPb; requested_server_name?: StringMatcherPb;
}
interface PrincipalPb {
  and_ids?: { ids?: PrincipalPb[] }; or_ids?: { ids?: PrincipalPb[] }; any?: boolean;
  authenticated?: { principal_name?: StringMatcherPb }; source_ip?: CidrPb; direct_remote_ip?: CidrPb; remote_ip?: CidrPb;
  header?: HeaderMatcherPb; url_path?: PathMatcherPb; not_id?: PrincipalPb;
}
interface PolicyPb { permissions?: PermissionPb[]; principals?: PrincipalPb[] }
interface RulesPb { action?: RbacAction; policies?: Record<string, PolicyPb> }
interface RbacPb { rules?: RulesPb; shadow_rules?: RulesPb; rules_stat_prefix?: string; shadow_rules_stat_prefix?: string; track_per_rule_stats?: boolean }

type Fail = (field: string, detail: string, cause?: unknown) => never;

/** Refuses any set field of `obj` not in `allowed`. */
function only<T extends object>(obj: T, at: string, fail: Fail, allowed: readonly (keyof T & string)[]): void {
  for (const [k, v] of Object.entries(obj)) {
    if (v !== undefined && !(allowed as readonly string[]).includes(k)) fail(`${at}.${k}`, 'not supported by this sidecar');
  }
}

/** The one member of a required oneof that is set. */
function oneof<T extends object>(obj: T, at: string, fail: Fail, members: readonly (keyof T & string)[]): keyof T & string {
  only(obj, at, fail, members);
  const set = members.filter((k) => obj[k] !== undefined);
  if (set.length !== 1) fail(at, `exactly one of ${members.join(', ')} must be set`);
  return set[0];
}

function regex(r: RegexPb | undefined, at: string, fail: Fail): StringMatch {
  only(r ?? {}, at, fail, ['regex', 'google_re2']);
  const src = r?.regex;
  if (!src) return fail(`${at}.regex`, 'must be set');
  try {
    return { kind: 'regex', source: src, re: compileRe2(src) };
  } catch (e) {
    return fail(`${at}.regex`, (e as Error).message, e);
  }
}

function stringMatch(m: StringMatcherPb | undefined, at: string, fail: Fail): StringMatch {
  if (!m) return fail(at, 'must be set');
  const { ignore_case: _ic, ...spec } = m;
  const kind = oneof(spec, at, fail, ['exact', 'prefix', 'suffix', 'contains', 'safe_regex']);
  if (kind === 'safe_regex') return regex(m.safe_regex, `${at}.safe_regex`, fail);
  const ignoreCase = m.ignore_case === true;
  const value = m[kind] ?? '';
  if (kind !== 'exact' && value === '') fail(`${at}.${kind}`, 'must not be empty');
  return { kind, value: ignoreCase ? value.toLowerCase() : value, ignoreCase };
}

function header(h: HeaderMatcherPb, at: string, fail: Fail): HeaderMatch {
  const name = (h.name ?? '').toLowerCase();
  if (!name) fail(`${at}.name`, 'must be set');
  const { name: _n, invert_match: _i, treat_missing_header_as_empty: _t, ...spec } = h;
  const kind = oneof(spec, at, fail, [
    'exact_match', 'safe_regex_match', 'range_match', 'present_match', 'prefix_match', 'suffix_match', 'contains_match', 'string_match',
  ]);
  const plain = (k: 'exact' | 'prefix' | 'suffix' | 'contains', v: string | undefined): StringMatch => ({ kind: k, value: v ?? '', ignoreCase: false });
  const match: HeaderMatch['match'] =
    kind === 'string_match' ? stringMatch(h.string_match, `${at}.string_match`, fail)
    : kind === 'safe_regex_match' ? regex(h.safe_regex_match, `${at}.safe_regex_match`, fail)
    : kind === 'present_match' ? { kind: 'present', present: h.present_match === true }
    : kind === 'range_match' ? { kind: 'range', start: Number(h.range_match?.start ?? 0), end: Number(h.range_match?.end ?? 0) }
    // the deprecated exact_match "" matches any value, as a "" prefix does
    : kind === 'exact_match' ? plain(h.exact_match ? 'exact' : 'prefix', h.exact_match)
    : kind === 'prefix_match' ? plain('prefix', h.prefix_match)
    : kind === 'suffix_match' ? plain('suffix', h.suffix_match)
    : plain('contains', h.contains_match);
  return { name, match, invert: h.invert_match === true, treatMissingAsEmpty: h.treat_missing_header_as_empty === true };
}

function cidr(c: CidrPb, at: string, fail: Fail): Cidr {
  only(c, at, fail, ['address_prefix', 'prefix_len']);
  const parsed = makeCidr(c.address_prefix ?? '', c.prefix_len?.value ?? 0);
  return parsed ?? fail(at, `bad CIDR range ${JSON.stringify(c.address_prefix)}/${c.prefix_len?.value ?? 0}`);
}

function urlPath(p: PathMatcherPb, at: string, fail: Fail): StringMatch {
  return stringMatch(p.path, `${at}.path`, fail);
}

function nonEmpty<T>(xs: T[] | undefined, at: string, fail: Fail): T[] {
  return xs && xs.length ? xs : fail(at, 'must have at least one entry');
}

function permission(p: PermissionPb, at: string, fail: Fail): PermissionModel {
  const kind = oneof(p, at, fail, [
    'and_rules', 'or_rules', 'any', 'header', 'url_path', 'destination_ip', 'destination_port', 'destination_port_range', 'not_rule', 'requested_server_name',
  ]);
  const sub = `${at}.${kind}`;
  switch (kind) {
    case 'and_rules':
    case 'or_rules':
      return { kind: kind === 'and_rules' ? 'and' : 'or', rules: nonEmpty(p[kind]?.rules, `${sub}.rules`, fail).map((r, i) => permission(r, `${sub}.rules[${i}]`, fail)) };
    case 'any':
      return p.any === true ? { kind: 'any' } : fail(sub, 'must be true');
    case 'header':
      return { kind: 'header', header: header(p.header ?? {}, sub, fail) };
    case 'url_path':
      return { kind: 'urlPath', match: urlPath(p.url_path ?? {}, sub, fail) };
    case 'destination_ip':
      return { kind: 'destinationIp', cidr: cidr(p.destination_ip ?? {}, sub, fail) };
    case 'destination_port': {
      const port = Number(p.destination_port);
      return port <= 65535 ? { kind: 'destinationPort', port } : fail(sub, 'must be 0..65535');
    }
    case 'destination_port_range':
      return { kind: 'destinationPortRange', start: Number(p.destination_port_range?.start ?? 0), end: Number(p.destination_port_range?.end ?? 0) };
    case 'not_rule':
      return { kind: 'not', rule: permission(p.not_rule ?? {}, sub, fail) };
    case 'requested_server_name':
      return { kind: 'sni', match: stringMatch(p.requested_server_name, sub, fail) };
  }
  return fail(at, 'unreachable');
}

function principal(p: PrincipalPb, at: string, fail: Fail): PrincipalModel {
  const kind = oneof(p, at, fail, [
    'and_ids', 'or_ids', 'any', 'authenticated', 'source_ip', 'direct_remote_ip', 'remote_ip', 'header', 'url_path', 'not_id',
  ]);
  const sub = `${at}.${kind}`;
  switch (kind) {
    case 'and_ids':
    case 'or_ids':
      return { kind: kind === 'and_ids' ? 'and' : 'or', ids: nonEmpty(p[kind]?.ids, `${sub}.ids`, fail).map((x, i) => principal(x, `${sub}.ids[${i}]`, fail)) };
    case 'any':
      return p.any === true ? { kind: 'any' } : fail(sub, 'must be true');
    case 'authenticated': {
      const a = p.authenticated ?? {};
      only(a, sub, fail, ['principal_name']);
      return a.principal_name ? { kind: 'authenticated', match: stringMatch(a.principal_name, `${sub}.principal_name`, fail) } : { kind: 'authenticated' };
    }
    // Envoy reads the deprecated source_ip as the connection's peer, like direct_remote_ip.
    case 'source_ip':
    case 'direct_remote_ip':
      return { kind: 'directRemoteIp', cidr: cidr(p[kind] ?? {}, sub, fail) };
    case 'remote_ip':
      return { kind: 'remoteIp', cidr: cidr(p.remote_ip ?? {}, sub, fail) };
    case 'header':
      return { kind: 'header', header: header(p.header ?? {}, sub, fail) };
    case 'url_path':
      return { kind: 'urlPath', match: urlPath(p.url_path ?? {}, sub, fail) };
    case 'not_id':
      return { kind: 'not', id: principal(p.not_id ?? {}, sub, fail) };
  }
  return fail(at, 'unreachable');
}

function rules(r: RulesPb, at: string, fail: Fail): RbacRulesModel {
  only(r, at, fail, ['action', 'policies']);
  const action = r.action ?? 'ALLOW';
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'LOG') fail(`${at}.action`, `unknown action ${String(action)}`);
  const names = Object.keys(r.policies ?? {}).sort();
  const policies = names.map((name): PolicyModel => {
    const p = (r.policies ?? {})[name];
    const pat = `${at}.policies[${JSON.stringify(name)}]`;
    only(p, pat, fail, ['permissions', 'principals']);
    return {
      name,
      permissions: nonEmpty(p.permissions, `${pat}.permissions`, fail).map((x, i) => permission(x, `${pat}.permissions[${i}]`, fail)),
      principals: nonEmpty(p.principals, `${pat}.principals`, fail).map((x, i) => principal(x, `${pat}.principals[${i}]`, fail)),
    };
  });
  return { action, policies };
}

/**
 * Decodes the typed_config of an envoy.filters.http.rbac filter. `resource` names the
 * xDS resource (the Listener), `at` the field path of this typed_config within it.
 */
export function decodeRbacFilter(typedConfig: AnyMessage, resource: string, at: string): RbacFilterModel {
  const fail: Fail = (field, detail, cause) => {
    throw new DecodeError(resource, field, detail, cause === undefined ? undefined : { cause });
  };
  if (typedConfig.type_url !== TypeUrl.RBAC) fail(`${at}.type_url`, `expected ${TypeUrl.RBAC}, got ${typedConfig.type_url}`);
  let msg: RbacPb;
  try {
    msg = unpack<RbacPb>(typedConfig);
  } catch (e) {
    return fail(at, `cannot decode: ${(e as Error).message}`);
  }
  // Stat prefixes and per-rule stats only name counters; they change no decision.
  only(msg, at, fail, ['rules', 'shadow_rules', 'rules_stat_prefix', 'shadow_rules_stat_prefix', 'track_per_rule_stats']);
  const out: RbacFilterModel = {};
  if (msg.rules) out.rules = rules(msg.rules, `${at}.rules`, fail);
  if (msg.shadow_rules) out.shadowRules = rules(msg.shadow_rules, `${at}.shadow_rules`, fail);
  return out;
}
