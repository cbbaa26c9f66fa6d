import { describe, expect, it } from 'vitest';
import { clusterHost, connectionLabels, endpointWorkload, inboundEnds, metricsObserver, outboundEnds, serviceParts, type Self } from './observe-metrics';
import { decodePeerMetadata, encodePeerMetadata, ownWorkload, UNKNOWN_WORKLOAD } from './peer-metadata';
import { SidecarMetrics } from '../metrics';
import type { Exchange } from './exchange';
import type { Endpoint } from '../runtime/config';

const self: Self = { ...ownWorkload('productpage', 'default', { version: 'v1' }), service: 'productpage', principal: () => 'spiffe://cluster.local/ns/default/sa/productpage' };
const ep = { address: '10.0.0.2', port: 15006, labels: { version: 'v2' }, identity: 'spiffe://cluster.local/ns/default/sa/reviews' } as unknown as Endpoint;
const exchangeTo = (cluster: string, mesh: boolean, endpoint?: Endpoint) =>
  ({ cluster: { model: { name: cluster, mesh } }, endpoint, facts: { cluster, host: endpoint ? '10.0.0.2:15006' : null, attempts: 1, flags: [], route: null } }) as unknown as Exchange;

describe('metric labels', () => {
  it('names services and workloads as Istio does', () => {
    expect(clusterHost('outbound|9080|v2|reviews.default.svc.cluster.local')).toBe('reviews.default.svc.cluster.local');
    expect(serviceParts('reviews.bookinfo.svc.cluster.local')).toEqual({ name: 'reviews', namespace: 'bookinfo' });
    expect(serviceParts('api.example.com')).toEqual({ name: 'api.example.com', namespace: 'unknown' });
    expect(endpointWorkload('reviews.default.svc.cluster.local', ep, true)).toEqual({ workload: 'reviews-v2', namespace: 'default', app: 'reviews', version: 'v2' });
    expect(endpointWorkload('api.example.com', ep, false)).toBe(UNKNOWN_WORKLOAD);
  });

  it('outbound: reporter source, this workload the source, the endpoint the destination', () => {
    const e = outboundEnds(self, exchangeTo('outbound|9080|v2|reviews.default.svc.cluster.local', true, ep), 'reviews');
    expect(e).toMatchObject({
      reporter: 'source',
      source_workload: 'productpage-v1',
      source_principal: 'spiffe://cluster.local/ns/default/sa/productpage',
      source_version: 'v1',
      destination_service: 'reviews.default.svc.cluster.local',
      destination_service_name: 'reviews',
      destination_service_namespace: 'default',
      destination_workload: 'reviews-v2',
      destination_version: 'v2',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/reviews',
      connection_security_policy: 'unknown',
    });
    // no route: the host asked for, nothing known of a workload
    expect(outboundEnds(self, undefined, 'nowhere:8080')).toMatchObject({ destination_service: 'nowhere', destination_workload: 'unknown', destination_principal: 'unknown' });
  });

  it('inbound: reporter destination; the source from its certificate and the peer metadata, only over mTLS', () => {
    const header = encodePeerMetadata(self);
    const mtls = { mtls: true, peerPrincipal: 'spiffe://cluster.local/ns/default/sa/productpage' };
    const reviews: Self = { ...ownWorkload('reviews', 'default', { version: 'v2' }), service: 'reviews', principal: () => 'spiffe://cluster.local/ns/default/sa/reviews' };
    expect(inboundEnds(reviews, mtls, header)).toMatchObject({
      reporter: 'destination',
      source_workload: 'productpage-v1',
      source_version: 'v1',
      source_principal: mtls.peerPrincipal,
      destination_workload: 'reviews-v2',
      destination_service: 'reviews.default.svc.cluster.local',
      connection_security_policy: 'mutual_tls',
    });
    expect(inboundEnds(reviews, { mtls: false }, header)).toMatchObject({ source_workload: 'unknown', source_principal: 'unknown', connection_security_policy: 'none' });
    expect(connectionLabels(reviews, 'inbound', mtls)).toMatchObject({ source_workload_namespace: 'default', request_protocol: 'tcp', connection_security_policy: 'mutual_tls' });
  });

  it('peer metadata that is not well formed is unknown, never a free-form label value', () => {
    expect(decodePeerMetadata('not base64 json')).toBe(UNKNOWN_WORKLOAD);
    expect(decodePeerMetadata(Buffer.from(JSON.stringify({ w: 'a b/c', n: 'default', a: 'x', v: 'v1' })).toString('base64url'))).toMatchObject({ workload: 'unknown', namespace: 'default' });
  });

  it('records a request: counter, duration, sizes, flags and the gRPC status', async () => {
    const m = new SidecarMetrics();
    const observe = metricsObserver(m, self);
    const x = exchangeTo('outbound|9080|v2|reviews.default.svc.cluster.local', true, ep);
    const info = { authority: 'reviews', header: (n: string) => (n === 'content-type' ? 'application/grpc' : undefined) };
    for (let i = 0; i < 3; i++) {
      observe({ direction: 'outbound', req: { headers: {} } as never, info: info as never, conn: { mtls: false }, x, status: 200, flags: '-', bytesSent: 42, durationMs: 7, grpcStatus: '0' });
    }
    const text = await m.registry.metrics();
    expect(text).toContain('istio_requests_total{reporter="source"');
    expect(text).toMatch(/istio_requests_total\{[^}]*request_protocol="grpc",response_code="200",grpc_response_status="0",response_flags="-"[^}]*\} 3/);
    expect(text).toMatch(/istio_request_duration_milliseconds_bucket\{le="10",[^}]*\} 3/);
    expect(text).toMatch(/istio_request_duration_milliseconds_bucket\{le="5",[^}]*\} 0/);
    expect(text).toMatch(/istio_response_bytes_bucket\{le="100",[^}]*\} 3/);
  });
});
