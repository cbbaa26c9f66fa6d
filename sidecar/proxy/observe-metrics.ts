// Istio's request metrics, recorded once a request is over (serve.ts calls the observer
// where it writes the access log). The labels that depend only on who is at each end
// are computed once per (cluster, endpoint) outbound and per (peer metadata, principal,
// mTLS) inbound and kept; per request only the outcome's few labels are added.
import type { ConnectionInfo, DownstreamRequest } from './downstream';
import type { Exchange } from './exchange';
import type { RequestInfo } from './request-info';
import type { Endpoint } from '../runtime/config';
import type { ProxyError } from './errors';
import { FaultAbortError } from './errors';
import { grpcStatusForHttp } from './local-reply';
import { first, isGrpcContentType } from './headers';
import { decodePeerMetadata, PEER_METADATA, UNKNOWN_WORKLOAD, type WorkloadMeta } from './peer-metadata';
import type { RequestLabels, SidecarMetrics, TcpLabels } from '../metrics';

/** What serve.ts knows when a request is over. */
export interface Observation {
  direction: 'inbound' | 'outbound';
  req: DownstreamRequest;
  info: RequestInfo | undefined;
  conn: ConnectionInfo;
  x: Exchange | undefined;
  status: number;
  /** Envoy response flags, comma-separated; '-' for none */
  flags: string;
  bytesSent: number;
  durationMs: number;
  /** the gRPC status the response carried (headers or trailers), when it did */
  grpcStatus?: string;
  /** the proxy's own answer, when it gave one */
  error?: ProxyError;
}

export type Observer = (o: Observation) => void;

/** This sidecar: the source of what it sends out, the destination of what comes in. */
export interface Self extends WorkloadMeta {
  service: string;
  principal: () => string | undefined;
}

/** Istio's default cluster ID: Tandem has one mesh, named as Istio names a single cluster. */
const CLUSTER_ID = 'Kubernetes';

type Ends = Omit<RequestLabels, 'response_code' | 'grpc_response_status' | 'response_flags' | 'request_protocol'>;

function sourceLabels(m: WorkloadMeta, principal: string): Pick<Ends, `source_${string}` & keyof Ends> {
  return {
    source_workload: m.workload,
    source_workload_namespace: m.namespace,
    source_principal: principal,
    source_app: m.app,
    source_version: m.version,
    source_cluster: m.workload === 'unknown' ? 'unknown' : CLUSTER_ID,
    source_canonical_service: m.app,
    source_canonical_revision: m.version === 'unknown' ? 'latest' : m.version,
  };
}

/** `reviews.default.svc.cluster.local` → name reviews, namespace default; other hosts are their own name. */
export function serviceParts(host: string): { name: string; namespace: string } {
  const m = /^([^.]+)\.([^.]+)\.svc(\.|$)/.exec(host);
  return m ? { name: m[1], namespace: m[2] } : { name: host, namespace: 'unknown' };
}

/** The host a cluster named Istio's way (`outbound|80|v1|reviews.default.svc.cluster.local`) sends to. */
export function clusterHost(cluster: string): string {
  const parts = cluster.split('|');
  return parts.length === 4 ? parts[3] : cluster;
}

function destinationLabels(service: string, m: WorkloadMeta, principal: string, known: boolean): Pick<Ends, `destination_${string}` & keyof Ends> {
  const { name, namespace } = serviceParts(service);
  return {
    destination_workload: m.workload,
    destination_workload_namespace: m.namespace,
    destination_principal: principal,
    destination_app: m.app,
    destination_version: m.version,
    destination_service: service,
    destination_service_name: name,
    destination_service_namespace: namespace,
    destination_cluster: known ? CLUSTER_ID : 'unknown',
    destination_canonical_service: m.app,
    destination_canonical_revision: m.version === 'unknown' ? 'latest' : m.version,
  };
}

/** The workload behind an outbound endpoint: its service's name and the version it registered with. */
export function endpointWorkload(service: string, ep: Endpoint | undefined, mesh: boolean): WorkloadMeta {
  if (!ep || !mesh) return UNKNOWN_WORKLOAD;
  const { name, namespace } = serviceParts(service);
  const version = ep.labels.version;
  return { workload: version ? `${name}-${version}` : name, namespace, app: ep.labels.app ?? name, version: version ?? 'unknown' };
}

/** The labels that do not depend on the outcome, outbound: we are the source, the endpoint the destination. */
export function outboundEnds(self: Self, x: Exchange | undefined, authority: string | undefined): Ends {
  const cluster = x?.cluster;
  // no cluster (404 NR, or the route's cluster unknown): the host asked for, as Istio's BlackHole does
  const service = cluster ? clusterHost(cluster.model.name) : x?.facts.cluster ? clusterHost(x.facts.cluster) : (authority ?? 'unknown').replace(/:\d+$/, '') || 'unknown';
  const mesh = !!cluster?.model.mesh;
  const ep = x?.endpoint;
  return {
    reporter: 'source',
    ...sourceLabels(self, self.principal() ?? 'unknown'),
    ...destinationLabels(service, endpointWorkload(service, ep, mesh), (mesh && ep?.identity) || 'unknown', mesh && !!ep),
    // Istio's client side reports unknown: only the server side knows how it was reached
    connection_security_policy: 'unknown',
  };
}

/** Inbound: the caller (from its certificate and the peer metadata it sent) is the source, we are the destination. */
export function inboundEnds(self: Self, conn: ConnectionInfo, peerHeader: string | undefined): Ends {
  const peer = conn.mtls ? decodePeerMetadata(peerHeader) : UNKNOWN_WORKLOAD;
  return {
    reporter: 'destination',
    ...sourceLabels(peer, conn.peerPrincipal ?? 'unknown'),
    ...destinationLabels(`${self.service}.${self.namespace}.svc.cluster.local`, self, self.principal() ?? 'unknown', true),
    connection_security_policy: conn.mtls ? 'mutual_tls' : 'none',
  };
}

function grpcStatusOf(o: Observation, grpc: boolean): string {
  if (!grpc) return '';
  if (o.grpcStatus !== undefined) return o.grpcStatus;
  if (o.error) return String(o.error instanceof FaultAbortError && o.error.grpcStatus !== undefined ? o.error.grpcStatus : grpcStatusForHttp(o.error.status));
  return '';
}

/** The observer that records Istio's request metrics, plus the tandem_ retry and timeout counts. */
export function metricsObserver(m: SidecarMetrics, self: Self): Observer {
  const cache = new Map<string, Ends>();
  const CACHE_MAX = 4096;
  const ends = (key: string, make: () => Ends): Ends => {
    let e = cache.get(key);
    if (!e) {
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(key, (e = make()));
    }
    return e;
  };
  return (o) => {
    let baseKey: string;
    let base: () => Ends;
    if (o.direction === 'outbound') {
      const x = o.x;
      // keyed by what decides them; the principal is read at build time, and a rotation keeps the SPIFFE ID
      baseKey = `o|${x?.cluster?.model.name ?? x?.facts.cluster ?? o.info?.authority ?? ''}|${x?.endpoint ? `${x.facts.host}|${x.endpoint.labels.version ?? ''}|${x.endpoint.identity ?? ''}` : ''}`;
      base = () => ends(baseKey, () => outboundEnds(self, x, o.info?.authority));
    } else {
      const peer = first(o.req.headers[PEER_METADATA]);
      baseKey = `i|${o.conn.mtls ? 1 : 0}|${o.conn.peerPrincipal ?? ''}|${peer ?? ''}`;
      base = () => ends(baseKey, () => inboundEnds(self, o.conn, peer));
    }
    const grpc = !!o.info && isGrpcContentType(o.info.header('content-type'));
    const grpcStatus = grpcStatusOf(o, grpc);
    const received = o.x?.body?.received ?? (Number(o.info?.header('content-length') ?? 0) || 0);
    // the key names the whole label set: the ends' key and every per-request label
    const key = `${baseKey}|${grpc ? 'g' : 'h'}|${o.status}|${grpcStatus}|${o.flags}`;
    m.requestSeries.record(
      key,
      (): RequestLabels => ({
        ...base(),
        request_protocol: grpc ? 'grpc' : 'http',
        response_code: String(o.status),
        grpc_response_status: grpcStatus,
        response_flags: o.flags,
      }),
      o.durationMs,
      received,
      o.bytesSent,
    );
    const cluster = o.x?.facts.cluster;
    if (o.direction === 'outbound' && cluster) {
      if (o.x!.facts.attempts > 1) m.retries.inc({ cluster }, o.x!.facts.attempts - 1);
      if (o.error?.flag === 'UT') m.timeouts.inc({ cluster });
    }
  };
}

/** Labels of a downstream connection: the listener's side of it, the other end as far as a connection tells. */
export function connectionLabels(self: Self, direction: 'inbound' | 'outbound', conn: ConnectionInfo): TcpLabels {
  if (direction === 'inbound') {
    const e = inboundEnds(self, conn, undefined);
    // the caller's namespace is in its SPIFFE ID even before any request says who it is
    const ns = /\/ns\/([^/]+)\//.exec(conn.peerPrincipal ?? '')?.[1];
    return { ...e, ...(ns ? { source_workload_namespace: ns } : {}), request_protocol: 'tcp', response_flags: '-' };
  }
  // one connection from the application carries requests to any service: the destination is unknown
  const e = outboundEnds(self, undefined, 'unknown');
  return { ...e, destination_service_name: 'unknown', request_protocol: 'tcp', response_flags: '-' };
}
