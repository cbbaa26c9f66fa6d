// How a cluster's upstream connections are made and kept, and how new endpoints ramp
// up: Envoy's upstream HttpProtocolOptions (in typed_extension_protocol_options),
// upstream_connection_options.tcp_keepalive and the load balancers' slow_start_config,
// typed and checked; a DecodeError names any part this sidecar does not implement.
import { unpack, type AnyMessage } from '../any';
import { HTTP_PROTOCOL_OPTIONS_KEY, TypeUrl } from '../type-urls';
import { DecodeError } from './decode-error';
import type { ConnectionModel, SlowStartModel } from './model';

interface U32 {
  value?: number;
}
interface Duration {
  seconds?: number;
  nanos?: number;
}
interface Http2OptionsPb {
  max_concurrent_streams?: U32;
  connection_keepalive?: { interval?: Duration; timeout?: Duration; [other: string]: unknown };
  [other: string]: unknown;
}
interface ProtocolConfigPb {
  http_protocol_options?: Record<string, unknown>;
  http2_protocol_options?: Http2OptionsPb;
  http3_protocol_options?: unknown;
  [other: string]: unknown;
}
interface HttpProtocolOptionsPb {
  common_http_protocol_options?: { idle_timeout?: Duration; max_requests_per_connection?: U32; max_connection_duration?: Duration; [other: string]: unknown };
  explicit_http_config?: ProtocolConfigPb;
  use_downstream_protocol_config?: ProtocolConfigPb;
  [other: string]: unknown;
}
interface SlowStartPb {
  slow_start_window?: Duration;
  aggression?: { default_value?: number; runtime_key?: string };
  min_weight_percent?: { value?: number };
}
export interface LbConfigPb {
  slow_start_config?: SlowStartPb;
  [other: string]: unknown;
}
export interface UpstreamConnectionOptionsPb {
  tcp_keepalive?: { keepalive_probes?: U32; keepalive_time?: U32; keepalive_interval?: U32 };
  [other: string]: unknown;
}


const ms = (d: Duration): number => Number(d.seconds ?? 0) * 1000 + Math.round(Number(d.nanos ?? 0) / 1e6);

function only(o: object, allowed: string[], resource: string, at: string): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    if (!allowed.includes(k)) throw new DecodeError(resource, `${at}.${k}`, 'not supported by this sidecar');
  }
}

export interface DecodedProtocolOptions {
  connection: ConnectionModel;
  upstreamProtocol?: 'http1' | 'http2' | 'downstream';
}

function http2Options(h2: Http2OptionsPb, connection: ConnectionModel, resource: string, at: string): void {
  only(h2, ['max_concurrent_streams', 'connection_keepalive'], resource, at);
  if (h2.max_concurrent_streams?.value) connection.maxConcurrentStreams = h2.max_concurrent_streams.value;
  const ka = h2.connection_keepalive;
  if (ka) {
    only(ka, ['interval', 'timeout'], resource, `${at}.connection_keepalive`);
    if (!ka.interval || !ms(ka.interval)) throw new DecodeError(resource, `${at}.connection_keepalive.interval`, 'must be set');
    if (!ka.timeout || !ms(ka.timeout)) throw new DecodeError(resource, `${at}.connection_keepalive.timeout`, 'must be set');
    connection.h2Keepalive = { intervalMs: ms(ka.interval), timeoutMs: ms(ka.timeout) };
  }
}

/** `typed_extension_protocol_options`: only the upstream HttpProtocolOptions. */
export function decodeProtocolOptions(map: Record<string, AnyMessage>, resource: string): DecodedProtocolOptions | undefined {
  const base = 'typed_extension_protocol_options';
  for (const k of Object.keys(map)) if (k !== HTTP_PROTOCOL_OPTIONS_KEY) throw new DecodeError(resource, `${base}[${k}]`, 'not supported by this sidecar');
  const any = map[HTTP_PROTOCOL_OPTIONS_KEY];
  if (!any) return undefined;
  const at = `${base}[${HTTP_PROTOCOL_OPTIONS_KEY}]`;
  if (any.type_url !== TypeUrl.HttpProtocolOptions) throw new DecodeError(resource, `${at}.type_url`, `must be ${TypeUrl.HttpProtocolOptions}`);
  const o = unpack<HttpProtocolOptionsPb>(any);
  only(o, ['common_http_protocol_options', 'explicit_http_config', 'use_downstream_protocol_config'], resource, at);
  const connection: ConnectionModel = {};
  const common = o.common_http_protocol_options;
  if (common) {
    only(common, ['idle_timeout', 'max_requests_per_connection', 'max_connection_duration'], resource, `${at}.common_http_protocol_options`);
    if (common.idle_timeout) connection.idleTimeoutMs = ms(common.idle_timeout);
    if (common.max_requests_per_connection?.value) connection.maxRequestsPerConnection = common.max_requests_per_connection.value;
    if (common.max_connection_duration && ms(common.max_connection_duration)) connection.maxConnectionDurationMs = ms(common.max_connection_duration);
  }
  let upstreamProtocol: DecodedProtocolOptions['upstreamProtocol'];
  const explicit = o.explicit_http_config;
  if (explicit) {
    const eat = `${at}.explicit_http_config`;
    only(explicit, ['http_protocol_options', 'http2_protocol_options'], resource, eat);
    if (explicit.http2_protocol_options) {
      http2Options(explicit.http2_protocol_options, connection, resource, `${eat}.http2_protocol_options`);
      upstreamProtocol = 'http2';
    } else if (explicit.http_protocol_options) {
      only(explicit.http_protocol_options, [], resource, `${eat}.http_protocol_options`);
      upstreamProtocol = 'http1';
    } else throw new DecodeError(resource, eat, 'one of http_protocol_options, http2_protocol_options is required');
  } else if (o.use_downstream_protocol_config) {
    const dat = `${at}.use_downstream_protocol_config`;
    const d = o.use_downstream_protocol_config;
    only(d, ['http_protocol_options', 'http2_protocol_options'], resource, dat);
    if (d.http_protocol_options) only(d.http_protocol_options, [], resource, `${dat}.http_protocol_options`);
    if (d.http2_protocol_options) http2Options(d.http2_protocol_options, connection, resource, `${dat}.http2_protocol_options`);
    upstreamProtocol = 'downstream';
  }
  return { connection, ...(upstreamProtocol ? { upstreamProtocol } : {}) };
}

/** `upstream_connection_options`: TCP keepalive only (Envoy counts it in seconds). */
export function decodeUpstreamConnectionOptions(u: UpstreamConnectionOptionsPb, resource: string): ConnectionModel['tcpKeepalive'] {
  only(u, ['tcp_keepalive'], resource, 'upstream_connection_options');
  const k = u.tcp_keepalive;
  if (!k) return undefined;
  return {
    ...(k.keepalive_time?.value ? { timeMs: k.keepalive_time.value * 1000 } : {}),
    ...(k.keepalive_interval?.value ? { intervalMs: k.keepalive_interval.value * 1000 } : {}),
    ...(k.keepalive_probes?.value ? { probes: k.keepalive_probes.value } : {}),
  };
}

/** `round_robin_lb_config` / `least_request_lb_config`: slow start only (Envoy's defaults: linear, from 10%). */
export function decodeSlowStart(c: LbConfigPb, resource: string, at: string): SlowStartModel | undefined {
  only(c, ['slow_start_config'], resource, at);
  const s = c.slow_start_config;
  if (!s) return undefined;
  const window = s.slow_start_window ? ms(s.slow_start_window) : 0;
  if (!window) throw new DecodeError(resource, `${at}.slow_start_config.slow_start_window`, 'must be set');
  const aggression = s.aggression?.default_value ?? 1;
  if (!(aggression > 0)) throw new DecodeError(resource, `${at}.slow_start_config.aggression`, 'must be greater than 0');
  const min = s.min_weight_percent?.value ?? 10;
  if (!(min >= 0 && min <= 100)) throw new DecodeError(resource, `${at}.slow_start_config.min_weight_percent`, 'must be 0..100');
  return { windowMs: window, aggression, minWeightPercent: min };
}
