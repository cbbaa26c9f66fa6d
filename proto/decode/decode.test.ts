import { describe, expect, it } from 'vitest';
import { pack, ProtoShapeError } from '../any';
import { TypeUrl } from '../type-urls';
import { toStruct } from '../struct';
import { DecodeError, decodeCluster, decodeEndpoints, decodeListener, decodeRouteConfig, decoders, nameOf } from './decode';

type Obj = Record<string, unknown>;

const CLUSTER = 'outbound|80|v1|reviews.default.svc.cluster.local';

const cluster = (over: Obj = {}): Obj => ({
  name: CLUSTER,
  type: 'EDS',
  eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: CLUSTER },
  connect_timeout: { seconds: 2, nanos: 500_000_000 },
  lb_policy: 'LEAST_REQUEST',
  metadata: { filter_metadata: { tandem: toStruct({ mesh: false, protocol: 'GRPC' }) } },
  ...over,
});

const hcm = (over: Obj = {}) =>
  pack(TypeUrl.HttpConnectionManager, {
    stat_prefix: 'outbound',
    rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'outbound' },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: pack(TypeUrl.Router, {}) }],
    strip_any_host_port: true,
    ...over,
  });

const listener = (filters: Obj[] = [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm() }]): Obj => ({
  name: 'outbound',
  address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
  filter_chains: [{ filters }],
});

const route = (over: Obj = {}, action: Obj = {}): Obj => ({
  name: 'r0',
  match: { prefix: '/' },
  route: { cluster: CLUSTER, ...action },
  ...over,
});

const routeConfig = (routes: Obj[], vhostOver: Obj = {}): Obj => ({
  name: 'outbound',
  virtual_hosts: [{ name: 'reviews', domains: ['reviews', 'Reviews.Default'], routes, ...vhostOver }],
});

/** the DecodeError a call throws, for asserting on resource and field */
function decodeErrorOf(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return err as DecodeError;
  }
  throw new Error('expected a DecodeError, got none');
}

describe('decodeCluster', () => {
  it('decodes a valid EDS cluster', () => {
    const c = decodeCluster(pack(TypeUrl.Cluster, cluster()));
    expect(c).toEqual({ name: CLUSTER, lbPolicy: 'LEAST_REQUEST', connectTimeoutMs: 2500, mesh: false, protocol: 'GRPC', limits: {}, panicThresholdPercent: 50 });
    expect(nameOf(c)).toBe(CLUSTER);
  });

  it('defaults to round robin, a 10s connect timeout and a mesh HTTP cluster', () => {
    const c = decodeCluster(pack(TypeUrl.Cluster, { name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }));
    expect(c).toEqual({ name: 'c', lbPolicy: 'ROUND_ROBIN', connectTimeoutMs: 10_000, mesh: true, protocol: 'HTTP', limits: {}, panicThresholdPercent: 50 });
  });

  it('accepts RANDOM', () => {
    expect(decodeCluster(pack(TypeUrl.Cluster, cluster({ lb_policy: 'RANDOM' }))).lbPolicy).toBe('RANDOM');
  });

  it('refuses a cluster type it does not implement, naming type', () => {
    const { eds_cluster_config: _e, ...noEds } = cluster();
    const e = decodeErrorOf(() => decodeCluster(pack(TypeUrl.Cluster, { ...noEds, type: 'STRICT_DNS', lb_policy: 'ROUND_ROBIN', dns_resolvers: [{ socket_address: { address: '8.8.8.8', port_value: 53 } }] })));
    expect(e.resource).toBe(CLUSTER);
    expect(e.field).toBe('dns_resolvers');
    const c = decodeErrorOf(() => decodeCluster(pack(TypeUrl.Cluster, { ...noEds, cluster_type: { name: 'envoy.clusters.aggregate' } })));
    expect(c.field).toBe('cluster_type');
  });

  it('refuses a STATIC cluster (the default type) that names an EDS config', () => {
    const { type: _t, ...noType } = cluster();
    expect(decodeErrorOf(() => decodeCluster(pack(TypeUrl.Cluster, noType))).field).toBe('eds_cluster_config');
  });

  it('accepts RING_HASH and MAGLEV, and refuses a policy it does not implement, naming lb_policy', () => {
    expect(decodeCluster(pack(TypeUrl.Cluster, cluster({ lb_policy: 'RING_HASH' }))).lbPolicy).toBe('RING_HASH');
    expect(decodeCluster(pack(TypeUrl.Cluster, cluster({ lb_policy: 'MAGLEV' }))).lbPolicy).toBe('MAGLEV');
    const e = decodeErrorOf(() => decodeCluster(pack(TypeUrl.Cluster, cluster({ lb_policy: 'CLUSTER_PROVIDED' }))));
    expect(e.resource).toBe(CLUSTER);
    expect(e.field).toBe('lb_policy');
    expect(e.message).toBe(`${CLUSTER}: lb_policy: CLUSTER_PROVIDED goes with type ORIGINAL_DST, and only with it`);
    const l = decodeErrorOf(() => decodeCluster(pack(TypeUrl.Cluster, cluster({ lb_policy: 'LOAD_BALANCING_POLICY_CONFIG' }))));
    expect(l.message).toBe(`${CLUSTER}: lb_policy: LOAD_BALANCING_POLICY_CONFIG is not supported`);
  });

  it('reads outlier detection with Envoy defaults, and refuses success-rate ejection', () => {
    const c = decodeCluster(pack(TypeUrl.Cluster, cluster({ outlier_detection: { consecutive_5xx: { value: 3 }, base_ejection_time: { seconds: 1 } } })));
    expect(c.outlier).toEqual({ consecutive5xx: 3, consecutiveGatewayFailure: 0, intervalMs: 10_000, baseEjectionMs: 1000, maxEjectionPercent: 10 });
    const gw = decodeCluster(pack(TypeUrl.Cluster, cluster({ outlier_detection: { consecutive_gateway_failure: { value: 2 }, enforcing_consecutive_gateway_failure: { value: 100 }, enforcing_consecutive_5xx: { value: 0 } } })));
    expect(gw.outlier).toMatchObject({ consecutive5xx: 0, consecutiveGatewayFailure: 2 });
    const e = decodeErrorOf(() => decodeCluster(pack(TypeUrl.Cluster, cluster({ outlier_detection: { enforcing_success_rate: { value: 100 } } }))));
    expect(e.field).toBe('outlier_detection.enforcing_success_rate');
  });

  it('reads circuit breakers of the DEFAULT priority', () => {
    const c = decodeCluster(
      pack(TypeUrl.Cluster, cluster({ circuit_breakers: { thresholds: [{ max_connections: { value: 1 }, max_pending_requests: { value: 2 }, max_requests: { value: 3 }, max_retries: { value: 4 } }, { priority: 'HIGH', max_requests: { value: 99 } }] } })),
    );
    expect(c.limits).toEqual({ maxConnections: 1, maxPendingRequests: 2, maxRequests: 3, maxRetries: 4 });
    const e = decodeErrorOf(() => decodeCluster(pack(TypeUrl.Cluster, cluster({ circuit_breakers: { thresholds: [{ track_remaining: true }] } }))));
    expect(e.field).toBe('circuit_breakers.thresholds[0].track_remaining');
  });

  it('refuses an EDS service name other than the cluster name', () => {
    const e = decodeErrorOf(() =>
      decodeCluster(pack(TypeUrl.Cluster, cluster({ eds_cluster_config: { eds_config: { ads: {} }, service_name: 'other' } }))),
    );
    expect(e.field).toBe('eds_cluster_config.service_name');
  });

  it('refuses a nameless cluster', () => {
    const e = decodeErrorOf(() => decodeCluster(pack(TypeUrl.Cluster, { type: 'EDS' })));
    expect(e.resource).toBe('(cluster)');
    expect(e.field).toBe('name');
  });

  it('refuses an Any of another type', () => {
    const any = pack(TypeUrl.Listener, listener());
    expect(() => decodeCluster(any)).toThrow(ProtoShapeError);
    expect(() => decodeCluster(any)).toThrow(/type_url: expected type\.googleapis\.com\/envoy\.config\.cluster\.v3\.Cluster/);
  });
});

describe('decodeEndpoints', () => {
  const lbe = (address: string, port: number, extra: Obj = {}): Obj => ({
    endpoint: { address: { socket_address: { address, port_value: port } } },
    ...extra,
  });
  const cla = (eps: Obj[]): Obj => ({ cluster_name: CLUSTER, endpoints: [{ locality: {}, lb_endpoints: eps }] });

  it('decodes endpoints with health and labels', () => {
    const m = decodeEndpoints(
      pack(
        TypeUrl.ClusterLoadAssignment,
        cla([
          lbe('127.0.0.1', 15106, { health_status: 'HEALTHY', metadata: { filter_metadata: { tandem: toStruct({ labels: { version: 'v1' } }) } } }),
          lbe('127.0.0.1', 15107),
          lbe('127.0.0.1', 15108, { health_status: 'UNHEALTHY' }),
          lbe('127.0.0.1', 15109, { health_status: 'DRAINING' }),
        ]),
      ),
    );
    expect(m).toEqual({
      clusterName: CLUSTER,
      endpoints: [
        { address: '127.0.0.1', port: 15106, healthy: true, labels: { version: 'v1' } },
        { address: '127.0.0.1', port: 15107, healthy: true, labels: {} },
        { address: '127.0.0.1', port: 15108, healthy: false, labels: {} },
        { address: '127.0.0.1', port: 15109, healthy: false, labels: {} },
      ],
    });
    expect(nameOf(m)).toBe(CLUSTER);
  });

  it('decodes an empty assignment', () => {
    expect(decodeEndpoints(pack(TypeUrl.ClusterLoadAssignment, { cluster_name: CLUSTER }))).toEqual({ clusterName: CLUSTER, endpoints: [] });
  });

  it('refuses port 0, naming the endpoint', () => {
    const e = decodeErrorOf(() => decodeEndpoints(pack(TypeUrl.ClusterLoadAssignment, cla([lbe('127.0.0.1', 1), lbe('127.0.0.1', 0)]))));
    expect(e.resource).toBe(CLUSTER);
    expect(e.field).toBe('endpoints[0].lb_endpoints[1].endpoint.address.socket_address.port_value');
  });

  it('refuses a port above 65535', () => {
    const e = decodeErrorOf(() => decodeEndpoints(pack(TypeUrl.ClusterLoadAssignment, cla([lbe('127.0.0.1', 70000)]))));
    expect(e.field).toBe('endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value');
  });

  it('refuses an endpoint without an address', () => {
    const e = decodeErrorOf(() => decodeEndpoints(pack(TypeUrl.ClusterLoadAssignment, cla([{ endpoint: {} }]))));
    expect(e.field).toBe('endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address');
  });

  it('refuses an assignment without a cluster name', () => {
    const e = decodeErrorOf(() => decodeEndpoints(pack(TypeUrl.ClusterLoadAssignment, { endpoints: [] })));
    expect(e.field).toBe('cluster_name');
  });

  it('refuses an Any of another type', () => {
    expect(() => decodeEndpoints(pack(TypeUrl.Cluster, cluster()))).toThrow(ProtoShapeError);
  });
});

describe('decodeListener', () => {
  it('decodes an HCM listener using RDS', () => {
    expect(decodeListener(pack(TypeUrl.Listener, listener()))).toEqual({ kind: 'outbound', name: 'outbound', routeConfigName: 'outbound', stripAnyHostPort: true });
  });

  it('reads strip_any_host_port off as false', () => {
    const l = decodeListener(
      pack(TypeUrl.Listener, listener([{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm({ strip_any_host_port: false }) }])),
    );
    expect(l.kind === 'outbound' && l.stripAnyHostPort).toBe(false);
  });

  it('refuses a listener whose filter is not an HCM', () => {
    const e = decodeErrorOf(() => decodeListener(pack(TypeUrl.Listener, listener([{ name: 'envoy.filters.network.tcp_proxy' }]))));
    expect(e.resource).toBe('outbound');
    expect(e.field).toBe('filter_chains[0].filters');
  });

  it('refuses a listener with no filters', () => {
    const e = decodeErrorOf(() => decodeListener(pack(TypeUrl.Listener, listener([]))));
    expect(e.field).toBe('filter_chains[0].filters');
  });

  it('refuses a listener without filter chains', () => {
    const e = decodeErrorOf(() => decodeListener(pack(TypeUrl.Listener, { name: 'outbound' })));
    expect(e.field).toBe('filter_chains');
  });

  it('refuses an HCM filter whose config is some other type', () => {
    const e = decodeErrorOf(() =>
      decodeListener(pack(TypeUrl.Listener, listener([{ name: 'envoy.filters.network.http_connection_manager', typed_config: pack(TypeUrl.Router, {}) }]))),
    );
    expect(e.field).toBe('filter_chains[0].filters[0].typed_config.type_url');
  });

  it('refuses inline route_config', () => {
    const inline = hcm({ rds: undefined, route_config: { name: 'inline', virtual_hosts: [] } });
    const e = decodeErrorOf(() => decodeListener(pack(TypeUrl.Listener, listener([{ name: 'envoy.filters.network.http_connection_manager', typed_config: inline }]))));
    expect(e.resource).toBe('outbound');
    expect(e.field).toBe('filter_chains[0].filters[0].typed_config.route_config');
  });

  it('refuses an HCM without an RDS route name', () => {
    const e = decodeErrorOf(() =>
      decodeListener(pack(TypeUrl.Listener, listener([{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm({ rds: undefined }) }]))),
    );
    expect(e.field).toBe('filter_chains[0].filters[0].typed_config.rds.route_config_name');
  });

  it('refuses an unknown HTTP filter, naming it', () => {
    const typed = hcm({ http_filters: [{ name: 'envoy.filters.http.rbac' }, { name: 'envoy.filters.http.router' }] });
    const e = decodeErrorOf(() => decodeListener(pack(TypeUrl.Listener, listener([{ name: 'envoy.filters.network.http_connection_manager', typed_config: typed }]))));
    expect(e.field).toBe('filter_chains[0].filters[0].typed_config.http_filters[0]');
    expect(e.message).toMatch(/envoy\.filters\.http\.rbac is not supported/);
  });

  it('refuses an Any of another type', () => {
    expect(() => decodeListener(pack(TypeUrl.RouteConfiguration, { name: 'outbound' }))).toThrow(/type_url/);
  });
});

describe('decodeRouteConfig', () => {
  it('decodes virtual hosts and routes into the model', () => {
    const rc = decodeRouteConfig(
      pack(
        TypeUrl.RouteConfiguration,
        routeConfig([
          route(
            {
              name: 'jason',
              match: {
                prefix: '/api',
                headers: [
                  { name: 'End-User', string_match: { exact: 'jason' } },
                  { name: 'x-debug', present_match: true, invert_match: true },
                ],
                query_parameters: [{ name: 'v', string_match: { prefix: '2' } }],
              },
              request_headers_to_add: [{ header: { key: 'X-Canary', value: 'yes' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
              request_headers_to_remove: ['X-Debug'],
              response_headers_to_add: [{ header: { key: 'x-served', value: 'a' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }],
            },
            {
              timeout: { seconds: 1, nanos: 500_000_000 },
              prefix_rewrite: '/v2/api',
              host_rewrite_literal: 'reviews-v2',
              request_mirror_policies: [{ cluster: 'mirror', runtime_fraction: { default_value: { numerator: 250_000, denominator: 'MILLION' } } }],
            },
          ),
          {
            name: 'split',
            match: { safe_regex: { regex: '/items/[0-9]+' } },
            route: {
              weighted_clusters: {
                clusters: [
                  { name: 'v1', weight: { value: 90 } },
                  {
                    name: 'v2',
                    weight: { value: 10 },
                    response_headers_to_add: [{ header: { key: 'X-Version', value: 'v2' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }],
                  },
                ],
              },
            },
          },
          { name: 'exact', match: { path: '/health' }, route: { cluster: 'h' } },
        ]),
      ),
    );
    expect(rc.name).toBe('outbound');
    expect(nameOf(rc)).toBe('outbound');
    expect(rc.virtualHosts).toHaveLength(1);
    const vh = rc.virtualHosts[0];
    expect(vh.name).toBe('reviews');
    expect(vh.domains).toEqual(['reviews', 'reviews.default']);
    const [jason, split, exact] = vh.routes;

    expect(jason.name).toBe('jason');
    expect(jason.path).toEqual({ kind: 'prefix', value: '/api' });
    expect(jason.headers).toEqual([
      { name: 'end-user', match: { kind: 'exact', value: 'jason' }, invert: false },
      { name: 'x-debug', match: { kind: 'present' }, invert: true },
    ]);
    expect(jason.query).toEqual([{ name: 'v', match: { kind: 'prefix', value: '2' }, invert: false }]);
    expect(jason.clusters).toEqual([{ name: CLUSTER, weight: 1, requestHeaders: { add: [], remove: [] }, responseHeaders: { add: [], remove: [] } }]);
    expect(jason.timeoutMs).toBe(1500);
    expect(jason.prefixRewrite).toBe('/v2/api');
    expect(jason.hostRewrite).toBe('reviews-v2');
    expect(jason.mirrors).toEqual([{ cluster: 'mirror', fraction: 0.25 }]);
    expect(jason.requestHeaders).toEqual({ add: [['x-canary', 'yes', true]], remove: ['x-debug'] });
    expect(jason.responseHeaders).toEqual({ add: [['x-served', 'a', false]], remove: [] });

    expect(split.path.kind).toBe('regex');
    if (split.path.kind === 'regex') {
      expect(split.path.re.test('/items/42')).toBe(true);
      // Envoy regexes match the whole path
      expect(split.path.re.test('/items/42/x')).toBe(false);
    }
    expect(split.clusters.map((c) => [c.name, c.weight])).toEqual([
      ['v1', 90],
      ['v2', 10],
    ]);
    expect(split.clusters[1].responseHeaders).toEqual({ add: [['x-version', 'v2', false]], remove: [] });
    expect(split.timeoutMs).toBe(0);
    expect(split.mirrors).toEqual([]);
    expect(split.prefixRewrite).toBeUndefined();

    expect(exact.path).toEqual({ kind: 'exact', value: '/health' });
  });

  it('reads a mirror without a fraction as always', () => {
    const rc = decodeRouteConfig(pack(TypeUrl.RouteConfiguration, routeConfig([route({}, { request_mirror_policies: [{ cluster: 'm' }] })])));
    expect(rc.virtualHosts[0].routes[0].mirrors).toEqual([{ cluster: 'm', fraction: 1 }]);
  });

  it('reads a retry policy, and refuses what it does not implement, naming the route and field', () => {
    const rc = (policy: object) => decodeRouteConfig(pack(TypeUrl.RouteConfiguration, routeConfig([route({}, { retry_policy: policy })])));
    const r = rc({ retry_on: '5xx,retriable-status-codes,envoy-ratelimited', num_retries: { value: 3 }, per_try_timeout: { nanos: 250e6 }, retriable_status_codes: [409] });
    const p = r.virtualHosts[0].routes[0].retry!;
    expect([...p.retryOn]).toEqual(['5xx', 'retriable-status-codes']);
    expect(p).toMatchObject({ numRetries: 3, perTryTimeoutMs: 250, retriableStatusCodes: [409], backoff: { baseMs: 25, maxMs: 250 } });
    expect(rc({ retry_on: 'connect-failure' }).virtualHosts[0].routes[0].retry!.numRetries).toBe(1);
    const e = decodeErrorOf(() => rc({ retry_on: '5xx', retry_priority: { name: 'x' } }));
    expect(e.resource).toBe('outbound');
    expect(e.field).toBe('virtual_hosts[0].routes[0].route.retry_policy.retry_priority');
    expect(e.message).toBe('outbound: virtual_hosts[0].routes[0].route.retry_policy.retry_priority: not supported by this sidecar');
    expect(decodeErrorOf(() => rc({ retry_on: 'bogus' })).field).toBe('virtual_hosts[0].routes[0].route.retry_policy.retry_on');
  });

  it('names the index of the offending route', () => {
    const e = decodeErrorOf(() =>
      decodeRouteConfig(pack(TypeUrl.RouteConfiguration, routeConfig([route(), route({}, { hash_policy: [{ filter_state: { key: 'x' } }] })]))),
    );
    expect(e.field).toBe('virtual_hosts[0].routes[1].route.hash_policy[0].filter_state');
  });

  it('refuses a bad path regex', () => {
    const e = decodeErrorOf(() => decodeRouteConfig(pack(TypeUrl.RouteConfiguration, routeConfig([route({ match: { safe_regex: { regex: '(' } } })]))));
    expect(e.resource).toBe('outbound');
    expect(e.field).toBe('virtual_hosts[0].routes[0].match.safe_regex.regex');
    expect(e.message).toMatch(/invalid regex "\(": missing closing \)/);
  });

  it('compiles path regexes as RE2: (?i) honoured, a lookahead refused', () => {
    const ok = decodeRouteConfig(pack(TypeUrl.RouteConfiguration, routeConfig([route({ match: { safe_regex: { regex: '(?i)/Items/[0-9]+' } } })])));
    const path = ok.virtualHosts[0].routes[0].path;
    expect(path.kind === 'regex' && path.re.test('/ITEMS/7')).toBe(true);
    const e = decodeErrorOf(() => decodeRouteConfig(pack(TypeUrl.RouteConfiguration, routeConfig([route({ match: { safe_regex: { regex: '/a(?=b)' } } })]))));
    expect(e.field).toBe('virtual_hosts[0].routes[0].match.safe_regex.regex');
    expect(e.message).toMatch(/lookarounds are not RE2/);
  });

  it('decodes regex_rewrite, checking its substitution against the pattern', () => {
    const rewrite = (rr: Obj, more: Obj = {}) => routeConfig([route({}, { regex_rewrite: rr, ...more })]);
    const rc = decodeRouteConfig(pack(TypeUrl.RouteConfiguration, rewrite({ pattern: { regex: '^/service/([^/]+)(/.*)$' }, substitution: '\\2/instance/\\1' })));
    const rx = rc.virtualHosts[0].routes[0].regexRewrite;
    expect(rx && rx.re.replaceAll('/service/foo/v1/api', rx.substitution)).toBe('/v1/api/instance/foo');

    const group = decodeErrorOf(() => decodeRouteConfig(pack(TypeUrl.RouteConfiguration, rewrite({ pattern: { regex: '/(a)' }, substitution: '\\2' }))));
    expect(group.field).toBe('virtual_hosts[0].routes[0].route.regex_rewrite.substitution');
    expect(group.message).toMatch(/refers to group \\2/);
    const bad = decodeErrorOf(() => decodeRouteConfig(pack(TypeUrl.RouteConfiguration, rewrite({ pattern: { regex: '(a)\\1' }, substitution: 'x' }))));
    expect(bad.field).toBe('virtual_hosts[0].routes[0].route.regex_rewrite.pattern.regex');
    const both = decodeErrorOf(() => decodeRouteConfig(pack(TypeUrl.RouteConfiguration, rewrite({ pattern: { regex: '/a' }, substitution: '/b' }, { prefix_rewrite: '/c' }))));
    expect(both.field).toBe('virtual_hosts[0].routes[0].route.regex_rewrite');
  });

  it('refuses a bad header regex', () => {
    const e = decodeErrorOf(() =>
      decodeRouteConfig(
        pack(TypeUrl.RouteConfiguration, routeConfig([route({ match: { prefix: '/', headers: [{ name: 'x', string_match: { safe_regex: { regex: '[' } } }] } })])),
      ),
    );
    expect(e.field).toBe('virtual_hosts[0].routes[0].match.headers[0].string_match.safe_regex.regex');
  });

  it('refuses weighted clusters whose weights are all zero', () => {
    const e = decodeErrorOf(() =>
      decodeRouteConfig(
        pack(
          TypeUrl.RouteConfiguration,
          routeConfig([{ name: 'z', match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: { value: 0 } }, { name: 'b' }] } } }]),
        ),
      ),
    );
    expect(e.field).toBe('virtual_hosts[0].routes[0].route.weighted_clusters');
    expect(e.message).toMatch(/total weight is 0/);
  });

  it('accepts weighted clusters where only some weights are zero', () => {
    const rc = decodeRouteConfig(
      pack(
        TypeUrl.RouteConfiguration,
        routeConfig([{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: { value: 0 } }, { name: 'b', weight: { value: 100 } }] } } }]),
      ),
    );
    expect(rc.virtualHosts[0].routes[0].clusters.map((c) => c.weight)).toEqual([0, 100]);
  });

  it('refuses a route with neither a cluster nor weighted clusters', () => {
    const e = decodeErrorOf(() => decodeRouteConfig(pack(TypeUrl.RouteConfiguration, routeConfig([{ match: { prefix: '/' }, route: {} }]))));
    expect(e.field).toBe('virtual_hosts[0].routes[0].route');
  });

  it('reads the fault filter per route (HTTP and gRPC aborts, delays), and refuses other per-filter config', () => {
    const rc = (f: object, name = 'envoy.filters.http.fault') =>
      decodeRouteConfig(pack(TypeUrl.RouteConfiguration, routeConfig([route({ typed_per_filter_config: { [name]: pack(TypeUrl.HTTPFault, f) } })])));
    const half = { numerator: 50, denominator: 'HUNDRED' };
    expect(rc({ abort: { http_status: 503, percentage: half } }).virtualHosts[0].routes[0].fault).toEqual({ abort: { httpStatus: 503, grpcStatus: undefined, fraction: 0.5 } });
    expect(rc({ abort: { grpc_status: 14, percentage: { numerator: 250000, denominator: 'MILLION' } } }).virtualHosts[0].routes[0].fault!.abort).toMatchObject({ grpcStatus: 14, fraction: 0.25 });
    // Envoy: a fault without a percentage faults nothing
    expect(rc({ delay: { fixed_delay: { seconds: 2 } } }).virtualHosts[0].routes[0].fault).toEqual({ delay: { ms: 2000, fraction: 0 } });
    expect(decodeErrorOf(() => rc({ abort: { http_status: 503 }, max_active_faults: { value: 1 } })).field).toBe('virtual_hosts[0].routes[0].typed_per_filter_config.envoy.filters.http.fault.max_active_faults');
    expect(decodeErrorOf(() => rc({ abort: { http_status: 503 } }, 'envoy.filters.http.lua')).field).toBe('virtual_hosts[0].routes[0].typed_per_filter_config.envoy.filters.http.lua');
  });

  it('refuses a virtual host without domains', () => {
    const e = decodeErrorOf(() => decodeRouteConfig(pack(TypeUrl.RouteConfiguration, routeConfig([route()], { domains: [] }))));
    expect(e.field).toBe('virtual_hosts[0].domains');
  });

  it('refuses case-insensitive matching it does not implement', () => {
    const e = decodeErrorOf(() =>
      decodeRouteConfig(
        pack(TypeUrl.RouteConfiguration, routeConfig([route({ match: { prefix: '/', headers: [{ name: 'x', string_match: { exact: 'a', ignore_case: true } }] } })])),
      ),
    );
    expect(e.field).toBe('virtual_hosts[0].routes[0].match.headers[0].string_match.ignore_case');
  });

  it('refuses an Any of another type', () => {
    expect(() => decodeRouteConfig(pack(TypeUrl.Listener, listener()))).toThrow(ProtoShapeError);
  });
});

describe('decoders table', () => {
  it('maps each xDS type to its decoder', () => {
    expect(decoders[TypeUrl.Cluster]).toBe(decodeCluster);
    expect(decoders[TypeUrl.ClusterLoadAssignment]).toBe(decodeEndpoints);
    expect(decoders[TypeUrl.Listener]).toBe(decodeListener);
    expect(decoders[TypeUrl.RouteConfiguration]).toBe(decodeRouteConfig);
  });
});
