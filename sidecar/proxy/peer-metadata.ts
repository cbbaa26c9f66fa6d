// Who the workload at the other end is, for metrics' source_* labels: like Istio's
// metadata exchange (x-envoy-peer-metadata), the outbound sidecar tells the peer
// sidecar its workload, namespace, app and version in a header; the inbound side reads
// it (only over verified mTLS: a plaintext caller could claim anything) and strips it
// before the application sees it. A request to something outside the mesh never
// carries it, whatever the application sent.
import type { Layer } from './exchange';

export const PEER_METADATA = 'x-tandem-peer-metadata';

export interface WorkloadMeta {
  workload: string;
  namespace: string;
  app: string;
  version: string;
}

export const UNKNOWN_WORKLOAD: WorkloadMeta = { workload: 'unknown', namespace: 'unknown', app: 'unknown', version: 'unknown' };

/** The workload a sidecar belongs to, Istio style: `reviews-v2` for service reviews with version=v2. */
export function ownWorkload(service: string, namespace: string, labels: Record<string, string>): WorkloadMeta {
  const version = labels.version;
  return { workload: version ? `${service}-${version}` : service, namespace, app: labels.app ?? service, version: version ?? 'unknown' };
}

export function encodePeerMetadata(m: WorkloadMeta): string {
  return Buffer.from(JSON.stringify({ w: m.workload, n: m.namespace, a: m.app, v: m.version })).toString('base64url');
}

const NAME = /^[A-Za-z0-9._-]{1,253}$/;
const parsed = new Map<string, WorkloadMeta>();
const CACHE_MAX = 1000;

/** The peer's metadata; UNKNOWN_WORKLOAD for anything absent or malformed (label values stay bounded names). */
export function decodePeerMetadata(v: string | undefined): WorkloadMeta {
  if (!v) return UNKNOWN_WORKLOAD;
  const hit = parsed.get(v);
  if (hit) return hit;
  let m: WorkloadMeta = UNKNOWN_WORKLOAD;
  try {
    const o = JSON.parse(Buffer.from(v, 'base64url').toString('utf8')) as Record<string, unknown>;
    const name = (x: unknown) => (typeof x === 'string' && NAME.test(x) ? x : 'unknown');
    m = { workload: name(o.w), namespace: name(o.n), app: name(o.a), version: name(o.v) };
  } catch {
    // not ours: unknown, as Istio reports a peer without metadata
  }
  if (parsed.size >= CACHE_MAX) parsed.clear();
  parsed.set(v, m);
  return m;
}

/** Outbound: mesh peers are told who calls; anything else gets no such header. */
export function announcePeerLayer(own: WorkloadMeta): Layer {
  const value = encodePeerMetadata(own);
  return (next) => (x) => {
    if (x.cluster?.model.mesh) x.request.headers[PEER_METADATA] = value;
    else delete x.request.headers[PEER_METADATA];
    return next(x);
  };
}

/** Inbound: the application never sees the header (metrics read it off the downstream request). */
export const stripPeerLayer: Layer = (next) => (x) => {
  delete x.request.headers[PEER_METADATA];
  return next(x);
};
