// Who a sidecar is decides what it is sent, as in Istio (pilot/pkg/model/sidecar.go,
// push_context.go, networking/core/route): the Sidecar resource that applies to its
// workload limits the services, routes and clusters it gets; a VirtualService match with
// sourceLabels or sourceNamespace exists only in the routes of the callers it names; a
// DestinationRule with a workloadSelector applies only to the workloads it selects, in its
// own namespace, ahead of the rules for everyone.
//
// Workloads alike in everything these look at share one key, and so one translation.
import type { DestinationRule, EgressHost, HTTPMatchRequest, MeshConfig, Sidecar, Subset, VirtualService } from '../model/types';
import type { Service } from '../model/services';
import { MESH_ROOT_NAMESPACE, selectorMatches } from '../model/peer-authentication';
import { fqdn } from '../config/hosts';

/** A workload as scoping sees it. */
export interface Caller {
  namespace: string;
  labels: Record<string, string>;
}

/** The config one kind of caller is translated from. */
export interface ScopedConfig {
  /** the services its outbound routes have a virtual host for */
  routed: Map<string, Service>;
  /** the services it gets clusters for: those, and wherever their routes send or mirror to */
  services: Map<string, Service>;
  /** the VirtualServices it imports, without the match clauses meant for other callers, and its DestinationRules */
  config: MeshConfig;
}

const isSourceClause = (m: HTTPMatchRequest) => m.sourceLabels !== undefined || m.sourceNamespace !== undefined;

/** Istio's sourceMatchHTTP: every label of the clause on the caller, and its namespace if one is named. */
function sourceMatches(m: HTTPMatchRequest, c: Caller | undefined): boolean {
  if (!isSourceClause(m)) return true;
  if (!c) return false;
  return selectorMatches(m.sourceLabels, c.labels) && (m.sourceNamespace === undefined || m.sourceNamespace === c.namespace);
}

// Istio's host.Name.Matches: either side may be a wildcard ("*" or "*.suffix")
function wildcardMatches(a: string, b: string): boolean {
  if (a === b || a === '*' || b === '*') return true;
  const aw = a.startsWith('*.');
  const bw = b.startsWith('*.');
  if (aw && bw) return a.length < b.length ? b.endsWith(a.slice(1)) : a.endsWith(b.slice(1));
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return false;
}

export class Scope {
  private readonly sidecars: Sidecar[];
  /** every distinct source clause, for the key */
  private readonly clauses: HTTPMatchRequest[] = [];
  private readonly selectedRules: DestinationRule[];
  /** the namespaces each service belongs to: mesh services by name, others by the resources that declare them */
  private readonly namespaces = new Map<string, Set<string>>();
  private readonly keys = new WeakMap<Caller, string>();

  constructor(
    private readonly config: MeshConfig,
    private readonly all: Map<string, Service>,
    private readonly domain: string,
    private readonly root: string = MESH_ROOT_NAMESPACE,
  ) {
    this.sidecars = config.sidecars;
    this.selectedRules = config.destinationRules.filter((r) => r.workloadSelector);
    const seen = new Set<string>();
    for (const vs of config.virtualServices) {
      for (const r of vs.http) {
        for (const m of r.match) {
          if (!isSourceClause(m)) continue;
          const id = JSON.stringify([m.sourceLabels ? Object.entries(m.sourceLabels).sort() : null, m.sourceNamespace ?? null]);
          if (!seen.has(id)) this.clauses.push(m);
          seen.add(id);
        }
      }
    }
    this.indexNamespaces();
  }

  private indexNamespaces(): void {
    const add = (host: string, ns: string) => {
      const set = this.namespaces.get(host) ?? new Set<string>();
      set.add(ns);
      this.namespaces.set(host, set);
    };
    const suffix = `.svc.${this.domain}`;
    for (const s of this.all.values()) {
      if (s.fqdn.endsWith(suffix)) add(s.fqdn, s.fqdn.slice(0, -suffix.length).split('.')[1]);
    }
    // a name outside the cluster domain belongs to the namespace of whatever declares it
    const declare = (host: string, ns: string) => {
      if (this.all.has(host) && !host.endsWith(suffix)) add(host, ns);
    };
    for (const se of this.config.serviceEntries) for (const h of se.hosts) declare(h, se.namespace);
    for (const vs of this.config.virtualServices) {
      for (const h of vs.hosts) declare(h, vs.namespace);
      for (const r of vs.http) for (const d of [...r.route, ...r.mirrors]) declare(d.destination.host, vs.namespace);
    }
    for (const dr of this.config.destinationRules) declare(dr.host, dr.namespace);
  }

  /** Istio's choice: a Sidecar selecting the workload, else its namespace's, else the root namespace's. */
  sidecarFor(c: Caller | undefined): Sidecar | undefined {
    if (!c || !this.sidecars.length) return undefined;
    const own = this.sidecars.filter((s) => s.namespace === c.namespace);
    return (
      own.find((s) => s.workloadSelector && selectorMatches(s.workloadSelector, c.labels)) ??
      own.find((s) => !s.workloadSelector) ??
      this.sidecars.find((s) => s.namespace === this.root && !s.workloadSelector)
    );
  }

  /** Equal for callers that every Sidecar, source clause and selected DestinationRule treats alike. */
  keyOf(c: Caller | undefined): string {
    let key = c && this.keys.get(c);
    if (key === undefined) {
      const sc = this.sidecarFor(c);
      // "." in a Sidecar (even the root namespace's) is the caller's namespace
      const sidecar = sc && c ? `${sc.namespace}/${sc.name}@${c.namespace}` : '';
      const clauses = this.clauses.map((m) => (sourceMatches(m, c) ? '1' : '0')).join('');
      const rules = this.selectedRules.map((r) => (c && this.selects(r, c) ? '1' : '0')).join('');
      // a workload that nothing sets apart gets what a client without one gets
      key = `${sidecar}|${clauses}|${rules}`;
      if (c) this.keys.set(c, key);
    }
    return key;
  }

  /**
   * One caller for each thing that can set callers apart, so that what only some sidecars
   * are sent is translated, and any problem found, when the config is loaded.
   */
  probes(): Caller[] {
    const out: Caller[] = [];
    for (const s of this.sidecars) out.push({ namespace: s.namespace, labels: s.workloadSelector ?? {} });
    for (const r of this.selectedRules) out.push({ namespace: r.namespace, labels: r.workloadSelector ?? {} });
    for (const vs of this.config.virtualServices) {
      for (const r of vs.http) for (const m of r.match) if (isSourceClause(m)) out.push({ namespace: m.sourceNamespace ?? vs.namespace, labels: m.sourceLabels ?? {} });
    }
    return out;
  }

  scoped(c: Caller | undefined): ScopedConfig {
    const sc = this.sidecarFor(c);
    const imported = sc && c ? this.config.virtualServices.filter((vs) => this.importsVs(sc.egressHosts, vs, c.namespace)) : this.config.virtualServices;
    const virtualServices = imported.map((vs) => forCaller(vs, c)).filter((vs) => vs.http.length > 0);
    const config: MeshConfig = { ...this.config, virtualServices, destinationRules: this.rulesFor(c) };
    if (!sc || !c) return { routed: this.all, services: this.all, config };
    const routed = new Map<string, Service>();
    for (const s of this.all.values()) if (this.importsService(sc.egressHosts, s.fqdn, c.namespace)) routed.set(s.fqdn, s);
    for (const vs of virtualServices) for (const h of vs.hosts) this.include(routed, h);
    const services = new Map(routed);
    for (const vs of virtualServices) for (const r of vs.http) for (const d of [...r.route, ...r.mirrors]) this.include(services, d.destination.host);
    return { routed, services, config };
  }

  private include(into: Map<string, Service>, host: string): void {
    const s = this.all.get(host);
    if (s) into.set(host, s);
  }

  private selects(r: DestinationRule, c: Caller): boolean {
    return r.namespace === c.namespace && selectorMatches(r.workloadSelector, c.labels);
  }

  // ---- egress hosts

  private namespaceOf(e: EgressHost, caller: string): string {
    return e.namespace === '.' ? caller : e.namespace;
  }

  /** Whether a service host is named by a dnsName; names with a dot may be short forms of the cluster's names, as everywhere in Tandem. */
  private hostNamed(pattern: string, host: string): boolean {
    if (pattern === '*' || pattern === host) return true;
    if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
    return fqdn(pattern, 'default', this.domain) === host;
  }

  /** Istio's selectServices: imported by an entry for one of its namespaces (or "*"), and excluded by none. */
  private importsService(entries: EgressHost[], host: string, caller: string): boolean {
    const nss = this.namespaces.get(host) ?? new Set<string>();
    const names = (e: EgressHost) => {
      const ns = this.namespaceOf(e, caller);
      return (ns === '*' || nss.has(ns)) && this.hostNamed(e.host, host);
    };
    return entries.some((e) => !e.exclude && names(e)) && !entries.some((e) => e.exclude && names(e));
  }

  /** Istio's SelectVirtualServices: an entry for the VirtualService's own namespace (or "*") names one of its hosts, which none excludes. */
  private importsVs(entries: EgressHost[], vs: VirtualService, caller: string): boolean {
    const forVs = entries.filter((e) => {
      const ns = this.namespaceOf(e, caller);
      return ns === '*' || ns === vs.namespace;
    });
    const named = (e: EgressHost, h: string) => wildcardMatches(e.host, h) || (!e.host.includes('*') && !h.includes('*') && this.hostNamed(e.host, h));
    return vs.hosts.some((h) => forVs.some((e) => !e.exclude && named(e, h)) && !forVs.some((e) => e.exclude && this.excludes(e.host, h)));
  }

  // Istio's Excluded: the host is within what the exclusion names
  private excludes(pattern: string, h: string): boolean {
    if (h.startsWith('*.') || h === '*') return pattern === '*' || (pattern.startsWith('*.') && h !== '*' && h.endsWith(pattern.slice(1)));
    return this.hostNamed(pattern, h);
  }

  // ---- destination rules

  /**
   * The DestinationRules one caller sees: for each host, the rules selecting it (in its
   * namespace) if any, else the rules without a selector. Subsets only other rules define
   * are added to the first, so a route to a subset never points at a cluster the caller
   * lacks (Istio merges selected rules' subsets into the unselected rule the same way).
   */
  private rulesFor(c: Caller | undefined): DestinationRule[] {
    if (!this.selectedRules.length) return this.config.destinationRules;
    const byHost = new Map<string, DestinationRule[]>();
    for (const r of this.config.destinationRules) byHost.set(r.host, [...(byHost.get(r.host) ?? []), r]);
    const out: DestinationRule[] = [];
    for (const rules of byHost.values()) {
      const selected = c ? rules.filter((r) => r.workloadSelector && this.selects(r, c)) : [];
      const applicable = selected.length ? selected : rules.filter((r) => !r.workloadSelector);
      const defined = new Set(applicable.flatMap((r) => r.subsets.map((s) => s.name)));
      const extra: Subset[] = [];
      for (const r of rules) {
        if (applicable.includes(r)) continue;
        for (const s of r.subsets) {
          if (defined.has(s.name)) continue;
          defined.add(s.name);
          extra.push(s);
        }
      }
      if (!extra.length) out.push(...applicable);
      else if (applicable.length) out.push({ ...applicable[0], subsets: [...applicable[0].subsets, ...extra] }, ...applicable.slice(1));
      else out.push({ ...rules[0], trafficPolicy: undefined, workloadSelector: undefined, subsets: extra });
    }
    return out;
  }
}

/** A VirtualService as one caller sees it: match clauses for other callers gone, and routes left with none. */
function forCaller(vs: VirtualService, c: Caller | undefined): VirtualService {
  if (!vs.http.some((r) => r.match.some(isSourceClause))) return vs;
  const http = vs.http.flatMap((r, i) => {
    // the name the route had in the whole list, so that it does not change with the caller
    const named = { ...r, name: r.name ?? `${vs.namespace}/${vs.name}/${i}` };
    if (!r.match.length) return [named];
    const kept = r.match.filter((m) => sourceMatches(m, c));
    return kept.length ? [{ ...named, match: kept }] : [];
  });
  return { ...vs, http };
}
