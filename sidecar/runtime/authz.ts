// Evaluates decoded RBAC filters against a request, with Envoy's semantics: filters in
// order; a DENY filter denies when any of its policies matches, an ALLOW filter denies
// when none does, a LOG filter never denies (Tandem keeps no audit log, so it is not even
// evaluated). The model is compiled into closures once; a check allocates nothing but
// what it parses lazily (the path without its query, the addresses a CIDR needs).
import {
  cidrContains,
  parseIp,
  type Cidr,
  type HeaderMatch,
  type IpAddress,
  type PermissionModel,
  type PrincipalModel,
  type RbacFilterModel,
  type StringMatch,
} from '../../proto/decode/rbac-model';

export interface AuthzRequest {
  method: string;
  /** with the query; Envoy's url_path matches the path without it */
  path: string;
  authority: string;
  /** lower-case names; ':method', ':path', ':authority' answered too */
  header(name: string): string | undefined;
  sourceIp: string;
  remoteIp: string;
  destinationIp: string;
  destinationPort: number;
  /** full spiffe:// URI from the verified peer certificate; absent for plaintext */
  peerPrincipal?: string;
  sni?: string;
}

export interface AuthzDecision {
  allowed: boolean;
  /** the matching policy's name, or why the request was denied */
  policy?: string;
}

export interface Authorizer {
  check(r: AuthzRequest): AuthzDecision;
  /** nothing here can deny: check() allows without looking at the request */
  readonly empty: boolean;
}

/** What one check parses at most once; reset per check (checks are synchronous). */
class Scratch {
  urlPath: string | undefined;
  source: IpAddress | null | undefined;
  remote: IpAddress | null | undefined;
  destination: IpAddress | null | undefined;
  reset(): void {
    this.urlPath = this.source = this.remote = this.destination = undefined;
  }
}

type Pred = (r: AuthzRequest, s: Scratch) => boolean;

// Regex literals inside closures would be new objects on every call.
const QUERY_OR_FRAGMENT = /[?#]/;
const INTEGER = /^[+-]?[0-9]+$/;

function urlPath(r: AuthzRequest, s: Scratch): string {
  if (s.urlPath === undefined) {
    const q = r.path.search(QUERY_OR_FRAGMENT);
    s.urlPath = q < 0 ? r.path : r.path.slice(0, q);
  }
  return s.urlPath;
}

const ip = (which: 'source' | 'remote' | 'destination', field: 'sourceIp' | 'remoteIp' | 'destinationIp') =>
  (r: AuthzRequest, s: Scratch): IpAddress | null => {
    if (s[which] === undefined) s[which] = parseIp(r[field]) ?? null;
    return s[which] as IpAddress | null;
  };
const sourceIp = ip('source', 'sourceIp');
const remoteIp = ip('remote', 'remoteIp');
const destinationIp = ip('destination', 'destinationIp');

const inCidr = (c: Cidr, get: (r: AuthzRequest, s: Scratch) => IpAddress | null): Pred => (r, s) => {
  const a = get(r, s);
  return a !== null && cidrContains(c, a);
};

function compileStringMatch(m: StringMatch): (v: string) => boolean {
  if (m.kind === 'regex') return (v) => m.re.test(v);
  const want = m.value;
  const norm = m.ignoreCase ? (v: string) => v.toLowerCase() : (v: string) => v;
  switch (m.kind) {
    case 'exact':
      return (v) => v.length === want.length && norm(v) === want;
    case 'prefix':
      return (v) => norm(v).startsWith(want);
    case 'suffix':
      return (v) => norm(v).endsWith(want);
    case 'contains':
      return (v) => norm(v).includes(want);
  }
}

function headerGetter(name: string): (r: AuthzRequest) => string | undefined {
  if (name === ':method') return (r) => r.method;
  if (name === ':path') return (r) => r.path;
  if (name === ':authority') return (r) => r.authority;
  return (r) => r.header(name);
}

/** Envoy's HeaderUtility::matchHeaders, missing-header rules included. */
function compileHeader(h: HeaderMatch): Pred {
  const get = headerGetter(h.name);
  const m = h.match;
  const test: (v: string) => boolean =
    m.kind === 'present' ? () => m.present
    : m.kind === 'range' ? (v) => INTEGER.test(v) && Number(v) >= m.start && Number(v) < m.end
    : compileStringMatch(m);
  const onMissing = m.kind === 'present' && (h.invert ? m.present : !m.present);
  return (r) => {
    const v = get(r);
    if (v === undefined && !h.treatMissingAsEmpty) return onMissing;
    return test(v ?? '') !== h.invert;
  };
}

const all = (ps: Pred[]): Pred => (r, s) => {
  for (const p of ps) if (!p(r, s)) return false;
  return true;
};
const some = (ps: Pred[]): Pred => (r, s) => {
  for (const p of ps) if (p(r, s)) return true;
  return false;
};
const ANY: Pred = () => true;

function compilePermission(p: PermissionModel): Pred {
  switch (p.kind) {
    case 'any':
      return ANY;
    case 'and':
      return all(p.rules.map(compilePermission));
    case 'or':
      return some(p.rules.map(compilePermission));
    case 'not': {
      const inner = compilePermission(p.rule);
      return (r, s) => !inner(r, s);
    }
    case 'header':
      return compileHeader(p.header);
    case 'urlPath': {
      const m = compileStringMatch(p.match);
      return (r, s) => m(urlPath(r, s));
    }
    case 'destinationIp':
      return inCidr(p.cidr, destinationIp);
    case 'destinationPort':
      return (r) => r.destinationPort === p.port;
    case 'destinationPortRange':
      return (r) => r.destinationPort >= p.start && r.destinationPort < p.end;
    case 'sni': {
      const m = compileStringMatch(p.match);
      return (r) => m(r.sni ?? '');
    }
  }
}

function compilePrincipal(p: PrincipalModel): Pred {
  switch (p.kind) {
    case 'any':
      return ANY;
    case 'and':
      return all(p.ids.map(compilePrincipal));
    case 'or':
      return some(p.ids.map(compilePrincipal));
    case 'not': {
      const inner = compilePrincipal(p.id);
      return (r, s) => !inner(r, s);
    }
    case 'authenticated': {
      // Envoy: a plaintext connection matches no authenticated principal, not even "any".
      if (!p.match) return (r) => r.peerPrincipal !== undefined;
      const m = compileStringMatch(p.match);
      return (r) => r.peerPrincipal !== undefined && m(r.peerPrincipal);
    }
    case 'directRemoteIp':
      return inCidr(p.cidr, sourceIp);
    case 'remoteIp':
      return inCidr(p.cidr, remoteIp);
    case 'header':
      return compileHeader(p.header);
    case 'urlPath': {
      const m = compileStringMatch(p.match);
      return (r, s) => m(urlPath(r, s));
    }
  }
}

interface CompiledPolicy {
  matches: Pred;
  /** decisions made once, so a check returns a shared object */
  onMatch: AuthzDecision;
}

interface CompiledFilter {
  deny: boolean;
  policies: CompiledPolicy[];
}

const ALLOWED: AuthzDecision = Object.freeze({ allowed: true });
const NO_ALLOW_MATCH: AuthzDecision = Object.freeze({ allowed: false, policy: 'none: no ALLOW policy matched' });

export function compileAuthorizer(filters: readonly RbacFilterModel[]): Authorizer {
  const compiled: CompiledFilter[] = [];
  for (const f of filters) {
    if (!f.rules || f.rules.action === 'LOG') continue;
    const deny = f.rules.action === 'DENY';
    compiled.push({
      deny,
      policies: f.rules.policies.map((p) => {
        const perm = some(p.permissions.map(compilePermission));
        const princ = some(p.principals.map(compilePrincipal));
        return { matches: (r, s) => perm(r, s) && princ(r, s), onMatch: Object.freeze({ allowed: !deny, policy: p.name }) };
      }),
    });
  }
  if (compiled.length === 0) return { empty: true, check: () => ALLOWED };
  const scratch = new Scratch();
  return {
    empty: false,
    check(r: AuthzRequest): AuthzDecision {
      scratch.reset();
      let decision = ALLOWED;
      for (const f of compiled) {
        let matched: AuthzDecision | undefined;
        for (const p of f.policies) {
          if (p.matches(r, scratch)) {
            matched = p.onMatch;
            break;
          }
        }
        if (f.deny) {
          if (matched) return matched;
        } else {
          if (!matched) return NO_ALLOW_MATCH;
          decision = matched;
        }
      }
      return decision;
    },
  };
}
