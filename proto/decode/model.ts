// The sidecar's checked view of xDS resources. Decoders produce these; the request
// path only ever sees these, never protobuf objects.
import type { Re2, Substitution } from '../../common/re2';
import type { RbacFilterModel } from './rbac-model';

/** CLUSTER_PROVIDED: the cluster's discovery picks the one endpoint (ORIGINAL_DST) */
export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV' | 'CLUSTER_PROVIDED';

/** Envoy's dns_lookup_family: which address families a DNS cluster's names resolve to. */
export type DnsLookupFamily = 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';

/** How a cluster finds its endpoints. */
export type DiscoveryModel =
  /** by EDS (mesh services, STATIC ServiceEntries) */
  | { kind: 'eds' }
  /** listed in the cluster */
  | { kind: 'static'; endpoints: EndpointModel[] }
  /**
   * STRICT_DNS (every address of every name is an endpoint) or LOGICAL_DNS (one name,
   * its first address); endpoint addresses are host names or IPs, resolved by the sidecar
   */
  | { kind: 'dns'; logical: boolean; endpoints: EndpointModel[]; refreshMs: number; failureRefreshMs: number; respectTtl: boolean; family: DnsLookupFamily }
  /** ORIGINAL_DST: the destination is the request's `header` (a host, maybe with a port), resolved per connection */
  | { kind: 'originalDst'; header: string; portOverride?: number };

/** Envoy's circuit breakers (DEFAULT priority): absent fields are unlimited. */
export interface PoolLimits {
  maxConnections?: number;
  maxPendingRequests?: number;
  maxRequests?: number;
  maxRetries?: number;
  /** retries in flight: `percent` of the cluster's active requests, at least `minConcurrency` */
  retryBudget?: { percent: number; minConcurrency: number };
}

/** Consecutive-error ejection; a threshold of 0 is off. */
export interface OutlierModel {
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
  /** connect failures, resets and timeouts count apart (consecutiveLocalOriginFailure), not as 5xx */
  splitLocalOrigin?: boolean;
  /** with splitLocalOrigin; 0 is off */
  consecutiveLocalOriginFailure?: number;
}

/** Envoy's slow_start_config: an endpoint that joins ramps up from minWeightPercent over windowMs. */
export interface SlowStartModel {
  windowMs: number;
  /** 1: linear */
  aggression: number;
  minWeightPercent: number;
}

/** How upstream connections of a cluster are made and kept (Envoy's HttpProtocolOptions, tcp_keepalive). */
export interface ConnectionModel {
  /** no request for this long closes the connection; 0: never */
  idleTimeoutMs?: number;
  maxRequestsPerConnection?: number;
  maxConnectionDurationMs?: number;
  /** SO_KEEPALIVE; what is absent is the OS's */
  tcpKeepalive?: { timeMs?: number; intervalMs?: number; probes?: number };
  /** HTTP/2: streams per connection before another one is opened */
  maxConcurrentStreams?: number;
  /** HTTP/2: a PING every intervalMs; no answer within timeoutMs closes the connection */
  h2Keepalive?: { intervalMs: number; timeoutMs: number };
}

/** What a route hashes a request on, for ring hash and Maglev clusters. */
export type HashPolicyModel =
  | { kind: 'header'; name: string; terminal: boolean }
  | { kind: 'cookie'; name: string; ttlMs?: number; path?: string; attributes?: { name: string; value: string }[]; terminal: boolean }
  | { kind: 'sourceIp'; terminal: boolean }
  | { kind: 'query'; name: string; terminal: boolean };

/** The cluster's transport socket, as the sidecar understands Envoy's UpstreamTlsContext. */
export type ClusterTls =
  /** mesh mTLS: the workload certificate, the mesh root, the peer's SPIFFE ID checked */
  | { kind: 'mesh'; sni: string; alpn: string[]; /** DestinationRule subjectAltNames: replace the EDS identity */ identities: string[] }
  /** TLS the sidecar originates to a service outside the mesh (SIMPLE, or MUTUAL with files) */
  | {
      kind: 'origination';
      sni: string;
      alpn: string[];
      /** false: insecureSkipVerify */
      verify: boolean;
      /** absent: the system roots */
      caFile?: string;
      certFile?: string;
      keyFile?: string;
      dnsNames: string[];
    };

export interface ClusterModel {
  name: string;
  /** absent: EDS */
  discovery?: Exclude<DiscoveryModel, { kind: 'eds' }>;
  lbPolicy: LbPolicy;
  connectTimeoutMs: number;
  /** endpoints are sidecars: one multiplexed h2 connection per peer */
  mesh: boolean;
  /** what non-mesh endpoints speak: HTTP (HTTP/1.1) or HTTP2/GRPC (h2c) */
  protocol: string;
  /** absent: plaintext */
  tls?: ClusterTls;
  limits: PoolLimits;
  outlier?: OutlierModel;
  /** below this share of usable endpoints, all of them are used (Envoy's panic mode); 0: never */
  panicThresholdPercent?: number;
  slowStart?: SlowStartModel;
  connection?: ConnectionModel;
  /** what the cluster's HttpProtocolOptions ask of endpoints outside the mesh; absent: by `protocol` */
  upstreamProtocol?: 'http1' | 'http2' | 'downstream';
}

export interface EndpointModel {
  address: string;
  port: number;
  healthy: boolean;
  labels: Record<string, string>;
  /** the SPIFFE ID that registered this endpoint: what its certificate must say */
  identity?: string;
  /** load_balancing_weight; absent: 1 */
  weight?: number;
}

export interface EndpointsModel {
  clusterName: string;
  endpoints: EndpointModel[];
}

export interface OutboundListenerModel {
  kind: 'outbound';
  name: string;
  routeConfigName: string;
  stripAnyHostPort: boolean;
}

/** The sidecar's own inbound port: which transports it takes, which requests reach the app. */
export interface InboundListenerModel {
  kind: 'inbound';
  name: string;
  /** a raw_buffer filter chain exists: PERMISSIVE or DISABLE */
  plaintext: boolean;
  /** the RBAC filters ahead of the router, in order */
  rbac: RbacFilterModel[];
  /** SANITIZE_SET with the URI: the app gets By=<own id>;URI=<peer id> */
  setClientCert: boolean;
}

export type ListenerModel = OutboundListenerModel | InboundListenerModel;

export type StringMatcher =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'regex'; value: string; re: Re2 }
  | { kind: 'present' };

export interface HeaderMatcher {
  name: string;
  match: StringMatcher;
  invert: boolean;
  /** Envoy's treat_missing_header_as_empty: an absent header is matched as "" (else it fails the match) */
  missingAsEmpty?: boolean;
}

export interface HeaderOps {
  /** [name, value, overwrite] */
  add: [string, string, boolean][];
  remove: string[];
}

export interface WeightedCluster {
  name: string;
  /** relative: the cluster's share is weight / the sum of the route's weights */
  weight: number;
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
  /** host_rewrite_literal of this cluster, over the route's */
  hostRewrite?: string;
}

/** Envoy's retry_on conditions this sidecar implements. */
export type RetryOn =
  | '5xx'
  | 'gateway-error'
  | 'reset'
  | 'reset-before-request'
  | 'connect-failure'
  | 'retriable-4xx'
  | 'refused-stream'
  | 'retriable-status-codes'
  | 'cancelled'
  | 'deadline-exceeded'
  | 'internal'
  | 'resource-exhausted'
  | 'unavailable';

export interface RetryPolicyModel {
  retryOn: ReadonlySet<RetryOn>;
  numRetries: number;
  /** 0: none */
  perTryTimeoutMs: number;
  retriableStatusCodes: number[];
  backoff: { baseMs: number; maxMs: number };
}

export interface FaultModel {
  /** fraction: 0..1 of requests */
  delay?: { ms: number; fraction: number };
  abort?: { httpStatus?: number; grpcStatus?: number; fraction: number };
}

/** Envoy's RedirectAction: how the Location is made from the request. */
export interface RedirectModel {
  kind: 'redirect';
  /** absent: the request's */
  scheme?: string;
  host?: string;
  port?: number;
  /** replaces the whole path (the query kept unless it has one of its own) */
  path?: string;
  /** replaces the route's matched prefix */
  prefixRewrite?: string;
  stripQuery: boolean;
  status: 301 | 302 | 303 | 307 | 308;
}

/** Envoy's DirectResponseAction. */
export interface DirectResponseModel {
  kind: 'direct';
  status: number;
  body: Buffer;
}

/** Envoy's CorsPolicy (per route, from the CORS filter's typed_per_filter_config). */
export interface CorsModel {
  /** an exact "*" among them allows any origin, as in Envoy */
  allowOrigins: StringMatcher[];
  /** comma-separated, as sent; "*" echoes the preflight's request */
  allowMethods: string;
  allowHeaders: string;
  exposeHeaders: string;
  maxAge: string;
  allowCredentials: boolean;
  /** a preflight from an origin not allowed goes upstream (true, Envoy's and Istio's default) or is answered without CORS headers */
  forwardNotMatchingPreflights: boolean;
}

export interface RouteModel {
  name: string;
  path: StringMatcher;
  /** case_sensitive: false — exact and prefix paths compare case-insensitively (a regex does not) */
  ignoreCase?: boolean;
  /** only requests addressed to this port (their authority's, 80 when it names none) */
  port?: number;
  headers: HeaderMatcher[];
  query: HeaderMatcher[];
  /** empty when the route answers by itself (`answer`) */
  clusters: WeightedCluster[];
  /** a redirect or a direct response: no upstream */
  answer?: RedirectModel | DirectResponseModel;
  cors?: CorsModel;
  timeoutMs: number; // 0: none
  retry?: RetryPolicyModel;
  fault?: FaultModel;
  hashPolicies: HashPolicyModel[];
  /** the tandem.io/split-key annotation: the same key always gets the same destination */
  splitKey?: { kind: 'header' | 'cookie'; name: string };
  mirrors: { cluster: string; fraction: number }[];
  prefixRewrite?: string;
  /** Envoy's regex_rewrite: every match in the path (query kept aside) substituted */
  regexRewrite?: { re: Re2; substitution: Substitution };
  hostRewrite?: string;
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
}

export interface VirtualHostModel {
  name: string;
  domains: string[];
  routes: RouteModel[];
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
}

export interface RouteConfigModel {
  name: string;
  virtualHosts: VirtualHostModel[];
  /** set when more of its virtual hosts come as VirtualHost resources (VHDS) */
  vhds?: { maxDirectBody: number };
}

/** A VirtualHost resource (VHDS): one virtual host of the route configuration its name starts with. */
export interface VirtualHostResourceModel {
  /** `<route configuration name>/<host>` */
  name: string;
  routeConfigName: string;
  /** named `<host>`, as the same virtual host inline in the route configuration */
  vhost: VirtualHostModel;
}

export const noHeaderOps = (): HeaderOps => ({ add: [], remove: [] });
