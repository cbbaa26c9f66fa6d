// The DestinationRule settings that live on an Envoy Cluster beyond its load balancer,
// circuit breakers and outlier thresholds, translated as Istio's cluster builder does
// (pilot/pkg/networking/core/cluster_traffic_policy.go): slow start, the retry budget,
// TCP keepalive, and the upstream HTTP protocol options (idle timeout, requests and
// lifetime per connection, h2 upgrade or the client's protocol, h2 streams and pings).
import { pack } from '../../proto/any';
import { HTTP_PROTOCOL_OPTIONS_KEY, TypeUrl } from '../../proto/type-urls';
import type { OutlierDetection, TrafficPolicy } from '../model/types';
import type { ClusterSpec } from './translate-cluster';
import { duration } from './translate-route';

type Obj = Record<string, unknown>;

/** Slow start for ROUND_ROBIN and LEAST_REQUEST clusters: `round_robin_lb_config` or `least_request_lb_config`. */
export function lbConfig(p: TrafficPolicy | undefined, lbPolicy: string): Obj {
  const w = p?.loadBalancer?.warmup;
  if (!w || (lbPolicy !== 'ROUND_ROBIN' && lbPolicy !== 'LEAST_REQUEST')) return {};
  const slow: Obj = { slow_start_window: duration(w.durationMs) };
  // Envoy reads aggression from its runtime under this key, else the default given here
  if (w.aggression !== undefined) slow.aggression = { default_value: w.aggression, runtime_key: 'tandem.slow_start.aggression' };
  if (w.minimumPercent !== undefined) slow.min_weight_percent = { value: w.minimumPercent };
  return lbPolicy === 'ROUND_ROBIN' ? { round_robin_lb_config: { slow_start_config: slow } } : { least_request_lb_config: { slow_start_config: slow } };
}

/** Istio's defaults for what a retryBudget leaves out: 20% and 3. */
export function retryBudget(p: TrafficPolicy | undefined): Obj | undefined {
  const b = p?.retryBudget;
  if (!b) return undefined;
  return { budget_percent: { value: b.percent ?? 20 }, min_retry_concurrency: { value: b.minRetryConcurrency ?? 3 } };
}

/** SO_KEEPALIVE on upstream connections; what is left out is the OS's (Envoy counts in seconds). */
export function upstreamConnectionOptions(p: TrafficPolicy | undefined): Obj | undefined {
  const k = p?.connectionPool?.tcp?.tcpKeepalive;
  if (!k) return undefined;
  const ka: Obj = {};
  if (k.probes) ka.keepalive_probes = { value: k.probes };
  if (k.timeMs !== undefined) ka.keepalive_time = { value: Math.floor(k.timeMs / 1000) };
  if (k.intervalMs !== undefined) ka.keepalive_interval = { value: Math.floor(k.intervalMs / 1000) };
  return { tcp_keepalive: ka };
}

/** Istio's shouldH2Upgrade, with the mesh-wide default DO_NOT_UPGRADE. */
export function upgrades(p: TrafficPolicy | undefined): boolean {
  const http = p?.connectionPool?.http;
  return !http?.useClientProtocol && http?.h2UpgradePolicy === 'UPGRADE';
}

/**
 * `typed_extension_protocol_options` with Envoy's upstream HttpProtocolOptions, when the
 * rule says anything about connections; none otherwise, so that a cluster without such
 * settings is as it always was (the sidecar then picks by the service's protocol).
 */
export function httpProtocolOptions(c: ClusterSpec): Obj | undefined {
  const tcp = c.policy?.connectionPool?.tcp;
  const http = c.policy?.connectionPool?.http;
  const idle = http?.idleTimeoutMs ?? tcp?.idleTimeoutMs;
  const says =
    idle !== undefined ||
    !!http?.maxRequestsPerConnection ||
    tcp?.maxConnectionDurationMs !== undefined ||
    http?.h2UpgradePolicy !== undefined ||
    !!http?.useClientProtocol ||
    !!http?.maxConcurrentStreams ||
    http?.http2KeepAlive !== undefined;
  if (!says) return undefined;
  const common: Obj = {};
  if (idle !== undefined) common.idle_timeout = duration(idle);
  if (http?.maxRequestsPerConnection) common.max_requests_per_connection = { value: http.maxRequestsPerConnection };
  if (tcp?.maxConnectionDurationMs !== undefined) common.max_connection_duration = duration(tcp.maxConnectionDurationMs);
  const options: Obj = { common_http_protocol_options: common };
  if (http?.useClientProtocol) {
    options.use_downstream_protocol_config = { http_protocol_options: {}, http2_protocol_options: {} };
  } else if (upgrades(c.policy) || c.service.protocol === 'HTTP2' || c.service.protocol === 'GRPC') {
    const h2: Obj = {};
    if (http?.maxConcurrentStreams) h2.max_concurrent_streams = { value: http.maxConcurrentStreams };
    if (http?.http2KeepAlive) h2.connection_keepalive = { interval: duration(http.http2KeepAlive.intervalMs), timeout: duration(http.http2KeepAlive.timeoutMs) };
    options.explicit_http_config = { http2_protocol_options: h2 };
  } else {
    options.explicit_http_config = { http_protocol_options: {} };
  }
  return { [HTTP_PROTOCOL_OPTIONS_KEY]: pack(TypeUrl.HttpProtocolOptions, options) };
}


/** Local-origin errors (connect failures, resets, timeouts) counted on their own, as Istio writes it. */
export function localOriginOutlier(od: OutlierDetection): Obj {
  if (!od.splitExternalLocalOriginErrors) return {};
  const o: Obj = { split_external_local_origin_errors: true, enforcing_local_origin_success_rate: { value: 0 } };
  if (od.consecutiveLocalOriginFailures) {
    o.consecutive_local_origin_failure = { value: od.consecutiveLocalOriginFailures };
    o.enforcing_consecutive_local_origin_failure = { value: 100 };
  }
  return o;
}
