// Who a stream's node says it is, checked against the certificate it connected with, and
// (where the port's StreamPolicy registers) made an endpoint of its service. Shared by
// both protocols: a Delta stream registers exactly as a State-of-the-World one does.
import * as grpc from '@grpc/grpc-js';
import type { XdsNode } from '../../proto/ads';
import { workloadFromNode } from '../../proto/node-meta';
import { CallRefused, type PeerIdentity } from '../identity/peer';
import { validateWorkload } from '../model/workload';
import type { SnapshotCache } from './cache';
import type { StreamInfo } from './stream-state';

/** What one listening port demands of its clients. */
export interface StreamPolicy {
  /** the verified caller (undefined where the port serves anyone); throws CallRefused */
  authenticate(call: grpc.ServerDuplexStream<unknown, unknown>): PeerIdentity | undefined;
  /** whether a sidecar on this port becomes an endpoint of its service */
  register: boolean;
}

/** Takes the node of a stream's first request; throws CallRefused when it claims what its certificate does not allow. */
export function identify(cache: SnapshotCache, info: StreamInfo, node: XdsNode, policy: StreamPolicy): void {
  info.node = node;
  const w = workloadFromNode(node);
  if (!w) return; // a proxyless gRPC client: config only
  const p = info.peer;
  if (!policy.register || !p) {
    info.workload = { ...w, identity: '' };
    return;
  }
  if (w.namespace !== p.namespace || w.serviceAccount !== p.serviceAccount) {
    throw new CallRefused(
      grpc.status.PERMISSION_DENIED,
      'IDENTITY_MISMATCH',
      `node ${node.id} claims namespace ${w.namespace} service account ${w.serviceAccount}, but its certificate is ${p.spiffeId}`,
    );
  }
  if (!p.services.includes(w.service)) {
    throw new CallRefused(
      grpc.status.PERMISSION_DENIED,
      'SERVICE_NOT_ALLOWED',
      `node ${node.id} claims service ${w.service}, which the bootstrap token behind ${p.spiffeId} does not allow (allowed: ${p.services.join(', ') || 'none'})`,
    );
  }
  const problem = validateWorkload(w);
  if (problem) throw new CallRefused(grpc.status.INVALID_ARGUMENT, 'BAD_NODE', `node ${node.id}: ${problem}`);
  info.workload = { ...w, identity: p.spiffeId };
  info.registered = true;
  cache.addWorkload(info.key, info.workload);
}
