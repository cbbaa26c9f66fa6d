import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../config';
import type { WorkloadInfo } from '../../proto/node-meta';
import { unpack } from '../../proto/any';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import { fromStruct } from '../../proto/struct';
import { Snapshot } from './snapshot';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REVIEWS = 'reviews.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';
const C_REVIEWS = `outbound|80||${REVIEWS}`;
const C_V1 = `outbound|80|v1|${REVIEWS}`;
const C_V2 = `outbound|80|v2|${REVIEWS}`;

const yamlWith = (v1Weight: number, v2Weight: number) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - uri: {prefix: /api}
      headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
    rewrite: {uri: /v2/api, authority: reviews-v2}
  - name: split
    route:
    - destination: {host: reviews, subset: v1}
      weight: ${v1Weight}
    - destination: {host: reviews, subset: v2}
      weight: ${v2Weight}
      headers:
        response: {add: {x-version: v2}}
    timeout: 1.5s
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 25}
    headers:
      request:
        set: {X-Canary: "yes"}
        remove: [x-debug]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.org]
  ports:
  - {number: 80, name: http, protocol: HTTP}
  - {number: 9000, name: grpc-api}
  resolution: STATIC
  endpoints:
  - address: 10.0.0.1
    ports: {http: 8080}
    labels: {zone: a}
  - address: 10.0.0.2
    labels: {zone: b}
`;

const YAML = yamlWith(90, 10);

const wl = (id: string, service: string, labels: Record<string, string>, port: number): WorkloadInfo => ({
  id,
  service,
  namespace: 'default',
  serviceAccount: service,
  labels,
  inboundAddress: `127.0.0.1:${port}`,
});

const WORKLOADS: WorkloadInfo[] = [
  wl('reviews-v1', 'reviews', { version: 'v1' }, 15106),
  wl('reviews-v2', 'reviews', { version: 'v2' }, 15206),
  wl('ratings-1', 'ratings', { version: 'v1' }, 15306),
];

const build = (yaml = YAML, workloads = WORKLOADS, generation = 1) =>
  new Snapshot(generation, parseConfigText(yaml, 'mesh.yaml'), workloads.map((w) => ({ identity: '', ...w })), { domain: 'cluster.local', trustDomain: 'cluster.local' });

function decoded(snap: Snapshot, type: XdsTypeUrl, names: string[] | null = null): Map<string, Obj> {
  const set = snap.served(type, names);
  return new Map(set.resources.map((r) => [r.name, unpack<Obj>(r.any, type)]));
}

/** socket addresses of a ClusterLoadAssignment, "host:port" */
function endpointsOf(cla: Obj): string[] {
  return (cla.endpoints ?? []).flatMap((l: Obj) =>
    (l.lb_endpoints ?? []).map((e: Obj) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`),
  );
}

describe('Snapshot: clusters', () => {
  const snap = build();
  const clusters = decoded(snap, TypeUrl.Cluster);

  it('names clusters Istio style, one per service port plus one per subset', () => {
    expect([...clusters.keys()].sort()).toEqual(
      [
        C_REVIEWS,
        C_V1,
        C_V2,
        `outbound|80||${RATINGS}`,
        'outbound|80||httpbin.org',
        'outbound|9000||httpbin.org',
      ].sort(),
    );
  });

  it('serves resources sorted by name', () => {
    const names = snap.served(TypeUrl.Cluster, null).resources.map((r) => r.name);
    expect(names).toEqual([...names].sort());
  });

  it('makes EDS clusters over ADS with the DestinationRule load balancer', () => {
    for (const name of [C_REVIEWS, C_V1, C_V2]) {
      const c = clusters.get(name)!;
      expect(c.name).toBe(name);
      expect(c.type).toBe('EDS');
      expect(c.lb_policy).toBe('LEAST_REQUEST');
      expect(c.eds_cluster_config.service_name).toBe(name);
      expect(c.eds_cluster_config.eds_config.ads).toBeDefined();
      expect(fromStruct(c.metadata.filter_metadata.tandem)).toEqual({ mesh: true, protocol: 'HTTP' });
    }
  });

  it('uses round robin where no DestinationRule says otherwise, and marks ServiceEntry clusters non-mesh', () => {
    // ROUND_ROBIN is enum 0: omitted on the wire
    expect(clusters.get(`outbound|80||${RATINGS}`)!.lb_policy ?? 'ROUND_ROBIN').toBe('ROUND_ROBIN');
    const se = clusters.get('outbound|80||httpbin.org')!;
    expect(fromStruct(se.metadata.filter_metadata.tandem)).toEqual({ mesh: false, protocol: 'HTTP' });
  });

  it('serves only the named clusters when names are given', () => {
    const set = snap.served(TypeUrl.Cluster, [C_V1, 'outbound|80||nope.default.svc.cluster.local']);
    expect(set.resources.map((r) => r.name)).toEqual([C_V1]);
  });
});

describe('Snapshot: endpoints', () => {
  const snap = build();
  const eds = decoded(snap, TypeUrl.ClusterLoadAssignment);

  it('has one ClusterLoadAssignment per cluster, named for it', () => {
    expect([...eds.keys()].sort()).toEqual([...decoded(snap, TypeUrl.Cluster).keys()].sort());
    for (const [name, cla] of eds) expect(cla.cluster_name).toBe(name);
  });

  it('puts every workload of the service in the base cluster', () => {
    expect(endpointsOf(eds.get(C_REVIEWS)!)).toEqual(['127.0.0.1:15106', '127.0.0.1:15206']);
  });

  it('puts only the matching workloads in a subset cluster', () => {
    expect(endpointsOf(eds.get(C_V1)!)).toEqual(['127.0.0.1:15106']);
    expect(endpointsOf(eds.get(C_V2)!)).toEqual(['127.0.0.1:15206']);
    expect(endpointsOf(eds.get(`outbound|80||${RATINGS}`)!)).toEqual(['127.0.0.1:15306']);
  });

  it('carries health and labels on each endpoint', () => {
    const lbe = eds.get(C_V2)!.endpoints[0].lb_endpoints[0];
    expect(lbe.health_status).toBe('HEALTHY');
    expect(fromStruct(lbe.metadata.filter_metadata.tandem)).toEqual({ labels: { version: 'v2' } });
  });

  it("uses a ServiceEntry endpoint's named port, and the service port where it names none", () => {
    expect(endpointsOf(eds.get('outbound|80||httpbin.org')!)).toEqual(['10.0.0.1:8080', '10.0.0.2:80']);
    expect(endpointsOf(eds.get('outbound|9000||httpbin.org')!)).toEqual(['10.0.0.1:9000', '10.0.0.2:9000']);
  });

  it('gives a subset with no matching workload an empty assignment', () => {
    const snap2 = build(YAML, [WORKLOADS[0]]);
    const eds2 = decoded(snap2, TypeUrl.ClusterLoadAssignment);
    expect(endpointsOf(eds2.get(C_V1)!)).toEqual(['127.0.0.1:15106']);
    expect(eds2.get(C_V2)!.cluster_name).toBe(C_V2);
    expect(endpointsOf(eds2.get(C_V2)!)).toEqual([]);
  });
});

describe('Snapshot: routes', () => {
  const snap = build();
  const rc = decoded(snap, TypeUrl.RouteConfiguration).get('outbound')!;
  const vhost = (name: string) => rc.virtual_hosts.find((v: Obj) => v.name === name);

  it('serves one outbound RouteConfiguration with a virtual host per service', () => {
    expect([...decoded(snap, TypeUrl.RouteConfiguration).keys()]).toEqual(['outbound']);
    expect(rc.virtual_hosts.map((v: Obj) => v.name).sort()).toEqual([RATINGS, REVIEWS, 'httpbin.org'].sort());
  });

  it('answers to the short name, name.ns, name.ns.svc and the fqdn', () => {
    expect(vhost(REVIEWS).domains).toEqual(['reviews', 'reviews.default', 'reviews.default.svc', REVIEWS]);
    expect(vhost('httpbin.org').domains).toEqual(['httpbin.org']);
  });

  it('translates a header match with a uri prefix, a single destination and a rewrite', () => {
    const [jason] = vhost(REVIEWS).routes;
    expect(jason.name).toBe('jason');
    expect(jason.match.prefix).toBe('/api');
    expect(jason.match.headers).toEqual([{ name: 'end-user', string_match: { exact: 'jason' } }]);
    expect(jason.route.cluster).toBe(C_V2);
    expect(jason.route.prefix_rewrite).toBe('/v2/api');
    expect(jason.route.host_rewrite_literal).toBe('reviews-v2');
  });

  it('translates a 90/10 weighted split with timeout, mirror and header operations', () => {
    const split = vhost(REVIEWS).routes[1];
    expect(split.name).toBe('split');
    expect(split.match).toEqual({ prefix: '/' });
    const wc = split.route.weighted_clusters.clusters;
    expect(wc.map((c: Obj) => [c.name, c.weight.value])).toEqual([
      [C_V1, 90],
      [C_V2, 10],
    ]);
    expect(wc[1].response_headers_to_add).toEqual([{ header: { key: 'x-version', value: 'v2' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }]);
    expect(split.route.timeout).toEqual({ seconds: 1, nanos: 500_000_000 });
    expect(split.route.request_mirror_policies).toEqual([
      { cluster: C_V2, runtime_fraction: { default_value: { numerator: 250_000, denominator: 'MILLION' } } },
    ]);
    expect(split.request_headers_to_add).toEqual([{ header: { key: 'x-canary', value: 'yes' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
    expect(split.request_headers_to_remove).toEqual(['x-debug']);
  });

  it('routes a service without a VirtualService to its default cluster, with Istio\'s default retries', () => {
    expect(vhost(RATINGS).routes).toEqual([
      {
        name: 'default',
        match: { prefix: '/' },
        route: {
          cluster: `outbound|80||${RATINGS}`,
          retry_policy: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: { value: 2 }, retriable_status_codes: [503] },
        },
      },
    ]);
  });
});

describe('Snapshot: listeners', () => {
  const snap = build();

  it('serves the outbound listener to a wildcard subscriber, pointing at the outbound routes by RDS', () => {
    const lds = decoded(snap, TypeUrl.Listener);
    expect([...lds.keys()]).toEqual(['outbound']);
    const l = lds.get('outbound')!;
    expect(l.address.socket_address.port_value).toBe(15001);
    const f = l.filter_chains[0].filters[0];
    expect(f.name).toBe('envoy.filters.network.http_connection_manager');
    const hcm = unpack<Obj>(f.typed_config, TypeUrl.HttpConnectionManager);
    expect(hcm.rds.route_config_name).toBe('outbound');
    expect(hcm.strip_any_host_port).toBe(true);
    expect(hcm.http_filters.map((h: Obj) => h.name)).toEqual(['envoy.filters.http.fault', 'envoy.filters.http.cors', 'envoy.filters.http.router']); // router last
  });

  for (const name of ['reviews', `${REVIEWS}:8080`]) {
    it(`makes an api_listener on demand for ${name}, with a RouteConfiguration of the same name`, () => {
      const lds = decoded(snap, TypeUrl.Listener, [name]);
      expect([...lds.keys()]).toEqual([name]);
      const api = lds.get(name)!.api_listener.api_listener;
      const hcm = unpack<Obj>(api, TypeUrl.HttpConnectionManager);
      expect(hcm.rds.route_config_name).toBe(name);

      const rds = decoded(snap, TypeUrl.RouteConfiguration, [name]);
      const rc = rds.get(name)!;
      expect(rc.virtual_hosts).toHaveLength(1);
      expect(rc.virtual_hosts[0].domains).toEqual([name]);
      expect(rc.virtual_hosts[0].routes.map((r: Obj) => r.name)).toEqual(['jason', 'split']);
    });
  }

  it('makes nothing for a name that is no service', () => {
    expect(snap.served(TypeUrl.Listener, ['unknown']).resources).toEqual([]);
    expect(snap.served(TypeUrl.RouteConfiguration, ['unknown.default.svc.cluster.local']).resources).toEqual([]);
    expect(snap.served(TypeUrl.Listener, ['outbound', 'unknown']).resources.map((r) => r.name)).toEqual(['outbound']);
  });

  it('returns the same on-demand resource on every call within a snapshot', () => {
    const a = snap.served(TypeUrl.Listener, ['reviews']);
    const b = snap.served(TypeUrl.Listener, ['reviews']);
    expect(a.version).toBe(b.version);
    expect(a.resources[0]).toBe(b.resources[0]);
  });
});

describe('Snapshot: versions', () => {
  const types = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const;

  it('gives the same inputs the same version for every type, whatever the generation', () => {
    const a = build(YAML, WORKLOADS, 1);
    const b = build(YAML, WORKLOADS, 7);
    for (const t of types) expect(b.served(t, null).version).toBe(a.served(t, null).version);
    expect(b.served(TypeUrl.Listener, ['reviews']).version).toBe(a.served(TypeUrl.Listener, ['reviews']).version);
  });

  it('moves only the RDS version when a weight changes', () => {
    const a = build(yamlWith(90, 10));
    const b = build(yamlWith(50, 50));
    expect(b.served(TypeUrl.RouteConfiguration, null).version).not.toBe(a.served(TypeUrl.RouteConfiguration, null).version);
    expect(b.served(TypeUrl.RouteConfiguration, ['reviews']).version).not.toBe(a.served(TypeUrl.RouteConfiguration, ['reviews']).version);
    expect(b.served(TypeUrl.Cluster, null).version).toBe(a.served(TypeUrl.Cluster, null).version);
    expect(b.served(TypeUrl.ClusterLoadAssignment, null).version).toBe(a.served(TypeUrl.ClusterLoadAssignment, null).version);
    expect(b.served(TypeUrl.Listener, null).version).toBe(a.served(TypeUrl.Listener, null).version);
  });

  it('moves only the EDS version of the affected clusters when a workload goes', () => {
    const a = build();
    const b = build(YAML, WORKLOADS.filter((w) => w.id !== 'reviews-v2'));
    expect(b.served(TypeUrl.Cluster, null).version).toBe(a.served(TypeUrl.Cluster, null).version);
    expect(b.served(TypeUrl.ClusterLoadAssignment, [C_V1]).version).toBe(a.served(TypeUrl.ClusterLoadAssignment, [C_V1]).version);
    expect(b.served(TypeUrl.ClusterLoadAssignment, [C_V2]).version).not.toBe(a.served(TypeUrl.ClusterLoadAssignment, [C_V2]).version);
  });

  it('does not depend on the order workloads registered in (CDS, EDS, LDS)', () => {
    const a = build(YAML, WORKLOADS);
    const b = build(YAML, [...WORKLOADS].reverse());
    for (const t of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener] as const) {
      expect(b.served(t, null).version).toBe(a.served(t, null).version);
    }
  });

  // After a control-plane restart sidecars re-register in whatever order they reconnect;
  // the outbound RouteConfiguration must not change version (and be re-pushed to every
  // sidecar) just because of that.
  it('does not depend on the order workloads registered in (RDS)', () => {
    const a = build(YAML, WORKLOADS);
    const b = build(YAML, [...WORKLOADS].reverse());
    expect(b.served(TypeUrl.RouteConfiguration, null).version).toBe(a.served(TypeUrl.RouteConfiguration, null).version);
  });

  it('versions a named subscription by what it holds, not by the order names were asked in', () => {
    const snap = build();
    expect(snap.served(TypeUrl.ClusterLoadAssignment, [C_V1, C_V2]).version).toBe(
      snap.served(TypeUrl.ClusterLoadAssignment, [C_V2, C_V1]).version,
    );
    expect(snap.served(TypeUrl.ClusterLoadAssignment, [C_V1]).version).not.toBe(
      snap.served(TypeUrl.ClusterLoadAssignment, [C_V1, C_V2]).version,
    );
  });
});
