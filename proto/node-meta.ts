// What a sidecar announces about itself in its xDS Node, and how the control plane
// reads it back. Keys follow Istio's node metadata where Istio has one.
import type { XdsNode } from './ads';
import { fromStruct, toStruct } from './struct';

export interface WorkloadInfo {
  id: string;
  service: string;
  namespace: string;
  serviceAccount: string;
  labels: Record<string, string>;
  /** host:port other sidecars reach this workload's inbound listener on */
  inboundAddress: string;
  /** the port of the application behind the sidecar (Istio's workload port, for portLevelMtls) */
  appPort?: number;
  /** host:port of the sidecar's admin (/metrics), for `tandem stat`; a wildcard bind is announced as loopback */
  adminAddress?: string;
}

export function nodeFromWorkload(w: WorkloadInfo, userAgent = 'tandem-sidecar'): XdsNode {
  return {
    id: w.id,
    cluster: w.service,
    user_agent_name: userAgent,
    metadata: toStruct({
      SERVICE: w.service,
      NAMESPACE: w.namespace,
      SERVICE_ACCOUNT: w.serviceAccount,
      LABELS: w.labels,
      INBOUND_ADDRESS: w.inboundAddress,
      ...(w.appPort ? { APP_PORT: w.appPort } : {}),
      ...(w.adminAddress ? { ADMIN_ADDRESS: w.adminAddress } : {}),
    }),
  };
}

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** The workload a Node describes, or undefined for a client that is not a sidecar (proxyless gRPC). */
export function workloadFromNode(node: XdsNode | undefined): WorkloadInfo | undefined {
  if (!node) return undefined;
  const m = fromStruct(node.metadata);
  if (typeof m.SERVICE !== 'string' || typeof m.INBOUND_ADDRESS !== 'string') return undefined;
  const labels: Record<string, string> = {};
  if (m.LABELS && typeof m.LABELS === 'object' && !Array.isArray(m.LABELS)) {
    for (const [k, v] of Object.entries(m.LABELS)) if (typeof v === 'string') labels[k] = v;
  }
  const namespace = typeof m.NAMESPACE === 'string' ? m.NAMESPACE : 'default';
  return {
    id: node.id ?? '',
    service: m.SERVICE,
    namespace,
    serviceAccount: typeof m.SERVICE_ACCOUNT === 'string' ? m.SERVICE_ACCOUNT : m.SERVICE,
    labels,
    inboundAddress: m.INBOUND_ADDRESS,
    ...(typeof m.APP_PORT === 'number' && Number.isInteger(m.APP_PORT) ? { appPort: m.APP_PORT } : {}),
    // only a host:port is kept: it is shown in /debug/syncz and scraped by `tandem stat`
    ...(typeof m.ADMIN_ADDRESS === 'string' && HOST_PORT.test(m.ADMIN_ADDRESS) ? { adminAddress: m.ADMIN_ADDRESS } : {}),
  };
}

/**
 * A sidecar's last request as it drains: its Node again, marked as leaving. A stream's end alone
 * cannot tell a drain from a broken connection (grpc-js ends the call the same way for both), and
 * the control plane keeps a sidecar whose stream broke as an endpoint for a grace, for it to
 * come back; one that says goodbye leaves EDS at once.
 */
export function leavingNode(node: XdsNode): XdsNode {
  return { ...node, metadata: toStruct({ ...fromStruct(node.metadata), TANDEM_LEAVING: true }) };
}

export function isLeaving(node: XdsNode | undefined): boolean {
  return !!node && fromStruct(node.metadata).TANDEM_LEAVING === true;
}

/**
 * What a Tandem sidecar speaking Delta xDS declares in `node.client_features`: it takes its
 * outbound routes split, a RouteConfiguration with `vhds` and each virtual host a VirtualHost
 * resource of its own (`outbound/<host>`), so that a route edit sends one small resource, not
 * the whole table. A client that does not declare it gets the whole table.
 */
export const VHDS_FEATURE = 'tandem.io/vhds';

export function declaresVhds(node: XdsNode | undefined): boolean {
  return !!node?.client_features?.includes(VHDS_FEATURE);
}

/** The node with the VHDS feature declared (once). */
export function withVhds(node: XdsNode): XdsNode {
  return declaresVhds(node) ? node : { ...node, client_features: [...(node.client_features ?? []), VHDS_FEATURE] };
}
