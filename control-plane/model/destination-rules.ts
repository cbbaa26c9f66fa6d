// Which DestinationRule applies to a service, and what policy each of its clusters gets,
// as Istio decides (pilot/pkg/model/destination_rule.go, push_context.go and
// networking/util's MergeSubsetTrafficPolicy):
//
// * Rules of one namespace for one host merge, in config order (Istio: creation order):
//   subsets are appended, a subset name already there keeps its first definition, and
//   the first rule with a top-level trafficPolicy gives it.
// * A host is matched exactly first, else by the most specific wildcard (`*.ns.svc.cluster.local`
//   before `*.local` before `*`); there is no inheritance between the two.
// * A client sees the rule of its own namespace first, then the service's namespace's,
//   then the root namespace's.
// * A cluster's policy: the rule's, or its portLevelSettings entry for the port (which
//   replaces it whole); a subset's trafficPolicy then replaces it setting by setting
//   (loadBalancer, connectionPool, outlierDetection, tls), or whole when the subset has
//   an entry for the port.
import type { DestinationRule, MeshConfig, PortTrafficPolicy, Subset, TrafficPolicy } from './types';
import { MESH_ROOT_NAMESPACE } from './peer-authentication';

export interface MergedDestinationRule {
  /** as written: a service name or a wildcard */
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
  /** the rules merged into this one, the first first */
  from: DestinationRule[];
}

/** `*.example.com` matches `a.example.com` and `a.b.example.com`; `*` matches anything. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

/** Istio's MostSpecificHostMatch: the exact host, else the longest wildcard that matches. */
export function mostSpecific<T>(host: string, byHost: ReadonlyMap<string, T>): T | undefined {
  const exact = byHost.get(host);
  if (exact !== undefined) return exact;
  let best: string | undefined;
  for (const pattern of byHost.keys()) {
    if (!pattern.startsWith('*') || !hostMatches(pattern, host)) continue;
    if (best === undefined || pattern.length > best.length) best = pattern;
  }
  return best === undefined ? undefined : byHost.get(best);
}

function merge(into: MergedDestinationRule, rule: DestinationRule): void {
  const names = new Set(into.subsets.map((s) => s.name));
  for (const s of rule.subsets) if (!names.has(s.name)) into.subsets.push(s);
  into.trafficPolicy ??= rule.trafficPolicy;
  into.from.push(rule);
}

export interface DestinationRuleIndexOptions {
  /** where a rule applies mesh-wide (default istio-system, as Istio) */
  rootNamespace?: string;
}

export class DestinationRuleIndex {
  /** namespace -> host -> merged rule */
  private readonly byNamespace = new Map<string, Map<string, MergedDestinationRule>>();
  /** namespaces in the order their first rule appears in the config */
  private readonly order: string[] = [];
  private readonly root: string;

  constructor(rules: readonly DestinationRule[], opts: DestinationRuleIndexOptions = {}) {
    this.root = opts.rootNamespace ?? MESH_ROOT_NAMESPACE;
    for (const r of rules) {
      let hosts = this.byNamespace.get(r.namespace);
      if (!hosts) {
        this.byNamespace.set(r.namespace, (hosts = new Map()));
        this.order.push(r.namespace);
      }
      const cur = hosts.get(r.host);
      if (cur) merge(cur, r);
      else hosts.set(r.host, { host: r.host, trafficPolicy: r.trafficPolicy, subsets: [...r.subsets], from: [r] });
    }
  }

  private inNamespace(ns: string | undefined, host: string): MergedDestinationRule | undefined {
    const hosts = ns === undefined ? undefined : this.byNamespace.get(ns);
    return hosts && mostSpecific(host, hosts);
  }

  /**
   * The rule a client in `clientNamespace` applies to `host`, whose service lives in
   * `serviceNamespace`. Without a client namespace (one view served to every sidecar),
   * after the service's and the root namespace's rules comes the first other
   * namespace's, so that no rule is silently without effect.
   */
  forHost(host: string, serviceNamespace: string | undefined, clientNamespace?: string): MergedDestinationRule | undefined {
    if (clientNamespace !== undefined) {
      const own = this.inNamespace(clientNamespace, host);
      if (own) return own;
    }
    const found = this.inNamespace(serviceNamespace, host) ?? this.inNamespace(this.root, host);
    if (found || clientNamespace !== undefined) return found;
    for (const ns of this.order) {
      const r = this.inNamespace(ns, host);
      if (r) return r;
    }
    return undefined;
  }

  /** Every rule whose host matches, whichever applies: for saying why a subset is missing. */
  allFor(host: string): DestinationRule[] {
    const out: DestinationRule[] = [];
    for (const hosts of this.byNamespace.values()) for (const m of hosts.values()) if (hostMatches(m.host, host)) out.push(...m.from);
    return out;
  }
}

type Settings = Omit<PortTrafficPolicy, 'port'>;
const GROUPS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'] as const;

function settingsOf(p: Settings & { retryBudget?: TrafficPolicy['retryBudget'] }): TrafficPolicy {
  const out: TrafficPolicy = {};
  for (const g of GROUPS) if (p[g] !== undefined) (out as Record<string, unknown>)[g] = p[g];
  if (p.retryBudget !== undefined) out.retryBudget = p.retryBudget;
  return out;
}

/** Istio's GetPortLevelTrafficPolicy: the port's entry replaces the whole policy (nothing is inherited). */
function forPort(policy: TrafficPolicy | undefined, port: number): { policy?: TrafficPolicy; portLevel: boolean } {
  if (!policy) return { portLevel: false };
  const entry = policy.portLevelSettings?.find((p) => p.port === port);
  return entry ? { policy: settingsOf(entry), portLevel: true } : { policy: settingsOf(policy), portLevel: false };
}

const isEmpty = (p: TrafficPolicy | undefined): boolean => !p || Object.keys(p).length === 0;

/** The policy of one cluster of the rule's host: its port, and its subset ('' for none). */
export function clusterPolicy(rule: MergedDestinationRule | undefined, port: number, subset = ''): TrafficPolicy | undefined {
  if (!rule) return undefined;
  const top = forPort(rule.trafficPolicy, port).policy;
  const sub = subset ? rule.subsets.find((s) => s.name === subset)?.trafficPolicy : undefined;
  if (!sub) return isEmpty(top) ? undefined : top;
  const { policy: own, portLevel } = forPort(sub, port);
  if (!top) return isEmpty(own) ? undefined : own;
  const merged: TrafficPolicy = { ...top };
  for (const g of GROUPS) {
    if (own?.[g] !== undefined || portLevel) {
      if (own?.[g] === undefined) delete merged[g];
      else (merged as Record<string, unknown>)[g] = own[g];
    }
  }
  if (own?.retryBudget) merged.retryBudget = own.retryBudget;
  return isEmpty(merged) ? undefined : merged;
}

/** The namespace a service lives in: from its mesh name, else from the ServiceEntry that declares it. */
export function serviceNamespace(host: string, config: MeshConfig, domain: string): string | undefined {
  const suffix = `.svc.${domain}`;
  if (host.endsWith(suffix)) return host.slice(0, -suffix.length).split('.')[1];
  return config.serviceEntries.find((se) => se.hosts.includes(host))?.namespace;
}
