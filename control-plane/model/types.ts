// The validated mesh model. Everything downstream of config validation (translation,
// the xDS server) reads only these types, never raw YAML.
import type { DestinationRule } from './traffic-policy';

export type StringMatch = { exact: string } | { prefix: string } | { regex: string };

/** Istio's StringMatch where an empty one (`{}`) means "present, whatever the value". */
export type PresenceMatch = StringMatch | { present: true };

/** Istio's HTTPMatchRequest: every condition given must hold. */
export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  /** exact and prefix uri matches ignore case (a regex keeps its own case rules) */
  ignoreUriCase?: boolean;
  /** header name (lower-cased; pseudo-headers such as :path allowed) to match */
  headers?: Record<string, PresenceMatch>;
  /** headers that must not match; an absent header does not match */
  withoutHeaders?: Record<string, PresenceMatch>;
  method?: PresenceMatch;
  authority?: PresenceMatch;
  scheme?: PresenceMatch;
  queryParams?: Record<string, PresenceMatch>;
  /** the port the application addressed: its Host's port, 80 when it names none */
  port?: number;
  /** the clause exists only in the routes of sidecars whose workload has these labels */
  sourceLabels?: Record<string, string>;
  /** … and is in this namespace */
  sourceNamespace?: string;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface Destination {
  /** fully qualified host, e.g. reviews.default.svc.cluster.local */
  host: string;
  subset?: string;
  port?: number;
}

export interface HTTPRouteDestination {
  destination: Destination;
  /** relative, as in Istio: a share of the route's total (0 when omitted); a lone destination's is 100 */
  weight: number;
  headers?: Headers;
}

export interface HTTPRetry {
  attempts: number;
  perTryTimeoutMs?: number;
  /** comma-separated Envoy/Istio retry conditions, e.g. "5xx,connect-failure" */
  retryOn?: string;
}

export interface Percent {
  /** 0..100 */
  value: number;
}

export interface HTTPFaultInjection {
  delay?: { fixedDelayMs: number; percentage: number };
  /** exactly one of httpStatus and grpcStatus (a gRPC status code) */
  abort?: { httpStatus?: number; grpcStatus?: number; percentage: number };
}

/** Istio's HTTPRedirect: the sidecar answers with a redirect itself. */
export interface HTTPRedirect {
  /** replaces the whole path (the request's query is kept, as Envoy does) */
  uri?: string;
  /** replaces the matched prefix; every uri match of the route is a prefix match */
  prefixRewrite?: string;
  authority?: string;
  /** a fixed port; 0 is none */
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: 'http' | 'https';
  /** 301 (the default), 302, 303, 307 or 308 */
  redirectCode: number;
}

/** Istio's HTTPDirectResponse: the sidecar answers with this status and body itself. */
export interface HTTPDirectResponse {
  /** 200..599 */
  status: number;
  /** `bytes` is base64, as written in the YAML */
  body?: { string: string } | { bytes: string };
}

/** Istio's CorsPolicy, as the CORS filter applies it. */
export interface CorsPolicy {
  /** `allowOrigins`, or the deprecated `allowOrigin` as exact matches; `*` allows any origin */
  allowOrigins: StringMatch[];
  allowMethods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
  allowCredentials?: boolean;
  /** a preflight from an origin that is not allowed: to the upstream (FORWARD, the default) or answered without CORS headers (IGNORE) */
  unmatchedPreflights: 'FORWARD' | 'IGNORE';
}

export interface HTTPRoute {
  name?: string;
  match: HTTPMatchRequest[];
  /** empty when the route answers by itself (redirect, directResponse) */
  route: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  corsPolicy?: CorsPolicy;
  /**
   * Istio delegation: this route's requests are routed by that VirtualService's routes.
   * Only between reading and config/delegate.ts, which merges them in: the MeshConfig that
   * validateDocuments returns has none.
   */
  delegate?: { name: string; /** absent: the delegating VirtualService's */ namespace?: string };
  timeoutMs?: number;
  retries?: HTTPRetry;
  /** `mirror` (with mirrorPercentage or the deprecated mirrorPercent) and `mirrors[]` alike; percentage 0..100 */
  mirrors: { destination: Destination; percentage: number; /** where it was written, for errors */ field: string }[];
  fault?: HTTPFaultInjection;
  headers?: Headers;
  rewrite?: HTTPRewrite;
}

/** `uri` (a prefix rewrite) and `uriRegexRewrite` exclude each other, as in Istio. */
export interface HTTPRewrite {
  uri?: string;
  authority?: string;
  /** RE2 `match` over the path (query excluded); `rewrite` may use \1..\9 */
  uriRegexRewrite?: { match: string; rewrite: string };
}

export interface Source {
  file: string;
  /** 0-based index of the YAML document within the file */
  doc: number;
}

export interface SplitKey {
  kind: 'header' | 'cookie';
  name: string;
}

export interface VirtualService {
  name: string;
  namespace: string;
  /** fully qualified, or `*.suffix`, or `*`; none: a delegate, used only through a route's `delegate` */
  hosts: string[];
  http: HTTPRoute[];
  splitKey?: SplitKey;
  source: Source;
}

export type { LbSimple, ConsistentHash, ClientTls, Warmup, LoadBalancerSettings, ConnectionPoolSettings, OutlierDetection, PortTrafficPolicy, TrafficPolicy, Subset, DestinationRule } from './traffic-policy';

export interface ServicePort {
  number: number;
  name: string;
  /** upper-cased: HTTP, HTTP2, GRPC, GRPC-WEB, HTTPS, TLS, TCP, ... */
  protocol: string;
  /** the endpoint port when an endpoint's `ports` names none (default: `number`) */
  targetPort?: number;
}

export interface WorkloadEntry {
  /** an IP, or (resolution DNS or DNS_ROUND_ROBIN) a host name */
  address: string;
  /** port name to port number */
  ports?: Record<string, number>;
  labels: Record<string, string>;
  /** relative share of the traffic; absent: 1 */
  weight?: number;
  /** region/zone/subzone */
  locality?: string;
}

/** Istio's ServiceEntry resolution: how the sidecar finds the endpoints' addresses. */
export type Resolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';

export interface ServiceEntry {
  name: string;
  namespace: string;
  /** fully qualified where short; may be a wildcard such as *.example.com */
  hosts: string[];
  /** IP addresses a request's Host may name instead of the first host */
  addresses: string[];
  ports: ServicePort[];
  endpoints: WorkloadEntry[];
  resolution: Resolution;
  location: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  /** the names the server certificate may carry, when a DestinationRule's tls names none */
  subjectAltNames?: string[];
  source: Source;
}

/** A resolved mTLS mode; UNSET is not one (it means "inherit" and is absent in the model). */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface PeerAuthentication {
  name: string;
  namespace: string;
  /** absent: namespace-wide (or mesh-wide when in the root namespace) */
  selector?: Record<string, string>;
  /** absent: UNSET (or no `mtls`), inherit from the level above */
  mode?: MtlsMode;
  /** port -> mode; undefined: UNSET, inherit from this policy's mode. Only with a selector. */
  portLevelMtls?: Record<number, MtlsMode | undefined>;
  source: Source;
}

/**
 * Istio's Source. Values are as written, except that principals are matched with
 * "spiffe://" in front and serviceAccounts may omit the namespace (the policy's). An
 * absent list, like an empty one, does not constrain.
 */
export interface AuthorizationSource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  /** CIDRs or bare IPs */
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
  /** "sa" or "ns/sa" */
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
}

export interface AuthorizationOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: number[];
  notPorts?: number[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

/** Istio's Condition; `key` is one of the attributes listed in config/security.ts. */
export interface AuthorizationCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthorizationRule {
  /** absent: from anyone; several: any of them */
  from?: AuthorizationSource[];
  /** absent: any operation; several: any of them */
  to?: AuthorizationOperation[];
  /** all of them must hold */
  when?: AuthorizationCondition[];
}

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT';

export interface AuthorizationPolicy {
  name: string;
  namespace: string;
  action: AuthorizationAction;
  selector?: Record<string, string>;
  /** empty: ALLOW matches nothing (allow-nothing); DENY always has rules */
  rules: AuthorizationRule[];
  source: Source;
}

/** One `namespace/dnsName` of a Sidecar's egress hosts. */
export interface EgressHost {
  /** '*' (any), '.' (the workload's own) or a namespace */
  namespace: string;
  /** '*', '*.suffix' or a name with a dot, lower-cased as written */
  host: string;
  /** written with '~': subtracted from what the other hosts import */
  exclude: boolean;
}

/** Istio's Sidecar, as far as Tandem honours it: which services a workload's sidecar receives. */
export interface Sidecar {
  name: string;
  namespace: string;
  /** absent: every workload of the namespace (or, in the root namespace, of the mesh) */
  workloadSelector?: Record<string, string>;
  /** a Sidecar without egress has Istio's default: every host of every namespace */
  egressHosts: EgressHost[];
  source: Source;
}

export interface MeshConfig {
  virtualServices: VirtualService[];
  destinationRules: DestinationRule[];
  serviceEntries: ServiceEntry[];
  peerAuthentications: PeerAuthentication[];
  authorizationPolicies: AuthorizationPolicy[];
  sidecars: Sidecar[];
}

export const emptyMeshConfig = (): MeshConfig => ({
  virtualServices: [],
  destinationRules: [],
  serviceEntries: [],
  peerAuthentications: [],
  authorizationPolicies: [],
  sidecars: [],
});
