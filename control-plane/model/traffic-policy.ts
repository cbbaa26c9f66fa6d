// DestinationRule in the validated model: traffic policies (at rule, port and subset level),
// and the rule itself. Re-exported by types.ts, which the rest of the model reads.
import type { Source } from './types';

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
  /** the rule applies only to these workloads' sidecars, in its own namespace */
  workloadSelector?: Record<string, string>;
  source: Source;
}
