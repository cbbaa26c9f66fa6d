// A sidecar as the control plane knows it: what its Node announced, plus the SPIFFE ID
// of the certificate that registered it (the identity peers must see on its port).
import { isIP } from 'node:net';
import type { WorkloadInfo } from '../../proto/node-meta';
import { DNS_LABEL } from '../config/common';

export interface Workload extends WorkloadInfo {
  /** spiffe://… of the registering certificate; '' for a stream that did not register */
  identity: string;
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i;

/** Why a workload cannot become an endpoint, or undefined: a bad address would make every peer NACK its service. */
export function validateWorkload(w: WorkloadInfo): string | undefined {
  if (!DNS_LABEL.test(w.service) || w.service.length > 63) return `service ${JSON.stringify(w.service)} is not a DNS label`;
  if (!DNS_LABEL.test(w.namespace) || w.namespace.length > 63) return `namespace ${JSON.stringify(w.namespace)} is not a DNS label`;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(w.inboundAddress);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || !(port >= 1 && port <= 65535)) return `inbound address ${JSON.stringify(w.inboundAddress)} is not HOST:PORT`;
  if (m[1] !== undefined ? isIP(host) !== 6 : !(isIP(host) === 4 || HOSTNAME.test(host))) return `inbound address ${JSON.stringify(w.inboundAddress)} has a bad host`;
  if (Object.keys(w.labels).length > 64) return 'more than 64 labels';
  for (const [k, v] of Object.entries(w.labels)) if (k.length > 317 || v.length > 63) return `label ${JSON.stringify(k)} is too long`;
  return undefined;
}
