// What the control plane makes of a DestinationRule, the sidecar applies: a rule using
// every TrafficPolicy field Tandem accepts (at the top, per port and per subset, over
// ServiceEntry and mesh hosts) is translated, and every Cluster and route it yields
// goes through the sidecar's decoders without a NACK, meaning what the rule said.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config';
import { Snapshot } from '../control-plane/xds/snapshot';
import type { Workload } from '../control-plane/model/workload';
import { TypeUrl } from '../proto/type-urls';
import { decodeCluster, decodeRouteConfig } from '../proto/decode/decode';

const OPTS = { domain: 'cluster.local', trustDomain: 'cluster.local' };
const REVIEWS = 'reviews.default.svc.cluster.local';
const workload = (version: string, port: number): Workload => ({
  id: `reviews-${version}`,
  service: 'reviews',
  namespace: 'default',
  serviceAccount: 'reviews',
  labels: { version },
  inboundAddress: `127.0.0.1:${port}`,
  appPort: 9080,
  identity: 'spiffe://cluster.local/ns/default/sa/reviews',
});

const POLICY = `
    loadBalancer:
      simple: LEAST_CONN
      warmup: {duration: 30s, minimumPercent: 5, aggression: 1.5}
      localityLbSetting: {enabled: true}
    connectionPool:
      tcp: {maxConnections: 10, connectTimeout: 1s, tcpKeepalive: {time: 60s, interval: 10s, probes: 3}, maxConnectionDuration: 10m, idleTimeout: 2m}
      http: {http1MaxPendingRequests: 5, http2MaxRequests: 50, maxRequestsPerConnection: 20, maxRetries: 4, idleTimeout: 30s, h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 16, http2KeepAlive: {interval: 20s, timeout: 2s}}
    outlierDetection: {consecutive5xxErrors: 5, consecutiveGatewayErrors: 3, interval: 5s, baseEjectionTime: 30s, maxEjectionPercent: 50, minHealthPercent: 10, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2}
    retryBudget: {percent: {value: 30}, minRetryConcurrency: 2}`;

const YAML = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 8443, name: h2, protocol: HTTP2}]
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api}
spec:
  host: api.example.com
  trafficPolicy:${POLICY}
    portLevelSettings:
    - port: {number: 8443}
      loadBalancer: {simple: RANDOM}
      connectionPool: {http: {useClientProtocol: true, idleTimeout: 5s}}
      tls: {mode: SIMPLE, sni: api.example.com}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:${POLICY}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpCookie: {name: u, ttl: 60s, attributes: [{name: SameSite, value: Lax}]}}}
      connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-more}
spec:
  host: reviews
  subsets:
  - name: v2
    labels: {version: v2}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.com]
  http:
  - route: [{destination: {host: api.example.com, port: {number: 8443}}}]
`;

describe('every DestinationRule setting reaches the sidecar', () => {
  const snap = new Snapshot(1, parseConfigText(YAML, 'mesh.yaml'), [workload('v1', 15106), workload('v2', 15206)], OPTS);
  const clusters = new Map(snap.served(TypeUrl.Cluster, null).resources.map((r) => [r.name, decodeCluster(r.any)]));

  it('every cluster decodes', () => {
    expect([...clusters.keys()].sort()).toEqual(
      [
        'outbound|80||api.example.com',
        'outbound|8443||api.example.com',
        `outbound|80||${REVIEWS}`,
        `outbound|80|v1|${REVIEWS}`,
        `outbound|80|v2|${REVIEWS}`,
      ].sort(),
    );
  });

  it('and means what the rule said', () => {
    const top = clusters.get(`outbound|80||${REVIEWS}`)!;
    expect(top.lbPolicy).toBe('LEAST_REQUEST');
    expect(top.slowStart).toEqual({ windowMs: 30_000, aggression: 1.5, minWeightPercent: 5 });
    expect(top.connectTimeoutMs).toBe(1000);
    expect(top.limits).toEqual({ maxConnections: 10, maxPendingRequests: 5, maxRequests: 50, maxRetries: 4, retryBudget: { percent: 30, minConcurrency: 2 } });
    expect(top.connection).toEqual({
      idleTimeoutMs: 30_000,
      maxRequestsPerConnection: 20,
      maxConnectionDurationMs: 600_000,
      maxConcurrentStreams: 16,
      h2Keepalive: { intervalMs: 20_000, timeoutMs: 2000 },
      tcpKeepalive: { timeMs: 60_000, intervalMs: 10_000, probes: 3 },
    });
    expect(top.upstreamProtocol).toBe('http2');
    // UPGRADE: the hop between sidecars offers h2 alone; DO_NOT_UPGRADE (subset v1) offers
    // http/1.1 beside it, so an HTTP/1.1 caller's request crosses as HTTP/1.1
    expect(top.tls).toMatchObject({ kind: 'mesh', alpn: ['h2'] });
    const v1 = clusters.get(`outbound|80|v1|${REVIEWS}`)!;
    expect(v1.upstreamProtocol).toBe('http1');
    expect(v1.tls).toMatchObject({ kind: 'mesh', alpn: ['h2', 'http/1.1'] });
    expect(top.outlier).toEqual({
      consecutive5xx: 5,
      consecutiveGatewayFailure: 3,
      intervalMs: 5000,
      baseEjectionMs: 30_000,
      maxEjectionPercent: 50,
      splitLocalOrigin: true,
      consecutiveLocalOriginFailure: 2,
    });
    expect(top.panicThresholdPercent).toBe(10);
  });

  it("a subset's settings replace the rule's; a second rule's subset has the rule's", () => {
    const v1 = clusters.get(`outbound|80|v1|${REVIEWS}`)!;
    expect(v1.lbPolicy).toBe('RING_HASH');
    expect(v1.slowStart).toBeUndefined();
    expect(v1.upstreamProtocol).toBe('http1');
    expect(v1.limits).toEqual({ retryBudget: { percent: 30, minConcurrency: 2 } });
    expect(v1.outlier?.splitLocalOrigin).toBe(true);
    expect(clusters.get(`outbound|80|v2|${REVIEWS}`)!.lbPolicy).toBe('LEAST_REQUEST');
  });

  it("a port's settings replace the rule's whole", () => {
    const h2 = clusters.get('outbound|8443||api.example.com')!;
    expect(h2.lbPolicy).toBe('RANDOM');
    expect(h2.upstreamProtocol).toBe('downstream');
    expect(h2.connection).toEqual({ idleTimeoutMs: 5000 });
    expect(h2.tls).toMatchObject({ kind: 'origination', sni: 'api.example.com' });
    expect(h2.outlier).toBeUndefined();
    expect(clusters.get('outbound|80||api.example.com')!.lbPolicy).toBe('LEAST_REQUEST');
  });

  it('routes decode, hashing on the cookie with its attributes', () => {
    const rc = decodeRouteConfig(snap.served(TypeUrl.RouteConfiguration, null).resources[0].any);
    const vh = rc.virtualHosts.find((v) => v.name === REVIEWS)!;
    expect(vh.routes[1].hashPolicies).toEqual([{ kind: 'cookie', name: 'u', ttlMs: 60_000, attributes: [{ name: 'SameSite', value: 'Lax' }], terminal: false }]);
  });
});
