// Sidecar admin endpoints: /ready, /metrics, /certs, /config_dump, /clusters, POST /drain.
import type { EndpointStats, RuntimeConfig } from './runtime/config';
import type { XdsClient } from './xds/client';
import type { WorkloadIdentity } from './identity/workload-identity';
import { certSummary } from './identity/workload-identity';
import type { SidecarMetrics } from './metrics';
import { shortName, TypeUrl } from '../proto/type-urls';
import { adminServer } from '../common/admin-http';
import { isEjected } from './runtime/outlier';

export interface AdminDeps {
  xds: XdsClient;
  runtime: () => RuntimeConfig | undefined;
  id: string;
  inboundAddress: string;
  stats: Map<string, EndpointStats>;
  identity: WorkloadIdentity;
  metrics: SidecarMetrics;
  /** the Prometheus text: this process's registry, or the sum over --concurrency workers */
  scrape?: () => Promise<string>;
  /** POST /drain: leave EDS and move clients off (the process stays until SIGTERM) */
  drain?: () => void;
  draining?: () => boolean;
}

/** Ready once every type has arrived and every referenced route and cluster's endpoints are in. */
export function isReady(xds: XdsClient): boolean {
  const st = (t: Parameters<typeof xds.status.get>[0]) => xds.status.get(t)!;
  if (!st(TypeUrl.Cluster).received || !st(TypeUrl.Listener).received) return false;
  const rds = st(TypeUrl.RouteConfiguration);
  if (rds.names.some((n) => !xds.resources.routes.has(n))) return false;
  const eds = st(TypeUrl.ClusterLoadAssignment);
  return eds.names.every((n) => xds.resources.endpoints.has(n));
}

export function sidecarAdmin(d: AdminDeps) {
  return adminServer({
    'GET /ready': () => {
      if (d.draining?.()) return { status: 503, body: 'draining\n' };
      if (!d.identity.current) return { status: 503, body: 'waiting for a workload certificate\n' };
      const rt = d.runtime();
      if (rt?.resolving) return { status: 503, body: 'resolving the names of DNS clusters\n' };
      return isReady(d.xds) && rt ? { body: 'ready\n' } : { status: 503, body: 'waiting for config\n' };
    },
    'POST /drain': () => {
      if (!d.drain) return { status: 404, body: 'not here\n' };
      d.drain();
      return { status: 202, body: 'draining\n' };
    },
    'GET /certs': () => ({ body: certSummary(d.identity.current) }),
    'GET /metrics': async () => ({ type: d.metrics.registry.contentType, body: await (d.scrape ? d.scrape() : d.metrics.registry.metrics()) }),
    'GET /config_dump': () => ({
      body: {
        node: { id: d.id, inbound: d.inboundAddress },
        controlPlaneConnected: d.xds.connected,
        runtimeGeneration: d.runtime()?.generation ?? 0,
        types: Object.fromEntries(
          [...d.xds.status].map(([t, st]) => [
            shortName[t],
            { version: st.version, subscribed: st.names, lastNack: st.lastError ?? null },
          ]),
        ),
        clusters: dump(d.xds.resources.clusters, d.xds.status.get(TypeUrl.Cluster)!.resourceVersions),
        endpoints: dump(d.xds.resources.endpoints, d.xds.status.get(TypeUrl.ClusterLoadAssignment)!.resourceVersions),
        listeners: dump(d.xds.resources.listeners, d.xds.status.get(TypeUrl.Listener)!.resourceVersions),
        routes: dump(d.xds.resources.routes, d.xds.status.get(TypeUrl.RouteConfiguration)!.resourceVersions),
      },
    }),
    'GET /clusters': () => {
      const rt = d.runtime();
      const now = Date.now();
      return {
        body: [...(rt?.clusters.values() ?? [])].map((c) => ({
          name: c.model.name,
          lb_policy: c.model.lbPolicy,
          mesh: c.model.mesh,
          // the circuit breakers' and outlier detection's tallies (kept across config swaps)
          overflows: c.stats.overflows,
          ejections: c.stats.ejections,
          endpoints: c.endpoints.map((e) => ({
            address: `${e.address}:${e.port}`,
            labels: e.labels,
            weight: e.weight,
            health: 'HEALTHY',
            ejected: isEjected(e.stats, now),
            ejected_until: isEjected(e.stats, now) ? new Date(e.stats.outlier.ejectedUntil).toISOString() : null,
            times_ejected: e.stats.outlier.timesEjected,
            active_requests: e.stats.activeRequests,
            total_requests: e.stats.totalRequests,
            failures: e.stats.failures,
          })),
        })),
      };
    },
  });
}

function dump<T>(m: Map<string, T>, versions: Map<string, string>) {
  return [...m].map(([name, resource]) => ({ name, version: versions.get(name) ?? '', resource }));
}
