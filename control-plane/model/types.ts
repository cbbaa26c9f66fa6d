// The validated mesh model. Everything downstream of config validation (translation,
// the xDS server) reads only these types, never raw YAML.

export type StringMatch = { exact: string } | { prefix: string } | { regex: string };

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  /** header name (lower-cased) to match */
  headers?: Record<string, StringMatch>;
  method?: StringMatch;
  queryParams?: Record<string, StringMatch>;
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
  /** 0..100; a single destination defaults to 100 */
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

export interface HTTPRoute {
  name?: string;
  match: HTTPMatchRequest[];
  route: HTTPRouteDestination[];
  timeoutMs?: number;
  retries?: HTTPRetry;
  /** `mirror` (with mirrorPercentage or the deprecated mirrorPercent) and `mirrors[]` alike; percentage 0..100 */
  mirrors: { destination: Destination; percentage: number; /** where it was written, for errors */ field: string }[];
  fault?: HTTPFaultInjection;
  headers?: Headers;
  rewrite?: { uri?: string; authority?: string };
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
  /** fully qualified */
  hosts: string[];
  http: HTTPRoute[];
  splitKey?: SplitKey;
  source: Source;
}

/** LEAST_CONN is read as LEAST_REQUEST (Istio's deprecated spelling); PASSTHROUGH is refused (see config/destination-rule.ts). */
export type LbSimple = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM';

export interface ConsistentHash {
  httpHeaderName?: string;
  /** ttl: the sidecar makes the cookie when the request has none */
  httpCookie?: { name: string; path?: string; ttlMs?: number; attributes?: { name: string; value?: string }[] };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  /** MAGLEV instead of RING_HASH */
  maglev?: boolean;
}

/** DestinationRule `tls`: how the client sidecar talks to the destination. */
export interface ClientTls {
  /** ISTIO_MUTUAL (mesh mTLS, the default for mesh services), DISABLE, SIMPLE or MUTUAL (TLS the sidecar originates) */
  mode: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  sni?: string;
  /** files on the sidecar's machine, as in Istio */
  caCertificates?: string;
  clientCertificate?: string;
  privateKey?: string;
  subjectAltNames?: string[];
  insecureSkipVerify?: boolean;
}

/** Slow start (Envoy's slow_start_config): a new endpoint's weight ramps up over `durationMs`. */
export interface Warmup {
  durationMs: number;
  /** the weight a brand-new endpoint starts at, 0..100 (Envoy's default 10) */
  minimumPercent?: number;
  /** 1 is linear; above 1 ramps slower at first */
  aggression?: number;
}

export interface LoadBalancerSettings {
  simple?: LbSimple;
  consistentHash?: ConsistentHash;
  /** warmupDurationSecs, or warmup{duration,minimumPercent,aggression} */
  warmup?: Warmup;
}

export interface ConnectionPoolSettings {
  tcp?: {
    maxConnections?: number;
    connectTimeoutMs?: number;
    /** SO_KEEPALIVE on upstream connections; unset parts are the OS's */
    tcpKeepalive?: { probes?: number; timeMs?: number; intervalMs?: number };
    maxConnectionDurationMs?: number;
    /** used when http.idleTimeout is not set, as in Istio */
    idleTimeoutMs?: number;
  };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeoutMs?: number;
    h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
    useClientProtocol?: boolean;
    maxConcurrentStreams?: number;
    http2KeepAlive?: { intervalMs: number; timeoutMs: number };
  };
}

export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  intervalMs?: number;
  baseEjectionTimeMs?: number;
  maxEjectionPercent?: number;
  /** below this share of usable endpoints, outlier ejection is ignored (Envoy's panic threshold) */
  minHealthPercent?: number;
  /** connect failures, resets and timeouts counted apart from the answers' statuses */
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailures?: number;
}

/** The four settings a port (or a subset, or the rule) sets as a whole: Istio replaces each one wholesale. */
export interface PortTrafficPolicy {
  port: number;
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTls;
}

export interface TrafficPolicy {
  tls?: ClientTls;
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  /** retries in flight per cluster: `percent` of active requests, at least `minRetryConcurrency` */
  retryBudget?: { percent?: number; minRetryConcurrency?: number };
  /** the first entry for a port wins, as in Istio */
  portLevelSettings?: PortTrafficPolicy[];
}

export interface Subset {
  name: string;
  labels: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface DestinationRule {
  name: string;
  namespace: string;
  /** fully qualified, or a wildcard (`*.example.com`, `*`) */
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
  source: Source;
}

export interface ServicePort {
  number: number;
  name: string;
  /** upper-cased: HTTP, HTTP2, GRPC, TCP, ... */
  protocol: string;
}

export interface WorkloadEntry {
  address: string;
  /** port name to port number */
  ports?: Record<string, number>;
  labels: Record<string, string>;
}

export interface ServiceEntry {
  name: string;
  namespace: string;
  /** fully qualified where short */
  hosts: string[];
  ports: ServicePort[];
  endpoints: WorkloadEntry[];
  resolution: 'STATIC';
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

export interface MeshConfig {
  virtualServices: VirtualService[];
  destinationRules: DestinationRule[];
  serviceEntries: ServiceEntry[];
  peerAuthentications: PeerAuthentication[];
  authorizationPolicies: AuthorizationPolicy[];
}

export const emptyMeshConfig = (): MeshConfig => ({
  virtualServices: [],
  destinationRules: [],
  serviceEntries: [],
  peerAuthentications: [],
  authorizationPolicies: [],
});
