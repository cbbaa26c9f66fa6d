// How a cluster finds its endpoints, in Envoy's terms, from its ServiceEntry's
// resolution (as Istio's cluster builder does): mesh services and STATIC entries by EDS,
// DNS by STRICT_DNS, DNS_ROUND_ROBIN by LOGICAL_DNS (both with the host names inline),
// NONE by ORIGINAL_DST.
import type { ClusterSpec } from './translate-cluster';
import { duration } from './translate-route';

type Obj = Record<string, unknown>;

/** Istio's default meshConfig.dnsRefreshRate; a record's shorter TTL is respected. */
export const DNS_REFRESH_MS = 60_000;

/** Whether the cluster's endpoints are served by EDS (else they travel inside the Cluster). */
export function servedByEds(c: ClusterSpec): boolean {
  const r = c.service.entry?.resolution;
  return c.service.mesh || r === undefined || r === 'STATIC';
}

export function discovery(c: ClusterSpec, endpoints: Obj | undefined): Obj {
  const entry = c.service.mesh ? undefined : c.service.entry;
  if (entry?.resolution === 'NONE') {
    const targetPort = entry.ports.find((p) => p.number === c.port)?.targetPort;
    return {
      type: 'ORIGINAL_DST',
      lb_policy: 'CLUSTER_PROVIDED',
      // No destination address was captured (the application names the service in the Host
      // header), so the original destination is the request's authority, the host name
      // resolved per connection; the port is the service port, or targetPort, as Istio's
      // PassthroughTargetPorts.
      original_dst_lb_config: { use_http_header: true, http_header_name: ':authority', upstream_port_override: { value: targetPort ?? c.port } },
    };
  }
  if (entry?.resolution === 'DNS' || entry?.resolution === 'DNS_ROUND_ROBIN') {
    const assignment = endpoints ?? { cluster_name: c.name, endpoints: [] };
    // Envoy's LOGICAL_DNS takes exactly one endpoint: a subset that matches none is an empty STRICT_DNS cluster
    const count = ((assignment.endpoints as { lb_endpoints?: unknown[] }[]) ?? []).reduce((n, l) => n + (l.lb_endpoints?.length ?? 0), 0);
    return {
      type: entry.resolution === 'DNS_ROUND_ROBIN' && count === 1 ? 'LOGICAL_DNS' : 'STRICT_DNS',
      load_assignment: assignment,
      dns_refresh_rate: duration(DNS_REFRESH_MS),
      respect_dns_ttl: true,
      // IPv4 when the name has it (loopback and most meshes), else IPv6
      dns_lookup_family: 'V4_PREFERRED',
    };
  }
  return { type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: c.name } };
}
