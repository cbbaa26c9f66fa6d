// How a cluster finds its endpoints: EDS, STATIC, STRICT_DNS and LOGICAL_DNS (host
// names inline, resolved by the sidecar itself) and ORIGINAL_DST (the request names its
// destination). Also the endpoint lists these share with EDS's ClusterLoadAssignment.
import { isIP } from 'node:net';
import { fromStruct } from '../struct';
import { DecodeError } from './decode-error';
import type { DiscoveryModel, DnsLookupFamily, EndpointModel } from './model';

interface Duration {
  seconds?: number;
  nanos?: number;
}
interface SocketAddressPb {
  address?: string;
  port_value?: number;
  [other: string]: unknown;
}
interface LbEndpointPb {
  endpoint?: { address?: { socket_address?: SocketAddressPb; [other: string]: unknown }; [other: string]: unknown };
  health_status?: string;
  metadata?: { filter_metadata?: Record<string, unknown> };
  load_balancing_weight?: { value?: number };
  [other: string]: unknown;
}
interface LocalityLbEndpointsPb {
  lb_endpoints?: LbEndpointPb[];
  priority?: number;
  [other: string]: unknown;
}
export interface LoadAssignmentPb {
  cluster_name?: string;
  endpoints?: LocalityLbEndpointsPb[];
  [other: string]: unknown;
}
export interface ClusterDiscoveryPb {
  type?: string;
  cluster_type?: unknown;
  lb_policy?: string;
  eds_cluster_config?: { service_name?: string; [other: string]: unknown };
  load_assignment?: LoadAssignmentPb;
  dns_refresh_rate?: Duration;
  dns_failure_refresh_rate?: { base_interval?: Duration; max_interval?: Duration };
  respect_dns_ttl?: boolean;
  dns_lookup_family?: string;
  original_dst_lb_config?: { use_http_header?: boolean; http_header_name?: string; upstream_port_override?: { value?: number }; metadata_key?: unknown };
  [other: string]: unknown;
}

const ms = (d: Duration | undefined): number | undefined => (d ? Number(d.seconds ?? 0) * 1000 + Math.round(Number(d.nanos ?? 0) / 1e6) : undefined);

/** Envoy's default dns_refresh_rate */
const ENVOY_DNS_REFRESH_MS = 5000;
const FAMILIES: readonly DnsLookupFamily[] = ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'];
// what the sidecar's resolver does not have: it asks the system's, as the application would
const DNS_RESOLVER_FIELDS = ['dns_resolvers', 'use_tcp_for_dns_lookups', 'dns_resolution_config', 'typed_dns_resolver_config', 'dns_jitter'];
const HOST_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?$/i;

function refuse(resource: string, o: object, names: string[], at = ''): void {
  for (const [k, v] of Object.entries(o)) {
    if (!names.includes(k) || v === undefined || v === false || (Array.isArray(v) && v.length === 0)) continue;
    throw new DecodeError(resource, at + k, 'not supported by this sidecar');
  }
}

/**
 * The endpoints of an assignment, one priority, localities flattened (the sidecar has no
 * locality of its own to prefer). `names`: host names are allowed (all but STATIC clusters).
 */
export function decodeLbEndpoints(cla: LoadAssignmentPb, resource: string, at: string, names: boolean): EndpointModel[] {
  const out: EndpointModel[] = [];
  (cla.endpoints ?? []).forEach((loc, i) => {
    if ((loc.priority ?? 0) !== 0) throw new DecodeError(resource, `${at}endpoints[${i}].priority`, 'priorities are not supported by this sidecar');
    (loc.lb_endpoints ?? []).forEach((lbe, j) => {
      const ep = `${at}endpoints[${i}].lb_endpoints[${j}]`;
      const sat = `${ep}.endpoint.address.socket_address`;
      const sa = lbe.endpoint?.address?.socket_address;
      if (!sa?.address) throw new DecodeError(resource, `${sat}.address`, 'must be set');
      if (!isIP(sa.address) && !(names && HOST_NAME.test(sa.address))) {
        throw new DecodeError(resource, `${sat}.address`, names ? 'must be an IP address or a host name' : 'must be an IP address (a STATIC cluster resolves no names)');
      }
      const port = Number(sa.port_value ?? 0);
      if (!(port > 0 && port < 65536)) throw new DecodeError(resource, `${sat}.port_value`, 'must be 1..65535');
      const weight = lbe.load_balancing_weight ? Number(lbe.load_balancing_weight.value ?? 0) : 1;
      if (!(weight >= 1)) throw new DecodeError(resource, `${ep}.load_balancing_weight`, 'must be at least 1');
      const meta = fromStruct(lbe.metadata?.filter_metadata?.tandem);
      const labels = meta.labels;
      const hs = lbe.health_status ?? 'UNKNOWN';
      if (meta.identity !== undefined && (typeof meta.identity !== 'string' || !meta.identity.startsWith('spiffe://'))) {
        throw new DecodeError(resource, `${ep}.metadata.filter_metadata.tandem.identity`, 'must be a spiffe:// URI');
      }
      out.push({
        address: sa.address,
        port,
        healthy: hs === 'UNKNOWN' || hs === 'HEALTHY',
        labels: labels && typeof labels === 'object' ? Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)])) : {},
        ...(typeof meta.identity === 'string' ? { identity: meta.identity } : {}),
        ...(weight !== 1 ? { weight } : {}),
      });
    });
  });
  return out;
}

function inline(c: ClusterDiscoveryPb, name: string, names: boolean): EndpointModel[] {
  const la = c.load_assignment ?? {};
  if (la.cluster_name && la.cluster_name !== name) throw new DecodeError(name, 'load_assignment.cluster_name', 'must equal the cluster name');
  return decodeLbEndpoints(la, name, 'load_assignment.', names);
}

/** The cluster's discovery type; the caller checks lb_policy (CLUSTER_PROVIDED goes with ORIGINAL_DST only). */
export function decodeDiscovery(c: ClusterDiscoveryPb, name: string): DiscoveryModel {
  if (c.cluster_type !== undefined) throw new DecodeError(name, 'cluster_type', 'custom cluster types are not supported by this sidecar');
  const type = c.type ?? 'STATIC';
  const provided = c.lb_policy === 'CLUSTER_PROVIDED';
  if (provided !== (type === 'ORIGINAL_DST')) throw new DecodeError(name, 'lb_policy', 'CLUSTER_PROVIDED goes with type ORIGINAL_DST, and only with it');
  if (type !== 'EDS' && c.eds_cluster_config) throw new DecodeError(name, 'eds_cluster_config', `not used by a ${type} cluster`);
  if (type !== 'STRICT_DNS' && type !== 'LOGICAL_DNS') refuse(name, c, ['dns_refresh_rate', 'dns_failure_refresh_rate', 'respect_dns_ttl', 'dns_lookup_family', ...DNS_RESOLVER_FIELDS]);
  if (type !== 'ORIGINAL_DST' && c.original_dst_lb_config) throw new DecodeError(name, 'original_dst_lb_config', `not used by a ${type} cluster`);
  switch (type) {
    case 'EDS': {
      if (c.load_assignment) throw new DecodeError(name, 'load_assignment', 'an EDS cluster gets its endpoints by EDS');
      const service = c.eds_cluster_config?.service_name;
      if (service && service !== name) throw new DecodeError(name, 'eds_cluster_config.service_name', 'must equal the cluster name');
      return { kind: 'eds' };
    }
    case 'STATIC':
      return { kind: 'static', endpoints: inline(c, name, false) };
    case 'STRICT_DNS':
    case 'LOGICAL_DNS': {
      refuse(name, c, DNS_RESOLVER_FIELDS);
      const endpoints = inline(c, name, true);
      if (type === 'LOGICAL_DNS' && endpoints.length !== 1) throw new DecodeError(name, 'load_assignment', 'a LOGICAL_DNS cluster has exactly one endpoint');
      const family = (c.dns_lookup_family ?? 'AUTO') as DnsLookupFamily;
      if (!FAMILIES.includes(family)) throw new DecodeError(name, 'dns_lookup_family', `${family} is not supported`);
      const refreshMs = ms(c.dns_refresh_rate) ?? ENVOY_DNS_REFRESH_MS;
      if (refreshMs < 1) throw new DecodeError(name, 'dns_refresh_rate', 'must be at least 1ms');
      const failure = ms(c.dns_failure_refresh_rate?.base_interval);
      return {
        kind: 'dns',
        logical: type === 'LOGICAL_DNS',
        endpoints,
        refreshMs,
        // Envoy: failures retry at the refresh rate unless told otherwise
        failureRefreshMs: failure || refreshMs,
        respectTtl: c.respect_dns_ttl === true,
        family,
      };
    }
    case 'ORIGINAL_DST': {
      if (c.load_assignment) throw new DecodeError(name, 'load_assignment', 'an ORIGINAL_DST cluster takes its destination from the request');
      const o = c.original_dst_lb_config ?? {};
      // there is no captured destination address: the request must name it
      if (o.use_http_header !== true) throw new DecodeError(name, 'original_dst_lb_config.use_http_header', 'must be true: this sidecar captures no destination address');
      if (o.metadata_key !== undefined) throw new DecodeError(name, 'original_dst_lb_config.metadata_key', 'not supported by this sidecar');
      const port = o.upstream_port_override ? Number(o.upstream_port_override.value ?? 0) : undefined;
      if (port !== undefined && !(port > 0 && port < 65536)) throw new DecodeError(name, 'original_dst_lb_config.upstream_port_override', 'must be 1..65535');
      return { kind: 'originalDst', header: (o.http_header_name || 'x-envoy-original-dst-host').toLowerCase(), ...(port ? { portOverride: port } : {}) };
    }
    default:
      throw new DecodeError(name, 'type', `${type} is not supported`);
  }
}
