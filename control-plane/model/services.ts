// The services the mesh knows about and every name they answer to. A service is
// known from a sidecar that registered for it, a ServiceEntry, or a routing rule.
import type { MeshConfig, ServiceEntry } from './types';
import type { WorkloadInfo } from '../../proto/node-meta';

export interface Service {
  fqdn: string;
  /** true: endpoints are sidecars (mesh hop); false: ServiceEntry endpoints reached directly */
  mesh: boolean;
  /** the port clusters are named for when a destination names none */
  defaultPort: number;
  /** HTTP, HTTP2 or GRPC: what the endpoints speak (mesh endpoints always take h2) */
  protocol: string;
  /** names a Host header or xds:/// target may use */
  aliases: string[];
  /** the ServiceEntry that declares it, if one does: its resolution, ports and endpoints */
  entry?: ServiceEntry;
}

export const MESH_PORT = 80;

export function meshFqdn(service: string, namespace: string, domain: string): string {
  return `${service}.${namespace}.svc.${domain}`.toLowerCase();
}

/** Every service, keyed by fqdn, with aliases that are unambiguous across the mesh. */
export function collectServices(
  config: MeshConfig,
  workloads: WorkloadInfo[],
  domain: string,
  /** mesh services whose sidecars all left a moment ago (cache.ts keeps them for a grace period) */
  departed: readonly { service: string; namespace: string }[] = [],
): Map<string, Service> {
  const out = new Map<string, Service>();
  const add = (fqdn: string, mesh: boolean, port = MESH_PORT, protocol = 'HTTP') => {
    if (fqdn === '*' || fqdn.startsWith('*.') || out.has(fqdn)) return;
    out.set(fqdn, { fqdn, mesh, defaultPort: port, protocol, aliases: aliasesOf(fqdn, domain) });
  };
  for (const w of workloads) add(meshFqdn(w.service, w.namespace, domain), true);
  for (const d of departed) add(meshFqdn(d.service, d.namespace, domain), true);
  for (const se of config.serviceEntries) addEntry(out, se, domain);
  for (const dr of config.destinationRules) add(dr.host, isMeshName(dr.host, domain));
  for (const vs of config.virtualServices) {
    for (const h of vs.hosts) add(h, isMeshName(h, domain));
    for (const r of vs.http) {
      for (const d of r.route) add(d.destination.host, isMeshName(d.destination.host, domain));
      for (const m of r.mirrors) add(m.destination.host, isMeshName(m.destination.host, domain));
    }
  }
  dropAmbiguousAliases(out);
  return out;
}

// An entry's hosts, wildcards too (a request for any matching Host reaches it); its
// addresses are more names for its first host. The default port is its first HTTP one.
function addEntry(out: Map<string, Service>, se: ServiceEntry, domain: string): void {
  const http = se.ports.find((p) => HTTP_PROTOCOLS.has(p.protocol)) ?? se.ports[0];
  se.hosts.forEach((fqdn, i) => {
    if (out.has(fqdn)) return;
    const aliases = [...aliasesOf(fqdn, domain), ...(i === 0 ? se.addresses : [])];
    out.set(fqdn, { fqdn, mesh: false, defaultPort: http?.number ?? MESH_PORT, protocol: http?.protocol ?? 'HTTP', aliases, entry: se });
  });
}

/** Protocols an application's HTTP request can be carried as (Istio's IsHTTP). */
export const HTTP_PROTOCOLS: ReadonlySet<string> = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);

/** What a service's endpoints speak on a port: the entry's port protocol, else the service's. */
export function portProtocol(s: Service, port: number): string {
  return s.entry?.ports.find((p) => p.number === port)?.protocol ?? s.protocol;
}

const isMeshName = (h: string, domain: string) => h.endsWith(`.svc.${domain}`);

function aliasesOf(fqdn: string, domain: string): string[] {
  const suffix = `.svc.${domain}`;
  if (!fqdn.endsWith(suffix)) return [fqdn];
  const [name, ns] = fqdn.slice(0, -suffix.length).split('.');
  return [name, `${name}.${ns}`, `${name}.${ns}.svc`, fqdn];
}

// A short name such as "reviews" in two namespaces names neither: keep only the longer forms.
function dropAmbiguousAliases(services: Map<string, Service>): void {
  const count = new Map<string, number>();
  for (const s of services.values()) for (const a of s.aliases) count.set(a, (count.get(a) ?? 0) + 1);
  for (const s of services.values()) s.aliases = s.aliases.filter((a) => a === s.fqdn || count.get(a) === 1);
}

/** Find a service by any of its names, with or without :port. */
export function resolveService(services: Map<string, Service>, name: string): { service: Service; port?: number } | undefined {
  const m = /^(.*?)(?::(\d+))?$/.exec(name.toLowerCase());
  if (!m) return undefined;
  const host = m[1];
  const port = m[2] ? Number(m[2]) : undefined;
  for (const s of services.values()) if (s.aliases.includes(host)) return { service: s, port };
  return undefined;
}
