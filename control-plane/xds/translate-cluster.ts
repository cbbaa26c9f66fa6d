// Services, DestinationRules and endpoints -> Envoy Cluster and ClusterLoadAssignment objects.
import type { MeshConfig, TrafficPolicy } from '../model/types';
import { clusterPolicy, type MergedDestinationRule } from '../model/destination-rules';
import type { Service } from '../model/services';
import type { Workload } from '../model/workload';
import { meshFqdn, portProtocol } from '../model/services';
import { transportSocket } from './translate-tls';
import { httpProtocolOptions, lbConfig, localOriginOutlier, retryBudget, upstreamConnectionOptions } from './translate-cluster-policy';
import { clusterName } from './names';
import { duration } from './translate-route';
import { toStruct } from '../../proto/struct';
import { discovery } from './translate-discovery';

type Obj = Record<string, unknown>;

export interface ClusterSpec {
  name: string;
  service: Service;
  port: number;
  /** '' for the whole service */
  subset: string;
  labels: Record<string, string>;
  policy?: TrafficPolicy;
}

/** Every cluster: one per service port in use, plus one per DestinationRule subset. */
export function clusterSpecs(config: MeshConfig, services: Map<string, Service>, referenced: Map<string, Set<number>>, ruleFor: (host: string) => MergedDestinationRule | undefined): ClusterSpec[] {
  const out = new Map<string, ClusterSpec>();
  const ports = portsByHost(config, services, referenced);
  for (const s of services.values()) {
    const dr = ruleFor(s.fqdn);
    for (const port of ports.get(s.fqdn) ?? [s.defaultPort]) {
      const base = clusterName(s.fqdn, port);
      out.set(base, { name: base, service: s, port, subset: '', labels: {}, policy: clusterPolicy(dr, port) });
      for (const sub of dr?.subsets ?? []) {
        const name = clusterName(s.fqdn, port, sub.name);
        out.set(name, { name, service: s, port, subset: sub.name, labels: sub.labels, policy: clusterPolicy(dr, port, sub.name) });
      }
    }
  }
  return [...out.values()];
}

// Routes may name a port other than the service's default: give each such port its clusters.
function portsByHost(config: MeshConfig, services: Map<string, Service>, referenced: Map<string, Set<number>>): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const s of services.values()) out.set(s.fqdn, new Set([s.defaultPort]));
  for (const se of config.serviceEntries) for (const h of se.hosts) for (const p of se.ports) out.get(h)?.add(p.number);
  for (const [host, ports] of referenced) for (const port of ports) out.get(host)?.add(port);
  return out;
}

/** `endpoints`: the cluster's assignment (translateEndpoints), inline where it is not served by EDS. */
export function translateCluster(c: ClusterSpec, endpoints?: Obj): Obj {
  const p = c.policy;
  const cluster: Obj = {
    name: c.name,
    connect_timeout: duration(p?.connectionPool?.tcp?.connectTimeoutMs ?? 10_000),
    lb_policy: lbPolicy(p),
    ...discovery(c, endpoints),
    ...lbConfig(p, lbPolicy(p)),
    metadata: {
      filter_metadata: {
        tandem: toStruct({ mesh: c.service.mesh, protocol: portProtocol(c.service, c.port) }),
      },
    },
  };
  const ts = transportSocket(c);
  if (ts) cluster.transport_socket = ts;
  const uco = upstreamConnectionOptions(p);
  if (uco) cluster.upstream_connection_options = uco;
  const hpo = httpProtocolOptions(c);
  if (hpo) cluster.typed_extension_protocol_options = hpo;
  const pool = p?.connectionPool;
  const budget = retryBudget(p);
  if (pool || budget) {
    const t: Obj = {};
    // as Istio: 0 means "not set" (no limit), not "allow nothing"
    const limit = (v: number | undefined) => (v !== undefined && v > 0 ? { value: v } : undefined);
    const thresholds = {
      max_connections: limit(pool?.tcp?.maxConnections),
      max_pending_requests: limit(pool?.http?.http1MaxPendingRequests),
      max_requests: limit(pool?.http?.http2MaxRequests),
      max_retries: limit(pool?.http?.maxRetries),
    };
    for (const [k, v] of Object.entries(thresholds)) if (v) t[k] = v;
    if (budget) t.retry_budget = budget;
    if (Object.keys(t).length) cluster.circuit_breakers = { thresholds: [t] };
  }
  const od = p?.outlierDetection;
  if (od) {
    const o: Obj = {};
    // as Istio: a threshold given is enforced (0 turns it off); success-rate ejection is off
    if (od.consecutive5xxErrors !== undefined) {
      o.consecutive_5xx = { value: od.consecutive5xxErrors };
      o.enforcing_consecutive_5xx = { value: od.consecutive5xxErrors > 0 ? 100 : 0 };
    }
    if (od.consecutiveGatewayErrors !== undefined) {
      o.consecutive_gateway_failure = { value: od.consecutiveGatewayErrors };
      o.enforcing_consecutive_gateway_failure = { value: od.consecutiveGatewayErrors > 0 ? 100 : 0 };
    }
    o.enforcing_success_rate = { value: 0 };
    // Istio: panic mode (all endpoints used when too few are healthy) only below minHealthPercent, default off
    cluster.common_lb_config = { healthy_panic_threshold: { value: od.minHealthPercent ?? 0 } };
    if (od.intervalMs !== undefined) o.interval = duration(od.intervalMs);
    if (od.baseEjectionTimeMs !== undefined) o.base_ejection_time = duration(od.baseEjectionTimeMs);
    if (od.maxEjectionPercent !== undefined) o.max_ejection_percent = { value: od.maxEjectionPercent };
    cluster.outlier_detection = { ...o, ...localOriginOutlier(od) };
  }
  return cluster;
}

function lbPolicy(p?: TrafficPolicy): string {
  if (p?.loadBalancer?.consistentHash) return p.loadBalancer.consistentHash.maglev ? 'MAGLEV' : 'RING_HASH';
  switch (p?.loadBalancer?.simple) {
    case 'LEAST_REQUEST':
      return 'LEAST_REQUEST';
    case 'RANDOM':
      return 'RANDOM';
    default:
      return 'ROUND_ROBIN';
  }
}

const matches = (labels: Record<string, string>, want: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => labels[k] === v);

export function translateEndpoints(c: ClusterSpec, config: MeshConfig, workloads: Workload[], domain: string): Obj {
  const eps: { address: string; port: number; labels: Record<string, string>; identity?: string; weight?: number; locality?: string }[] = [];
  if (c.service.mesh) {
    const seen = new Set<string>();
    for (const w of workloads) {
      if (meshFqdn(w.service, w.namespace, domain) !== c.service.fqdn || !matches(w.labels, c.labels)) continue;
      if (seen.has(w.inboundAddress)) continue;
      seen.add(w.inboundAddress);
      const i = w.inboundAddress.lastIndexOf(':');
      eps.push({ address: w.inboundAddress.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(w.inboundAddress.slice(i + 1)), labels: w.labels, identity: w.identity });
    }
  } else {
    // every entry for the host that resolves as the service's (its first entry) adds its endpoints
    for (const se of config.serviceEntries) {
      if (!se.hosts.includes(c.service.fqdn) || se.resolution !== c.service.entry?.resolution || se.resolution === 'NONE') continue;
      const sp = se.ports.find((p) => p.number === c.port);
      // as Istio: the endpoint's own port for the port's name, else targetPort, else the port
      const portOf = (e?: { ports?: Record<string, number> }) => (sp && e?.ports?.[sp.name]) || sp?.targetPort || c.port;
      if (se.endpoints.length === 0 && (se.resolution === 'DNS' || se.resolution === 'DNS_ROUND_ROBIN')) {
        // no endpoints: the host itself is resolved
        if (matches({}, c.labels)) eps.push({ address: c.service.fqdn, port: portOf(), labels: {} });
      }
      for (const e of se.endpoints) {
        if (!matches(e.labels, c.labels)) continue;
        eps.push({ address: e.address, port: portOf(e), labels: e.labels, weight: e.weight, locality: e.locality });
      }
    }
  }
  eps.sort((a, b) => `${a.locality ?? ''} ${a.address}:${a.port}`.localeCompare(`${b.locality ?? ''} ${b.address}:${b.port}`));
  const localities = new Map<string, typeof eps>();
  for (const e of eps) localities.set(e.locality ?? '', [...(localities.get(e.locality ?? '') ?? []), e]);
  return {
    cluster_name: c.name,
    endpoints: [...localities].map(([locality, group]) => ({
      locality: localityOf(locality),
      load_balancing_weight: { value: 1 },
      lb_endpoints: group.map((e) => ({
        endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
        health_status: 'HEALTHY',
        load_balancing_weight: { value: e.weight ?? 1 },
        metadata: {
          filter_metadata: {
            // the SPIFFE ID peers must present on this address (SPEC section 5)
            tandem: toStruct(e.identity ? { labels: e.labels, identity: e.identity } : { labels: e.labels }),
          },
        },
      })),
    })),
  };
}

// Istio's locality: region/zone/subzone
function localityOf(s: string): Obj {
  const [region, zone, sub_zone] = s.split('/');
  return s ? { region, ...(zone ? { zone } : {}), ...(sub_zone ? { sub_zone } : {}) } : {};
}
