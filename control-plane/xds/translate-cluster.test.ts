// DestinationRule -> Envoy Cluster: merged rules, wildcard hosts, portLevelSettings and
// every connection, balancing and ejection setting, as the real Envoy fields (the
// Cluster is packed and unpacked, so a misspelt field fails here).
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../config';
import { unpack, type AnyMessage } from '../../proto/any';
import { HTTP_PROTOCOL_OPTIONS_KEY, TypeUrl } from '../../proto/type-urls';
import type { WorkloadInfo } from '../../proto/node-meta';
import { Snapshot } from './snapshot';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REVIEWS = 'reviews.default.svc.cluster.local';
const wl = (service: string, version: string, port: number): WorkloadInfo & { identity: string } => ({
  id: `${service}-${version}`,
  service,
  namespace: 'default',
  serviceAccount: service,
  labels: { version },
  inboundAddress: `127.0.0.1:${port}`,
  identity: '',
});
const WORKLOADS = [wl('reviews', 'v1', 15106), wl('reviews', 'v2', 15206), wl('ratings', 'v1', 15306)];

const snapshot = (yaml: string) => new Snapshot(1, parseConfigText(yaml, 'mesh.yaml'), WORKLOADS, { domain: 'cluster.local', trustDomain: 'cluster.local' });

function clusters(yaml: string): Map<string, Obj> {
  const s = snapshot(yaml);
  return new Map(s.served(TypeUrl.Cluster, null).resources.map((r) => [r.name, unpack<Obj>(r.any, TypeUrl.Cluster)]));
}

const dr = (name: string, spec: string, ns = 'default') => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${ns}}
spec:
${spec}`;

const vs = (spec: string) => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
${spec}`;

const protocolOptions = (c: Obj): Obj => unpack<Obj>(c.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS_KEY] as AnyMessage, TypeUrl.HttpProtocolOptions);

describe('two DestinationRules for one host', () => {
  const yaml =
    dr('reviews-v1', '  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]\n') +
    dr('reviews-v2', '  host: reviews\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n  subsets: [{name: v2, labels: {version: v2}}, {name: v1, labels: {version: v2}}]\n') +
    vs('  http:\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 50}\n    - {destination: {host: reviews, subset: v2}, weight: 50}\n');

  it('give one cluster per subset of both, the first definition of a name winning', () => {
    const c = clusters(yaml);
    expect(c.has(`outbound|80|v1|${REVIEWS}`)).toBe(true);
    expect(c.has(`outbound|80|v2|${REVIEWS}`)).toBe(true);
    // the first rule has no top-level policy: the second one's applies
    expect(c.get(`outbound|80||${REVIEWS}`)!.lb_policy).toBe('RANDOM');
    const s = snapshot(yaml);
    const eds = s.served(TypeUrl.ClusterLoadAssignment, [`outbound|80|v1|${REVIEWS}`]).resources[0];
    const cla = unpack<Obj>(eds.any, TypeUrl.ClusterLoadAssignment);
    // v1 is the first rule's subset (version v1), not the second's (version v2)
    expect(cla.endpoints[0].lb_endpoints.map((e: Obj) => e.endpoint.address.socket_address.port_value)).toEqual([15106]);
  });
});

describe('wildcard hosts', () => {
  it('apply to every matching service, the most specific winning', () => {
    const c = clusters(
      dr('mesh', '  host: "*.local"\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n', 'istio-system') +
        dr('ns', '  host: "*.default.svc.cluster.local"\n  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\n') +
        dr('reviews', '  host: reviews\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n'),
    );
    expect(c.get(`outbound|80||${REVIEWS}`)!.lb_policy).toBe('ROUND_ROBIN');
    expect(c.get('outbound|80||ratings.default.svc.cluster.local')!.lb_policy).toBe('LEAST_REQUEST');
  });

  it('a root-namespace rule applies where nothing more specific does', () => {
    const c = clusters(dr('mesh', '  host: "*.local"\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n', 'istio-system'));
    expect(c.get('outbound|80||ratings.default.svc.cluster.local')!.lb_policy).toBe('RANDOM');
  });
});

describe('portLevelSettings', () => {
  const yaml =
    dr(
      'reviews',
      `  host: reviews
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    connectionPool: {http: {http2MaxRequests: 100}}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: LEAST_REQUEST}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {http: {http2MaxRequests: 1}}
`,
    ) + vs('  http:\n  - route: [{destination: {host: reviews, port: {number: 9080}}}]\n  - route: [{destination: {host: reviews, subset: v1, port: {number: 9080}}}]\n');

  it("give a port's clusters the port's policy, whole", () => {
    const c = clusters(yaml);
    expect(c.get(`outbound|80||${REVIEWS}`)!.lb_policy).toBe('RANDOM');
    expect(c.get(`outbound|80||${REVIEWS}`)!.circuit_breakers.thresholds[0].max_requests.value).toBe(100);
    const p = c.get(`outbound|9080||${REVIEWS}`)!;
    expect(p.lb_policy).toBe('LEAST_REQUEST');
    // the port's entry replaces the rule's policy: no pool limit on 9080
    expect(p.circuit_breakers).toBeUndefined();
  });

  it("put a subset's settings on top of the port's", () => {
    const c = clusters(yaml);
    const v1 = c.get(`outbound|9080|v1|${REVIEWS}`)!;
    expect(v1.lb_policy).toBe('LEAST_REQUEST');
    expect(v1.circuit_breakers.thresholds[0].max_requests.value).toBe(1);
    expect(c.get(`outbound|80|v1|${REVIEWS}`)!.lb_policy).toBe('RANDOM');
  });

  it("hash a route by its port's consistent hash", () => {
    const yaml2 =
      dr('reviews', '  host: reviews\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 9080}\n      loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n') +
      vs('  http:\n  - route: [{destination: {host: reviews, port: {number: 9080}}}]\n');
    const s = snapshot(yaml2);
    const rc = unpack<Obj>(s.served(TypeUrl.RouteConfiguration, null).resources[0].any, TypeUrl.RouteConfiguration);
    const vh = rc.virtual_hosts.find((v: Obj) => v.name === REVIEWS);
    expect(vh.routes[0].route.hash_policy).toEqual([{ header: { header_name: 'x-user' } }]);
    expect(clusters(yaml2).get(`outbound|9080||${REVIEWS}`)!.lb_policy).toBe('RING_HASH');
  });
});

describe('connection, balancing and ejection settings', () => {
  const one = (policy: string, protocol = '') =>
    clusters(
      dr('reviews', `  host: reviews\n  trafficPolicy:\n${policy}`) +
        (protocol
          ? `---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext}\nspec:\n  hosts: [api.example.com]\n  ports: [{number: 443, name: p, protocol: ${protocol}}]\n  endpoints: [{address: 10.0.0.1}]\n` +
            dr('ext', `  host: api.example.com\n  trafficPolicy:\n${policy}`)
          : ''),
    );

  it('warmupDurationSecs: slow_start_config on the round robin or least request config', () => {
    expect(one('    loadBalancer: {warmupDurationSecs: 30s}\n').get(`outbound|80||${REVIEWS}`)!.round_robin_lb_config).toEqual({ slow_start_config: { slow_start_window: { seconds: 30, nanos: 0 } } });
    const c = one('    loadBalancer: {simple: LEAST_CONN, warmup: {duration: 10s, minimumPercent: 20, aggression: 2}}\n').get(`outbound|80||${REVIEWS}`)!;
    expect(c.lb_policy).toBe('LEAST_REQUEST');
    expect(c.least_request_lb_config.slow_start_config).toEqual({
      slow_start_window: { seconds: 10, nanos: 0 },
      aggression: { default_value: 2, runtime_key: 'tandem.slow_start.aggression' },
      min_weight_percent: { value: 20 },
    });
  });

  it('tcpKeepalive: upstream_connection_options.tcp_keepalive, in seconds', () => {
    const c = one('    connectionPool: {tcp: {tcpKeepalive: {time: 7200s, interval: 75s, probes: 9}}}\n').get(`outbound|80||${REVIEWS}`)!;
    expect(c.upstream_connection_options).toEqual({ tcp_keepalive: { keepalive_probes: { value: 9 }, keepalive_time: { value: 7200 }, keepalive_interval: { value: 75 } } });
  });

  it('idle timeouts, requests and lifetime per connection: common_http_protocol_options', () => {
    const c = one('    connectionPool:\n      tcp: {maxConnectionDuration: 1h, idleTimeout: 5m}\n      http: {maxRequestsPerConnection: 10, idleTimeout: 30s}\n').get(`outbound|80||${REVIEWS}`)!;
    const o = protocolOptions(c);
    // http.idleTimeout wins over tcp.idleTimeout, as in Istio
    expect(o.common_http_protocol_options).toEqual({ idle_timeout: { seconds: 30, nanos: 0 }, max_requests_per_connection: { value: 10 }, max_connection_duration: { seconds: 3600, nanos: 0 } });
    expect(o.explicit_http_config).toEqual({ http_protocol_options: {} });
    expect(protocolOptions(one('    connectionPool: {tcp: {idleTimeout: 0s}}\n').get(`outbound|80||${REVIEWS}`)!).common_http_protocol_options).toEqual({ idle_timeout: { seconds: 0, nanos: 0 } });
  });

  it('h2UpgradePolicy UPGRADE: http2_protocol_options, with the h2 stream and ping settings', () => {
    const c = one('    connectionPool: {http: {h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 8, http2KeepAlive: {interval: 10s, timeout: 1s}}}\n').get(`outbound|80||${REVIEWS}`)!;
    expect(protocolOptions(c).explicit_http_config).toEqual({
      http2_protocol_options: { max_concurrent_streams: { value: 8 }, connection_keepalive: { interval: { seconds: 10, nanos: 0 }, timeout: { seconds: 1, nanos: 0 } } },
    });
    // DO_NOT_UPGRADE keeps HTTP/1.1, but an HTTP2 or GRPC port is h2 whatever it says
    const d = one('    connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}\n', 'GRPC');
    expect(protocolOptions(d.get(`outbound|80||${REVIEWS}`)!).explicit_http_config).toEqual({ http_protocol_options: {} });
    expect(protocolOptions(d.get('outbound|443||api.example.com')!).explicit_http_config).toEqual({ http2_protocol_options: {} });
  });

  it("useClientProtocol: use_downstream_protocol_config, even on an h2 port", () => {
    const c = one('    connectionPool: {http: {useClientProtocol: true}}\n', 'HTTP2').get('outbound|443||api.example.com')!;
    expect(protocolOptions(c).use_downstream_protocol_config).toEqual({ http_protocol_options: {}, http2_protocol_options: {} });
  });

  it('nothing about connections: no protocol options, as before', () => {
    const c = one('    connectionPool: {tcp: {maxConnections: 5}}\n').get(`outbound|80||${REVIEWS}`)!;
    expect(c.typed_extension_protocol_options).toBeUndefined();
    expect(c.upstream_connection_options).toBeUndefined();
  });

  it('retryBudget: circuit_breakers retry_budget, with Istio defaults for what is left out', () => {
    const c = one('    retryBudget: {percent: {value: 50}}\n').get(`outbound|80||${REVIEWS}`)!;
    expect(c.circuit_breakers.thresholds[0].retry_budget).toEqual({ budget_percent: { value: 50 }, min_retry_concurrency: { value: 3 } });
  });

  it('splitExternalLocalOriginErrors: local-origin failures counted apart', () => {
    const c = one('    outlierDetection: {consecutive5xxErrors: 5, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2}\n').get(`outbound|80||${REVIEWS}`)!;
    expect(c.outlier_detection).toMatchObject({
      consecutive_5xx: { value: 5 },
      split_external_local_origin_errors: true,
      consecutive_local_origin_failure: { value: 2 },
      enforcing_consecutive_local_origin_failure: { value: 100 },
      enforcing_local_origin_success_rate: {},
    });
  });

  it('cookie attributes ride on the route hash policy', () => {
    const s = snapshot(
      dr('reviews', '  host: reviews\n  trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: u, ttl: 60s, attributes: [{name: SameSite, value: Lax}, {name: Secure}]}}}}\n') +
        vs('  http:\n  - route: [{destination: {host: reviews}}]\n'),
    );
    const rc = unpack<Obj>(s.served(TypeUrl.RouteConfiguration, null).resources[0].any, TypeUrl.RouteConfiguration);
    const vh = rc.virtual_hosts.find((v: Obj) => v.name === REVIEWS);
    expect(vh.routes[0].route.hash_policy[0].cookie.attributes).toEqual([{ name: 'SameSite', value: 'Lax' }, { name: 'Secure' }]);
  });
});
