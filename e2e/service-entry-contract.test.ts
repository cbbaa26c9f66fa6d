// What the control plane makes of ServiceEntries, the sidecar applies and honours: every
// resolution goes through translation, the sidecar's decoders and its runtime config
// (with a stand-in for DNS), with no process in between.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config';
import { Snapshot } from '../control-plane/xds/snapshot';
import { TypeUrl } from '../proto/type-urls';
import { decoders, nameOf } from '../proto/decode/decode';
import type { InForce } from '../sidecar/xds/client';
import { RuntimeConfig, EndpointStats } from '../sidecar/runtime/config';
import type { ResolvedAddress } from '../sidecar/runtime/dns';

const YAML = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns}
spec:
  hosts: [api.dns.example]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  resolution: DNS
  endpoints:
  - {address: backends.example, ports: {http: 9090}}
  - {address: localhost}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: rr}
spec:
  hosts: [rr.example]
  ports: [{number: 80, name: http}]
  resolution: DNS_ROUND_ROBIN
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: none}
spec:
  hosts: [api.none.example]
  addresses: [127.0.0.1]
  ports: [{number: 80, name: http, targetPort: 18080}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: weighted}
spec:
  hosts: [api.weighted.example]
  ports: [{number: 80, name: http}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, weight: 1}
  - {address: 10.0.0.2, weight: 3}
`;

const snap = new Snapshot(1, parseConfigText(YAML, 'mesh.yaml'), [], { domain: 'cluster.local', trustDomain: 'cluster.local' });

/** Everything the control plane serves, through the sidecar's decoders (a NACK throws here). */
function decodedResources(): InForce {
  const out: InForce = { clusters: new Map(), endpoints: new Map(), listeners: new Map(), routes: new Map() };
  const put = <T extends keyof typeof decoders>(type: T, into: Map<string, unknown>) => {
    for (const r of snap.served(type, null).resources) {
      const m = decoders[type](r.any);
      into.set(nameOf(m), m);
    }
  };
  put(TypeUrl.Cluster, out.clusters);
  put(TypeUrl.ClusterLoadAssignment, out.endpoints);
  put(TypeUrl.Listener, out.listeners);
  put(TypeUrl.RouteConfiguration, out.routes);
  return out;
}

const v4 = (...a: string[]): ResolvedAddress[] => a.map((address) => ({ address, family: 4 }));
const runtime = (answers: Record<string, ResolvedAddress[]>) =>
  new RuntimeConfig(1, decodedResources(), (k) => new EndpointStats(k), () => 0.5, { dns: { addresses: (h) => answers[h] } });

describe('ServiceEntry, translated and applied', () => {
  it('DNS: every address of every name is an endpoint, on its port (or targetPort); IPv4 preferred', () => {
    const rt = runtime({ 'backends.example': [...v4('10.1.0.1', '10.1.0.2'), { address: '2001:db8::1', family: 6 }], localhost: v4('127.0.0.1'), 'rr.example': [] });
    expect(rt.resolving).toBe(false);
    const c = rt.clusters.get('outbound|80||api.dns.example')!;
    expect(c.endpoints.map((e) => `${e.address}:${e.port}`)).toEqual(['10.1.0.1:9090', '10.1.0.2:9090', '127.0.0.1:8080']);
    expect(c.pick()!.target).toMatchObject({ host: '10.1.0.1', port: 9090 });
  });

  it('DNS: a name still awaiting its first answer holds readiness, and has no endpoint yet', () => {
    const rt = runtime({ localhost: v4('127.0.0.1') });
    expect(rt.resolving).toBe(true);
    expect(rt.clusters.get('outbound|80||api.dns.example')!.endpoints.map((e) => e.address)).toEqual(['127.0.0.1']);
  });

  it('DNS_ROUND_ROBIN: the first address only', () => {
    const rt = runtime({ 'backends.example': [], localhost: [], 'rr.example': v4('10.2.0.9', '10.2.0.1') });
    expect(rt.clusters.get('outbound|80||rr.example')!.endpoints.map((e) => `${e.address}:${e.port}`)).toEqual(['10.2.0.9:80']);
  });

  it('NONE: the destination the request names, on targetPort, reached by a Host naming the address', () => {
    const rt = runtime({});
    const route = rt.outbound.match('127.0.0.1:18080', '/x', () => undefined)!;
    const c = rt.clusters.get(route.pickCluster().name)!;
    expect(c.model.discovery).toEqual({ kind: 'originalDst', header: ':authority', portOverride: 18080 });
    const authority = (a: string) => (n: string) => (n === ':authority' ? a : undefined);
    expect(c.pick(undefined, authority('127.0.0.1:18080'))!.target).toMatchObject({ host: '127.0.0.1', port: 18080 });
    expect(c.pick(undefined, authority('api.none.example'))!.target).toMatchObject({ host: 'api.none.example', port: 18080 });
    // the same destination is the same endpoint (its counters, its connections)
    expect(c.pick(undefined, authority('api.none.example'))).toBe(c.pick(undefined, authority('API.none.example:80')));
    expect(c.pick(undefined, () => undefined)).toBeUndefined();
  });

  it('endpoint weights 1:3 give exactly 1:3 over every round of round robin', () => {
    const c = runtime({}).clusters.get('outbound|80||api.weighted.example')!;
    const picks = Array.from({ length: 8 }, () => c.pick()!.address);
    expect(picks.filter((a) => a === '10.0.0.1')).toHaveLength(2);
    expect(picks.filter((a) => a === '10.0.0.2')).toHaveLength(6);
    // and smoothly: never the light one twice in a row
    expect(picks.join(' ')).not.toMatch(/10\.0\.0\.1 10\.0\.0\.1/);
  });
});
