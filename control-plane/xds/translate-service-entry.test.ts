// ServiceEntry resolution, ports and endpoints translated to real Envoy clusters and
// assignments (e2e/service-entry-contract.test.ts checks the sidecar applies them).
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../config';
import { unpack } from '../../proto/any';
import { TypeUrl } from '../../proto/type-urls';
import { fromStruct } from '../../proto/struct';
import { Snapshot } from './snapshot';
import { transportSocket } from './translate-tls';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const YAML = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns}
spec:
  hosts: [foo.bar.com]
  ports:
  - {number: 80, name: http, protocol: HTTP, targetPort: 8080}
  - {number: 9000, name: grpc, protocol: GRPC}
  resolution: DNS
  endpoints:
  - {address: us.foo.bar.com, ports: {http: 7080}, labels: {region: us}, weight: 3, locality: us-east/a}
  - {address: uk.foo.bar.com, labels: {region: uk}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dns}
spec:
  host: foo.bar.com
  subsets: [{name: us, labels: {region: us}}, {name: none, labels: {region: mars}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: rr}
spec:
  hosts: [rr.example.com]
  ports: [{number: 80, name: http}]
  resolution: DNS_ROUND_ROBIN
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: none}
spec:
  hosts: ["*.wild.example.com", direct.example.com]
  addresses: [192.0.2.7]
  ports: [{number: 80, name: http, targetPort: 8000}, {number: 81, name: http-alt}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static}
spec:
  hosts: [static.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}, {number: 80, name: http, protocol: HTTP, targetPort: 8443}]
  resolution: STATIC
  subjectAltNames: [static.example.com]
  endpoints:
  - {address: 10.0.0.1, weight: 1, locality: eu/b}
  - {address: 10.0.0.2, weight: 3, locality: eu/a/r1}
  - {address: 10.0.0.3}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: static}
spec:
  host: static.example.com
  trafficPolicy: {tls: {mode: SIMPLE}}
`;

const snap = new Snapshot(1, parseConfigText(YAML, 'mesh.yaml'), [], { domain: 'cluster.local', trustDomain: 'cluster.local' });
const served = (type: typeof TypeUrl.Cluster | typeof TypeUrl.ClusterLoadAssignment) => snap.served(type, null).resources;
const clusters = new Map(served(TypeUrl.Cluster).map((r) => [r.name, unpack<Obj>(r.any, TypeUrl.Cluster)]));
const addresses = (la: Obj) => (la.endpoints ?? []).flatMap((l: Obj) => l.lb_endpoints.map((e: Obj) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`));

describe('ServiceEntry clusters', () => {
  it('resolution DNS: STRICT_DNS with the endpoints host names inline, their ports, targetPort or the port', () => {
    const c = clusters.get('outbound|80||foo.bar.com')!;
    expect(c).toMatchObject({ type: 'STRICT_DNS', respect_dns_ttl: true, dns_lookup_family: 'V4_PREFERRED', dns_refresh_rate: { seconds: 60 } });
    expect(c.eds_cluster_config).toBeUndefined();
    // the endpoint's own port for "http", else targetPort
    expect(addresses(c.load_assignment)).toEqual(['uk.foo.bar.com:8080', 'us.foo.bar.com:7080']);
    expect(addresses(clusters.get('outbound|9000||foo.bar.com')!.load_assignment)).toEqual(['uk.foo.bar.com:9000', 'us.foo.bar.com:9000']);
    expect(fromStruct(clusters.get('outbound|9000||foo.bar.com')!.metadata.filter_metadata.tandem)).toEqual({ mesh: false, protocol: 'GRPC' });
  });

  it('carries weights and localities (region/zone/subzone) on the endpoints, subsets by label', () => {
    const la = clusters.get('outbound|80|us|foo.bar.com')!.load_assignment;
    expect(la.endpoints).toHaveLength(1);
    expect(la.endpoints[0].locality).toEqual({ region: 'us-east', zone: 'a' });
    expect(la.endpoints[0].lb_endpoints[0].load_balancing_weight).toEqual({ value: 3 });
    expect(addresses(la)).toEqual(['us.foo.bar.com:7080']);
    expect(clusters.get('outbound|80|none|foo.bar.com')!.load_assignment.endpoints ?? []).toEqual([]);
  });

  it('resolution DNS without endpoints resolves the host itself', () => {
    const c = clusters.get('outbound|80||httpbin.org')!;
    expect(c.type).toBe('STRICT_DNS');
    expect(addresses(c.load_assignment)).toEqual(['httpbin.org:80']);
  });

  it('resolution DNS_ROUND_ROBIN: LOGICAL_DNS, one endpoint', () => {
    const c = clusters.get('outbound|80||rr.example.com')!;
    expect(c.type).toBe('LOGICAL_DNS');
    expect(addresses(c.load_assignment)).toEqual(['rr.example.com:80']);
  });

  it('resolution NONE: ORIGINAL_DST on the authority, the port (or targetPort) as override, wildcard hosts included', () => {
    const c = clusters.get('outbound|80||*.wild.example.com')!;
    expect(c).toMatchObject({ type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', original_dst_lb_config: { use_http_header: true, http_header_name: ':authority', upstream_port_override: { value: 8000 } } });
    expect(clusters.get('outbound|81||direct.example.com')!.original_dst_lb_config.upstream_port_override).toEqual({ value: 81 });
    expect(c.load_assignment).toBeUndefined();
  });

  it('resolution STATIC: EDS, with weights, a locality per group, and targetPort where an endpoint names no port', () => {
    expect(clusters.get('outbound|80||static.example.com')!.type).toBe('EDS');
    const cla = served(TypeUrl.ClusterLoadAssignment).find((r) => r.name === 'outbound|80||static.example.com')!;
    const la = unpack<Obj>(cla.any, TypeUrl.ClusterLoadAssignment);
    expect(la.endpoints.map((l: Obj) => l.locality)).toEqual([{}, { region: 'eu', zone: 'a', sub_zone: 'r1' }, { region: 'eu', zone: 'b' }]);
    expect(addresses(la)).toEqual(['10.0.0.3:8443', '10.0.0.2:8443', '10.0.0.1:8443']);
    expect(la.endpoints.map((l: Obj) => l.lb_endpoints[0].load_balancing_weight.value)).toEqual([1, 3, 1]);
  });

  it('the default port is the first HTTP one, and TLS originated there checks the entry subjectAltNames', () => {
    const rc = unpack<Obj>(snap.served(TypeUrl.RouteConfiguration, null).resources[0].any, TypeUrl.RouteConfiguration);
    const vh = rc.virtual_hosts.find((v: Obj) => v.name === 'static.example.com');
    expect(vh.routes[0].route.cluster).toBe('outbound|80||static.example.com');
    const ts = clusters.get('outbound|80||static.example.com')!.transport_socket;
    const ctx = unpack<Obj>(ts.typed_config, TypeUrl.UpstreamTlsContext);
    expect(ctx.common_tls_context.validation_context.match_typed_subject_alt_names).toEqual([{ san_type: 'DNS', matcher: { exact: 'static.example.com' } }]);
  });

  it('serves EDS only for EDS clusters', () => {
    const eds = served(TypeUrl.ClusterLoadAssignment).map((r) => r.name);
    expect(eds).toContain('outbound|80||static.example.com');
    expect(eds.filter((n) => !n.includes('static.example.com'))).toEqual([]);
  });

  it('routes a Host naming an address to the entry, and any Host under a wildcard', () => {
    const rc = unpack<Obj>(snap.served(TypeUrl.RouteConfiguration, null).resources[0].any, TypeUrl.RouteConfiguration);
    expect(rc.virtual_hosts.find((v: Obj) => v.name === '*.wild.example.com').domains).toEqual(['*.wild.example.com', '192.0.2.7']);
    expect(rc.virtual_hosts.find((v: Obj) => v.name === 'direct.example.com').domains).toEqual(['direct.example.com']);
  });

  it('TLS originated to a wildcard entry sends the SNI of the host each request names (no fixed sni)', () => {
    const service = { fqdn: '*.wild.example.com', mesh: false, defaultPort: 80, protocol: 'HTTP', aliases: ['*.wild.example.com'] };
    const ctx = (sni?: string) =>
      unpack<Obj>(transportSocket({ name: 'c', service, port: 80, subset: '', labels: {}, policy: { tls: { mode: 'SIMPLE', ...(sni ? { sni } : {}) } } })!.typed_config as never, TypeUrl.UpstreamTlsContext);
    expect(ctx().sni).toBeUndefined();
    expect(ctx('api.wild.example.com').sni).toBe('api.wild.example.com');
  });
});
