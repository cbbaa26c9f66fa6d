// PeerAuthentication and AuthorizationPolicy (security.istio.io v1/v1beta1), with the
// rules Istio's own validation applies (pkg/config/validation, pkg/config/security), so
// that a policy Istio would refuse is refused here too, naming the field.

import { isIP } from 'node:net';
import type {
  AuthorizationAction,
  AuthorizationCondition,
  AuthorizationOperation,
  AuthorizationPolicy,
  AuthorizationRule,
  AuthorizationSource,
  MtlsMode,
  PeerAuthentication,
} from '../model/types';
import { headerName, selector } from './common';
import { defined, fields, list, mapOf, nonEmpty, oneOf, type Node, type Read } from './reader';

const NOT_SUPPORTED = 'not supported by Tandem';

/** Istio's WorkloadSelector, with its refusal of wildcards (it would never select anything). */
const workloadSelector: Read<Record<string, string> | undefined> = (n) => {
  const labels = selector(n);
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (k === '') n.at('matchLabels').at(k).fail('empty label name');
    if (k.includes('*') || v.includes('*')) n.at('matchLabels').at(k).fail('wildcards are not supported in a selector');
  }
  return labels;
};

// ---- PeerAuthentication

/** undefined is UNSET: inherit from the level above. */
const mtls: Read<MtlsMode | undefined> = (n) => {
  const mode = fields(n, ['mode']).opt('mode', oneOf('STRICT', 'PERMISSIVE', 'DISABLE', 'UNSET'));
  return mode === 'UNSET' ? undefined : mode;
};

const portKey = (k: string, n: Node): string => {
  const p = /^[0-9]{1,5}$/.test(k) ? Number(k) : NaN;
  return p >= 1 && p <= 65535 ? String(p) : n.fail(`port must be an integer 1..65535, got ${JSON.stringify(k)}`);
};

export function peerAuthentication(spec: Node): Omit<PeerAuthentication, 'name' | 'namespace' | 'source'> {
  const f = fields(spec, ['selector', 'mtls', 'portLevelMtls']);
  const sel = f.opt('selector', workloadSelector);
  const ports = f.opt('portLevelMtls', mapOf(mtls, portKey));
  if (ports) {
    const at = spec.at('portLevelMtls');
    // Istio: "mesh/namespace peer authentication cannot have port level mTLS".
    if (!sel) at.fail('requires a selector: a mesh-wide or namespace-wide PeerAuthentication cannot have port-level mTLS');
    if (Object.keys(ports).length === 0) at.fail('must have at least one port when present');
  }
  return defined({
    selector: sel,
    mode: f.opt('mtls', mtls),
    // keys are port numbers in canonical form ("080" is 80); JavaScript keys are strings either way
    portLevelMtls: ports,
  });
}

// ---- AuthorizationPolicy values

/** Istio's match values: exact, "*", "prefix*" or "*suffix". */
const pattern: Read<string> = (n) => {
  const s = nonEmpty(n);
  const inner = s.slice(1, -1);
  if (s !== '*' && (inner.includes('*') || (s.startsWith('*') && s.endsWith('*')))) {
    n.fail(`${JSON.stringify(s)}: "*" is only allowed alone, as a prefix or as a suffix`);
  }
  return s;
};

// RFC 3986 pchar, what Envoy's URI templates accept between operators.
const LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

/** A path: a pattern, or a template with {*} (one segment) and a final {**} (the rest). */
const pathValue: Read<string> = (n) => {
  const s = nonEmpty(n);
  if (!s.includes('{') && !s.includes('}')) return pattern(n);
  const segments = s.replace(/^\/+|\/+$/g, '').split('/');
  segments.forEach((seg, i) => {
    if (seg === '{*}' || (seg === '{**}' && i === segments.length - 1)) return;
    if (seg === '{**}') n.fail(`${JSON.stringify(s)}: {**} must be the last operator`);
    if (!LITERAL.test(seg)) n.fail(`${JSON.stringify(s)}: segment ${JSON.stringify(seg)} is neither {*}, {**} nor a literal`);
  });
  return s;
};

const ipOrCidr: Read<string> = (n) => {
  const s = nonEmpty(n);
  const [addr, len, ...rest] = s.split('/');
  const family = addr.includes('%') ? 0 : isIP(addr);
  if (len === undefined) return family ? s : n.fail(`bad IP address ${JSON.stringify(s)}`);
  const bits = /^[0-9]{1,3}$/.test(len) ? Number(len) : NaN;
  if (!family || rest.length || !(bits <= (family === 4 ? 32 : 128))) n.fail(`bad CIDR range ${JSON.stringify(s)}`);
  return s;
};

/** Istio writes ports as strings; a YAML number is accepted too. */
const portNumber: Read<number> = (n) => {
  const v = n.value;
  const p = typeof v === 'number' ? v : typeof v === 'string' && /^[0-9]{1,5}$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(p) && p >= 1 && p <= 65535 ? p : n.fail(`bad port ${JSON.stringify(v)}: must be 1..65535`);
};

const portString: Read<string> = (n) => String(portNumber(n));

/** "sa" (in the policy's namespace) or "ns/sa", never a wildcard (Istio's CheckServiceAccount). */
const serviceAccount: Read<string> = (n) => {
  const s = nonEmpty(n);
  if (s.includes('*')) n.fail(`${JSON.stringify(s)}: wildcards are not allowed in service accounts`);
  if (s.length > 320) n.fail('must not exceed 320 characters');
  const parts = s.split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) n.fail(`expected "serviceAccount" or "namespace/serviceAccount", got ${JSON.stringify(s)}`);
  return s;
};

/** A list of values; an empty list, like an absent one, constrains nothing. */
const values =
  (read: Read<string>, max?: number): Read<string[] | undefined> =>
  (n) => {
    const v = list(read)(n);
    if (max !== undefined && v.length > max) n.fail(`may not have more than ${max} values`);
    return v.length ? v : undefined;
  };

const ports: Read<number[] | undefined> = (n) => {
  const v = list(portNumber)(n);
  return v.length ? v : undefined;
};

// ---- rules

const SOURCE_FIELDS: [keyof AuthorizationSource, Read<string>][] = [
  ['principals', pattern],
  ['notPrincipals', pattern],
  ['requestPrincipals', pattern],
  ['notRequestPrincipals', pattern],
  ['namespaces', pattern],
  ['notNamespaces', pattern],
  ['ipBlocks', ipOrCidr],
  ['notIpBlocks', ipOrCidr],
  ['remoteIpBlocks', ipOrCidr],
  ['notRemoteIpBlocks', ipOrCidr],
  ['serviceAccounts', serviceAccount],
  ['notServiceAccounts', serviceAccount],
];

const source: Read<AuthorizationSource> = (n) => {
  const f = fields(n, SOURCE_FIELDS.map(([k]) => k));
  const out: AuthorizationSource = {};
  for (const [k, read] of SOURCE_FIELDS) {
    const v = f.opt(k, values(read, k.endsWith('erviceAccounts') ? 16 : undefined));
    if (v) out[k] = v;
  }
  if (Object.keys(out).length === 0) n.fail(`must not be empty: set at least one of ${SOURCE_FIELDS.map(([k]) => k).join(', ')}`);
  const sa = out.serviceAccounts || out.notServiceAccounts;
  if (sa && (out.principals || out.notPrincipals || out.namespaces || out.notNamespaces)) {
    n.fail('serviceAccounts cannot be set with namespaces or principals');
  }
  return out;
};

const operation: Read<AuthorizationOperation> = (n) => {
  const f = fields(n, ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths']);
  const out: AuthorizationOperation = defined({
    hosts: f.opt('hosts', values(pattern)),
    notHosts: f.opt('notHosts', values(pattern)),
    ports: f.opt('ports', ports),
    notPorts: f.opt('notPorts', ports),
    methods: f.opt('methods', values(pattern)),
    notMethods: f.opt('notMethods', values(pattern)),
    paths: f.opt('paths', values(pathValue)),
    notPaths: f.opt('notPaths', values(pathValue)),
  });
  if (Object.keys(out).length === 0) n.fail('must not be empty: set at least one of hosts, ports, methods, paths or their not- forms');
  return out;
};

const ATTRIBUTES: Record<string, Read<string>> = {
  'source.ip': ipOrCidr,
  'remote.ip': ipOrCidr,
  'source.namespace': pattern,
  'source.principal': pattern,
  'source.serviceAccount': serviceAccount,
  'destination.ip': ipOrCidr,
  'destination.port': portString,
  'connection.sni': pattern,
  // No RequestAuthentication in Tandem, so these see a request without a JWT.
  'request.auth.principal': pattern,
  'request.auth.audiences': pattern,
  'request.auth.presenter': pattern,
};

const REFUSED_ATTRIBUTES: [RegExp, string][] = [
  [/^destination\.namespace$/, 'is replaced by metadata.namespace'],
  [/^destination\.labels\[/, 'is replaced by the workload selector'],
  [/^destination\.(name|user)$/, 'is a deprecated attribute only supported in v1alpha1'],
  [/^(request\.experimental\.inline\.headers\[|experimental\.envoy\.filters\.)/, `is ${NOT_SUPPORTED}`],
];

/** The reader for the values of `key`, or a failure naming the key. */
function attribute(key: string, n: Node): Read<string> {
  if (Object.hasOwn(ATTRIBUTES, key)) return ATTRIBUTES[key];
  const header = /^request\.headers\[(.*)\]$/.exec(key);
  if (header) {
    headerName(header[1], n);
    return pattern;
  }
  if (/^request\.auth\.claims(\[[^[\]]+\])+$/.test(key)) return pattern;
  for (const [re, why] of REFUSED_ATTRIBUTES) if (re.test(key)) n.fail(`attribute ${JSON.stringify(key)} ${why}`);
  return n.fail(
    `unknown attribute ${JSON.stringify(key)} (expected one of: ${Object.keys(ATTRIBUTES).join(', ')}, request.headers[NAME], request.auth.claims[NAME])`,
  );
}

const condition: Read<AuthorizationCondition> = (n) => {
  const f = fields(n, ['key', 'values', 'notValues']);
  const key = f.req('key', nonEmpty);
  const read = attribute(key, n.at('key'));
  const out: AuthorizationCondition = defined({ key, values: f.opt('values', values(read)), notValues: f.opt('notValues', values(read)) });
  if (!out.values && !out.notValues) n.fail(`at least one of values or notValues must be set for key ${key}`);
  return out;
};

/** `from: []` and `to: []` are refused, as Istio does: they read like "nobody" but would mean "anyone". */
const nonEmptyList =
  <T>(item: Read<T>, hint: string): Read<T[]> =>
  (n) => {
    if (Array.isArray(n.value) && n.value.length === 0) n.fail(`must not be empty (${hint})`);
    return list(item)(n);
  };

const rule: Read<AuthorizationRule> = (n) => {
  const f = fields(n, ['from', 'to', 'when']);
  const when = f.opt('when', list(condition));
  return defined({
    from: f.opt('from', nonEmptyList((x) => fields(x, ['source']).req('source', source), 'leave from out to match any source')),
    to: f.opt('to', nonEmptyList((x) => fields(x, ['operation']).req('operation', operation), 'leave to out to match any operation')),
    when: when?.length ? when : undefined,
  });
};

export function authorizationPolicy(spec: Node): Omit<AuthorizationPolicy, 'name' | 'namespace' | 'source'> {
  const f = fields(spec, ['selector', 'targetRef', 'targetRefs', 'action', 'provider', 'rules']);
  for (const k of ['targetRef', 'targetRefs']) {
    if (f.has(k)) spec.at(k).fail(`${NOT_SUPPORTED} (no waypoints/gateways); use selector`);
  }
  if (f.has('provider')) spec.at('provider').fail(`external authorization providers (CUSTOM) are ${NOT_SUPPORTED}`);
  const action = f.opt('action', oneOf('ALLOW', 'DENY', 'AUDIT', 'CUSTOM')) ?? 'ALLOW';
  if (action === 'CUSTOM') spec.at('action').fail(`CUSTOM is ${NOT_SUPPORTED} (no external authorization providers)`);
  const rules = f.opt('rules', list(rule)) ?? [];
  if (action === 'DENY' && rules.length === 0) {
    spec.at('rules').fail('a DENY policy without rules would never deny anything; add an empty rule {} to deny every request');
  }
  return defined({ selector: f.opt('selector', workloadSelector), action: action as AuthorizationAction, rules });
}
