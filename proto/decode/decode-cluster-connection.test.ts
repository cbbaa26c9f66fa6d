// The sidecar's reading of a cluster's connection settings, slow start, retry budget,
// local-origin outlier counting and cookie attributes; what it does not implement is a
// DecodeError naming the field (a NACK).
import { describe, expect, it } from 'vitest';
import { pack } from '../any';
import { HTTP_PROTOCOL_OPTIONS_KEY, TypeUrl } from '../type-urls';
import { toStruct } from '../struct';
import { DecodeError, decodeCluster, decodeRouteConfig } from './decode';

type Obj = Record<string, unknown>;

const NAME = 'outbound|80||api.example.com';
const cluster = (over: Obj = {}) =>
  pack(TypeUrl.Cluster, {
    name: NAME,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: NAME },
    lb_policy: 'ROUND_ROBIN',
    metadata: { filter_metadata: { tandem: toStruct({ mesh: false, protocol: 'HTTP' }) } },
    ...over,
  });
const options = (o: Obj) => ({ typed_extension_protocol_options: { [HTTP_PROTOCOL_OPTIONS_KEY]: pack(TypeUrl.HttpProtocolOptions, o) } });

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return (e as DecodeError).field;
  }
  throw new Error('decoded');
}

describe('connection settings', () => {
  it('reads idle timeout, requests and lifetime per connection, and the upstream protocol', () => {
    const c = decodeCluster(
      cluster(
        options({
          common_http_protocol_options: { idle_timeout: { seconds: 30 }, max_requests_per_connection: { value: 5 }, max_connection_duration: { seconds: 3600 } },
          explicit_http_config: { http_protocol_options: {} },
        }),
      ),
    );
    expect(c.connection).toEqual({ idleTimeoutMs: 30_000, maxRequestsPerConnection: 5, maxConnectionDurationMs: 3_600_000 });
    expect(c.upstreamProtocol).toBe('http1');
  });

  it('reads h2 options: streams per connection and PINGs', () => {
    const c = decodeCluster(
      cluster(options({ explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 8 }, connection_keepalive: { interval: { seconds: 10 }, timeout: { seconds: 1 } } } } })),
    );
    expect(c.upstreamProtocol).toBe('http2');
    expect(c.connection).toEqual({ maxConcurrentStreams: 8, h2Keepalive: { intervalMs: 10_000, timeoutMs: 1000 } });
  });

  it("reads the client's protocol, and an idle timeout of 0 as none", () => {
    const c = decodeCluster(cluster(options({ common_http_protocol_options: { idle_timeout: {} }, use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} } })));
    expect(c.upstreamProtocol).toBe('downstream');
    expect(c.connection).toEqual({ idleTimeoutMs: 0 });
  });

  it('reads TCP keepalive, in seconds', () => {
    const c = decodeCluster(cluster({ upstream_connection_options: { tcp_keepalive: { keepalive_time: { value: 60 }, keepalive_interval: { value: 5 }, keepalive_probes: { value: 3 } } } }));
    expect(c.connection).toEqual({ tcpKeepalive: { timeMs: 60_000, intervalMs: 5000, probes: 3 } });
  });

  it('leaves a cluster without them as it was', () => {
    const c = decodeCluster(cluster());
    expect(c.connection).toBeUndefined();
    expect(c.upstreamProtocol).toBeUndefined();
    expect(c.slowStart).toBeUndefined();
  });

  it.each<[string, Obj, string]>([
    ['another extension', { typed_extension_protocol_options: { 'envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions': pack(TypeUrl.Router, {}) } }, 'typed_extension_protocol_options[envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions]'],
    ['the wrong type', { typed_extension_protocol_options: { [HTTP_PROTOCOL_OPTIONS_KEY]: pack(TypeUrl.Router, {}) } }, `typed_extension_protocol_options[${HTTP_PROTOCOL_OPTIONS_KEY}].type_url`],
    ['auto_config', options({ auto_config: {} }), `typed_extension_protocol_options[${HTTP_PROTOCOL_OPTIONS_KEY}].auto_config`],
    ['max_stream_duration', options({ common_http_protocol_options: { max_stream_duration: { seconds: 1 } }, explicit_http_config: { http_protocol_options: {} } }), `typed_extension_protocol_options[${HTTP_PROTOCOL_OPTIONS_KEY}].common_http_protocol_options.max_stream_duration`],
    ['http3', options({ explicit_http_config: { http3_protocol_options: {} } }), `typed_extension_protocol_options[${HTTP_PROTOCOL_OPTIONS_KEY}].explicit_http_config.http3_protocol_options`],
    ['an h2 setting it lacks', options({ explicit_http_config: { http2_protocol_options: { initial_stream_window_size: { value: 65535 } } } }), `typed_extension_protocol_options[${HTTP_PROTOCOL_OPTIONS_KEY}].explicit_http_config.http2_protocol_options.initial_stream_window_size`],
    ['an HTTP/1 setting', options({ explicit_http_config: { http_protocol_options: { accept_http_10: true } } }), `typed_extension_protocol_options[${HTTP_PROTOCOL_OPTIONS_KEY}].explicit_http_config.http_protocol_options.accept_http_10`],
    ['the deprecated cluster field', { max_requests_per_connection: { value: 1 } }, 'max_requests_per_connection'],
    ['other connection options', { upstream_connection_options: { set_local_interface_name_on_upstream_connections: true } }, 'upstream_connection_options.set_local_interface_name_on_upstream_connections'],
  ])('refuses %s', (_what, over, field) => {
    expect(fieldOf(() => decodeCluster(cluster(over)))).toBe(field);
  });
});

describe('slow start', () => {
  it('reads the window, with Envoy defaults for aggression (linear) and the minimum weight (10%)', () => {
    expect(decodeCluster(cluster({ round_robin_lb_config: { slow_start_config: { slow_start_window: { seconds: 30 } } } })).slowStart).toEqual({
      windowMs: 30_000,
      aggression: 1,
      minWeightPercent: 10,
    });
    const lr = decodeCluster(
      cluster({
        lb_policy: 'LEAST_REQUEST',
        least_request_lb_config: { slow_start_config: { slow_start_window: { seconds: 5 }, aggression: { default_value: 2, runtime_key: 'k' }, min_weight_percent: { value: 25 } } },
      }),
    );
    expect(lr.slowStart).toEqual({ windowMs: 5000, aggression: 2, minWeightPercent: 25 });
  });

  it.each<[string, Obj, string]>([
    ['a config for another balancer', { round_robin_lb_config: { slow_start_config: { slow_start_window: { seconds: 1 } } }, lb_policy: 'RANDOM' }, 'round_robin_lb_config'],
    ['no window', { round_robin_lb_config: { slow_start_config: {} } }, 'round_robin_lb_config.slow_start_config.slow_start_window'],
    ['least request choice_count', { lb_policy: 'LEAST_REQUEST', least_request_lb_config: { choice_count: { value: 3 } } }, 'least_request_lb_config.choice_count'],
  ])('refuses %s', (_what, over, field) => {
    expect(fieldOf(() => decodeCluster(cluster(over)))).toBe(field);
  });
});

describe('retry budget and local-origin outlier counting', () => {
  it('reads a retry budget with Envoy defaults', () => {
    const c = decodeCluster(cluster({ circuit_breakers: { thresholds: [{ retry_budget: { budget_percent: { value: 50 } } }] } }));
    expect(c.limits).toEqual({ retryBudget: { percent: 50, minConcurrency: 3 } });
  });

  it('reads split local-origin errors, with Envoy defaults, and refuses local-origin success rate', () => {
    const split = (o: Obj) => decodeCluster(cluster({ outlier_detection: { split_external_local_origin_errors: true, enforcing_local_origin_success_rate: { value: 0 }, ...o } })).outlier;
    expect(split({ consecutive_local_origin_failure: { value: 2 }, enforcing_consecutive_local_origin_failure: { value: 100 } })).toMatchObject({ splitLocalOrigin: true, consecutiveLocalOriginFailure: 2 });
    expect(split({})).toMatchObject({ splitLocalOrigin: true, consecutiveLocalOriginFailure: 5 });
    expect(fieldOf(() => decodeCluster(cluster({ outlier_detection: { split_external_local_origin_errors: true } }))))
      .toBe('outlier_detection.enforcing_local_origin_success_rate');
  });
});

describe('cookie attributes', () => {
  const routes = (cookie: Obj) =>
    decodeRouteConfig(
      pack(TypeUrl.RouteConfiguration, {
        name: 'outbound',
        virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: NAME, hash_policy: [{ cookie: { name: 'u', ...cookie } }] } }] }],
      }),
    );
  it('reads them onto the cookie hash policy', () => {
    expect(routes({ attributes: [{ name: 'SameSite', value: 'Lax' }, { name: 'Secure' }] }).virtualHosts[0].routes[0].hashPolicies[0]).toEqual({
      kind: 'cookie',
      name: 'u',
      attributes: [{ name: 'SameSite', value: 'Lax' }, { name: 'Secure', value: '' }],
      terminal: false,
    });
  });
  it('refuses one that would break the Set-Cookie header', () => {
    expect(fieldOf(() => routes({ attributes: [{ name: 'SameSite', value: 'Lax; Domain=evil' }] }))).toBe('virtual_hosts[0].routes[0].route.hash_policy[0].cookie.attributes[0].value');
  });
});
