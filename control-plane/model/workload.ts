// A sidecar as the control plane knows it: what its Node announced, plus the SPIFFE ID
// of the certificate that registered it (the identity peers must see on its port).
import { endpointProblem } from '../../common/addr';
import type { WorkloadInfo } from '../../proto/node-meta';
import { DNS_LABEL } from '../config/common';

export interface Workload extends WorkloadInfo {
  /** spiffe://… of the registering certificate; '' for a stream that did not register */
  identity: string;
}

/**
 * Why a workload cannot become an endpoint, naming the Node metadata field, or undefined:
 * a bad address pushed to the mesh would make every peer NACK its service's endpoints.
 */
export function validateWorkload(w: WorkloadInfo): string | undefined {
  if (!DNS_LABEL.test(w.service) || w.service.length > 63) return `metadata.SERVICE ${JSON.stringify(w.service)} is not a DNS label`;
  if (!DNS_LABEL.test(w.namespace) || w.namespace.length > 63) return `metadata.NAMESPACE ${JSON.stringify(w.namespace)} is not a DNS label`;
  const address = endpointProblem(w.inboundAddress);
  if (address) return `metadata.INBOUND_ADDRESS ${address}`;
  if (Object.keys(w.labels).length > 64) return 'metadata.LABELS: more than 64 labels';
  for (const [k, v] of Object.entries(w.labels)) if (k.length > 317 || v.length > 63) return `metadata.LABELS: label ${JSON.stringify(k)} is too long`;
  return undefined;
}
