// "What to serve": an immutable, consistent set of xDS resources computed from one
// config and one set of registered workloads. Routes and clusters depend on who asks
// (scope.ts): each kind of caller's are translated once, when first asked for, and
// shared by every sidecar of that kind. Proxyless listeners are made on demand for
// whatever service name a client dials, and cached for the snapshot's life.
import { createHash } from 'node:crypto';
import type { MeshConfig, VirtualService } from '../model/types';
import type { Workload } from '../model/workload';
import { collectServices, meshFqdn, resolveService, type Service } from '../model/services';
import { VirtualServiceIndex } from '../model/virtual-service-index';
import { pack, type AnyMessage } from '../../proto/any';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import { INBOUND_LISTENER, OUTBOUND_LISTENER, OUTBOUND_ROUTE } from './names';
import { defaultRoute, destinationPort, translateHttpRoute, type PolicyOf } from './translate-route';
import { inboundListener, inboundKey } from './translate-inbound';
import { clusterSpecs, translateCluster, translateEndpoints, type ClusterSpec } from './translate-cluster';
import { Scope, type Caller, type ScopedConfig } from './scope';
import { CORS_FILTER, MAX_DIRECT_RESPONSE_BODY_SIZE } from './translate-route-actions';
import { servedByEds } from './translate-discovery';
import { clusterPolicy, DestinationRuleIndex, serviceNamespace } from '../model/destination-rules';

import { ServedSet, type Resource } from './served-set';
import { splitRoutes, type RouteForm } from './vhds';

export { ServedSet, type Resource };

type Obj = Record<string, unknown>;

// The fault and CORS filters are empty at the listener; routes switch them on through
// typed_per_filter_config. Istio's order (listener_builder.go): fault, then CORS, then the
// router last, as Envoy and grpc-js-xds require. CORS is optional: a proxyless gRPC client
// has no such filter and skips it.
const ROUTER_FILTERS = () => [
  { name: 'envoy.filters.http.fault', typed_config: pack(TypeUrl.HTTPFault, {}) },
  { name: CORS_FILTER, typed_config: pack(TypeUrl.Cors, {}), is_optional: true },
  { name: 'envoy.filters.http.router', typed_config: pack(TypeUrl.Router, {}) },
];

function hcm(statPrefix: string, routeName: string): AnyMessage {
  return pack(TypeUrl.HttpConnectionManager, {
    stat_prefix: statPrefix,
    rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: routeName },
    http_filters: ROUTER_FILTERS(),
    strip_any_host_port: true,
  });
}

export interface SnapshotOptions {
  /** DNS domain of short service names */
  domain: string;
  /** SPIFFE trust domain of workload identities */
  trustDomain: string;
}

/** What one kind of caller is sent: workloads that scope.ts finds alike share one. */
interface View {
  scoped: ScopedConfig;
  vsIndex: VirtualServiceIndex;
  policyOf: PolicyOf;
  /** cluster name -> what its Cluster and ClusterLoadAssignment are made from */
  specs: Map<string, ClusterSpec>;
  clusters: Map<string, Resource>;
  routes: Map<string, Resource>;
  /** proxyless listeners and routes, made on demand */
  demand: Map<string, Resource | null>;
  /** what was served, by type and subscribed names */
  sets: Map<string, ServedSet>;
}

/** A service known from sidecars none of which is connected now. */
export interface DepartedService {
  service: string;
  namespace: string;
}

export class Snapshot {
  readonly services: Map<string, Service>;
  private readonly listeners: Map<string, Resource>;
  private readonly scope: Scope;
  private readonly views = new Map<string, View>();

  constructor(
    readonly generation: number,
    readonly config: MeshConfig,
    readonly workloads: Workload[],
    readonly opts: SnapshotOptions,
    /** translate for every kind of caller the config names now (a new config), not when first asked */
    probe = true,
    /** the snapshot this one follows: what depends only on the config is kept when the config is the same */
    previous?: Snapshot,
    /** services whose last sidecar left within the grace period: still services, with no endpoints */
    departed: readonly DepartedService[] = [],
  ) {
    this.inboundCache = previous && previous.config === config ? previous.inboundCache : new Map();
    this.services = collectServices(config, workloads, opts.domain, departed);
    this.scope = new Scope(config, this.services, opts.domain);
    this.listeners = toMap([
      res(TypeUrl.Listener, OUTBOUND_LISTENER, {
        name: OUTBOUND_LISTENER,
        address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
        filter_chains: [
          { filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm('outbound', OUTBOUND_ROUTE) }] },
        ],
      }),
    ]);
    // translated now for every kind of caller the config names, so that a config that
    // cannot be translated is refused at load, not when such a sidecar connects
    this.view(undefined);
    if (probe) for (const c of this.scope.probes()) this.view(c);
  }

  /** The translation for a caller (none: a client that is no workload), made once per kind of caller. */
  private view(c: Caller | undefined): View {
    const key = this.scope.keyOf(c);
    let v = this.views.get(key);
    if (!v) {
      v = this.translate(this.scope.scoped(c));
      this.views.set(key, v);
    }
    return v;
  }

  private translate(scoped: ScopedConfig): View {
    const { config, services } = scoped;
    const vsIndex = new VirtualServiceIndex(config.virtualServices);
    const rules = new DestinationRuleIndex(config.destinationRules);
    const ruleFor = (host: string) => rules.forHost(host, serviceNamespace(host, config, this.opts.domain));
    // the policy of the cluster a destination names, so a route hashes as its cluster balances
    const policyOf: PolicyOf = (d) => clusterPolicy(ruleFor(d.host), destinationPort(d, services), d.subset);
    const referenced = new Map<string, Set<number>>();
    const reference = (d: { host: string; port?: number }) => {
      const ports = referenced.get(d.host) ?? new Set<number>();
      ports.add(destinationPort(d, services));
      referenced.set(d.host, ports);
    };
    for (const vs of config.virtualServices) {
      for (const r of vs.http) {
        for (const d of r.route) reference(d.destination);
        for (const m of r.mirrors) reference(m.destination);
      }
    }
    const specs = clusterSpecs(config, services, referenced, ruleFor);
    const view: View = {
      scoped,
      vsIndex,
      policyOf,
      specs: new Map(specs.map((c) => [c.name, c])),
      // DNS clusters carry their endpoints inline (ORIGINAL_DST ones need none)
      clusters: toMap(specs.map((c) => res(TypeUrl.Cluster, c.name, translateCluster(c, servedByEds(c) ? undefined : translateEndpoints(c, this.config, this.workloadsOf(c.service.fqdn), this.opts.domain))))),
      routes: new Map(),
      demand: new Map(),
      sets: new Map(),
    };
    view.routes = toMap([
      res(TypeUrl.RouteConfiguration, OUTBOUND_ROUTE, {
        name: OUTBOUND_ROUTE,
        ...MAX_DIRECT_RESPONSE_BODY_SIZE,
        // sorted: the version must not depend on the order sidecars registered in
        virtual_hosts: [
          ...[...scoped.routed.values()].sort((a, b) => (a.fqdn < b.fqdn ? -1 : 1)).map((s) => this.virtualHost(view, s, s.aliases)),
          ...vsIndex.unclaimedWildcards(scoped.routed.keys()).map(([host, vs]) => this.vhostOf(view, host, [host], vs)),
        ],
      }),
    ]);
    return view;
  }

  /**
   * A service's virtual host: its VirtualService's routes, else all of it to the service (as
   * in Istio, also on a port for which every route of the VirtualService names another).
   */
  private virtualHost(v: View, s: Service, domains: string[], listenPort?: number): Obj {
    const vs = v.vsIndex.forHost(s.fqdn);
    const vh = vs && this.vhostOf(v, s.fqdn, domains, vs, s.defaultPort, listenPort);
    return vh && (vh.routes as Obj[]).length ? vh : { name: s.fqdn, domains, routes: [defaultRoute(s)] };
  }

  /** `requestPort`: the port a redirect's FROM_REQUEST_PORT means (the service's) */
  private vhostOf(v: View, name: string, domains: string[], vs: VirtualService, requestPort = 80, listenPort?: number): Obj {
    return { name, domains, routes: vs.http.flatMap((r, i) => translateHttpRoute(vs, r, i, v.scoped.services, v.policyOf, requestPort, listenPort)) };
  }

  /**
   * The resources of one type a subscriber gets: every resource for a wildcard
   * subscription (names null), else the named ones that exist. What a sidecar gets
   * depends on its workload (scope.ts); a client without one gets the unscoped set.
   * `form`: how the client takes its outbound routes (vhds.ts), whole unless it said otherwise.
   */
  served(type: XdsTypeUrl, names: string[] | null, workload?: Workload, namesKey = subscriptionKey(names), form: RouteForm = 'whole'): ServedSet {
    const v = this.view(workload);
    const split = form === 'vhds' || type === TypeUrl.VirtualHost;
    // alike sidecars subscribe alike: each set, and the hash that versions it, is made once
    // (listeners once per kind of inbound listener, route configurations once per form)
    const key =
      type === TypeUrl.Listener && workload ? `${type} ${namesKey} ${inboundKey(workload)}` : type === TypeUrl.RouteConfiguration && split ? `${type} ${namesKey} vhds` : `${type} ${namesKey}`;
    const made = v.sets.get(key);
    if (made) return made;
    let list: Resource[];
    if (type === TypeUrl.ClusterLoadAssignment) {
      list = (names ?? [...v.specs.keys()]).map((n) => this.assignment(v, n)).filter((r): r is Resource => !!r);
    } else {
      const fixed =
        type === TypeUrl.Listener ? this.listeners
        : type === TypeUrl.Cluster ? v.clusters
        : type === TypeUrl.VirtualHost ? splitRoutes(v.routes).vhosts
        : split ? splitRoutes(v.routes).routes
        : v.routes;
      if (names === null) list = [...fixed.values()];
      else list = names.filter((n) => n !== INBOUND_LISTENER).map((n) => fixed.get(n) ?? this.onDemand(v, type, n)).filter((r): r is Resource => !!r);
    }
    // a sidecar's own inbound listener: its mTLS mode and authorization policies
    if (type === TypeUrl.Listener && workload && (names === null || names.includes(INBOUND_LISTENER))) list.push(this.inbound(workload));
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const set = new ServedSet(versionOf(list), list);
    v.sets.set(key, set);
    return set;
  }

  // Endpoints depend only on the cluster they are for: callers whose clusters are alike share them.
  /**
   * Every resource translated so far, by type: each kind of caller's clusters, routes and
   * endpoint sets, the shared listeners, and the inbound listener of each registered
   * workload. With the probes of a new config, that is everything a sidecar can be sent.
   */
  *translated(): Generator<{ type: XdsTypeUrl; resource: Resource }> {
    for (const r of this.listeners.values()) yield { type: TypeUrl.Listener, resource: r };
    for (const w of this.workloads) yield { type: TypeUrl.Listener, resource: this.inbound(w) };
    for (const v of this.views.values()) {
      for (const r of v.clusters.values()) yield { type: TypeUrl.Cluster, resource: r };
      for (const r of v.routes.values()) yield { type: TypeUrl.RouteConfiguration, resource: r };
      // the same routes split, for the clients that take them so; each route configuration before its virtual hosts
      const split = splitRoutes(v.routes);
      for (const r of split.routes.values()) yield { type: TypeUrl.RouteConfiguration, resource: r };
      for (const r of split.vhosts.values()) yield { type: TypeUrl.VirtualHost, resource: r };
      for (const name of v.specs.keys()) {
        const r = this.assignment(v, name);
        if (r) yield { type: TypeUrl.ClusterLoadAssignment, resource: r };
      }
    }
  }

  /**
   * The resources one State-of-the-World response carries to a sidecar, for each kind of
   * caller translated so far and each type: a sidecar subscribes to all of its clusters,
   * their endpoint sets and its routes, and gets the outbound listener with its own inbound one.
   */
  *responses(): Generator<{ type: XdsTypeUrl; resources: Resource[] }> {
    const shared = [...this.listeners.values()];
    const inbound = new Set(this.workloads.map((w) => this.inbound(w)));
    if (!inbound.size) yield { type: TypeUrl.Listener, resources: shared };
    for (const r of inbound) yield { type: TypeUrl.Listener, resources: [...shared, r] };
    for (const v of this.views.values()) {
      yield { type: TypeUrl.Cluster, resources: [...v.clusters.values()] };
      yield { type: TypeUrl.RouteConfiguration, resources: [...v.routes.values()] };
      const endpoints = [...v.specs.keys()].map((n) => this.assignment(v, n)).filter((r): r is Resource => !!r);
      yield { type: TypeUrl.ClusterLoadAssignment, resources: endpoints };
    }
  }

  private readonly assignments = new Map<string, Resource>();
  /** workloads by the FQDN of their service: an endpoint set looks only at its own service's */
  private byService?: Map<string, Workload[]>;

  private workloadsOf(fqdn: string): Workload[] {
    if (!this.byService) {
      this.byService = new Map();
      for (const w of this.workloads) {
        const key = meshFqdn(w.service, w.namespace, this.opts.domain);
        const list = this.byService.get(key) ?? [];
        list.push(w);
        this.byService.set(key, list);
      }
    }
    return this.byService.get(fqdn) ?? [];
  }

  private assignment(v: View, name: string): Resource | undefined {
    const spec = v.specs.get(name);
    // only EDS clusters are served by EDS
    if (!spec || !servedByEds(spec)) return undefined;
    const key = JSON.stringify(spec);
    let r = this.assignments.get(key);
    if (!r) {
      r = res(TypeUrl.ClusterLoadAssignment, name, translateEndpoints(spec, this.config, this.workloadsOf(spec.service.fqdn), this.opts.domain));
      this.assignments.set(key, r);
    }
    return r;
  }

  // workloads alike in what policy can select (namespace, labels, port) share one listener,
  // for as long as the config stays the same (sidecars come and go far more often)
  private readonly inboundCache: Map<string, Resource>;

  private inbound(w: Workload): Resource {
    const key = inboundKey(w);
    let r = this.inboundCache.get(key);
    if (!r) {
      r = res(TypeUrl.Listener, INBOUND_LISTENER, inboundListener(w, this.config, this.opts.trustDomain));
      this.inboundCache.set(key, r);
    }
    return r;
  }

  // A proxyless gRPC client dials xds:///reviews (or an FQDN, optionally :port) and asks
  // for a Listener of exactly that name, then a RouteConfiguration we name the same.
  private onDemand(v: View, type: XdsTypeUrl, name: string): Resource | undefined {
    if (type !== TypeUrl.Listener && type !== TypeUrl.RouteConfiguration) return undefined;
    const key = `${type} ${name}`;
    if (!v.demand.has(key)) {
      const found = resolveService(v.scoped.routed, name);
      let r: Resource | null = null;
      if (found && type === TypeUrl.Listener) {
        r = res(TypeUrl.Listener, name, { name, api_listener: { api_listener: hcm(name, name) } });
      } else if (found) {
        // the client dialed a port (80 when it named none): matches for other ports are left out
        r = res(TypeUrl.RouteConfiguration, name, { name, ...MAX_DIRECT_RESPONSE_BODY_SIZE, virtual_hosts: [this.virtualHost(v, found.service, [name], found.port ?? 80)] });
      }
      v.demand.set(key, r);
    }
    return v.demand.get(key) ?? undefined;
  }
}

/**
 * A short key for a subscription's names, made when they change: a stream keeps it, so a
 * push does not join (or hash) thousands of names per stream.
 */
export function subscriptionKey(names: string[] | null): string {
  if (names === null) return '*';
  const h = createHash('sha256');
  for (const n of names) h.update(n).update('\0');
  return h.digest('base64url').slice(0, 22);
}

function res(type: XdsTypeUrl, name: string, obj: Obj): Resource {
  return { name, obj, any: pack(type, obj) };
}

function toMap(list: Resource[]): Map<string, Resource> {
  return new Map(list.map((r) => [r.name, r]));
}

// A version names content: the same resources always carry the same version, so a
// reconnecting client that already holds them is not sent them again.
function versionOf(list: Resource[]): string {
  const h = createHash('sha256');
  for (const r of list) {
    h.update(r.name).update('\0').update(r.any.value).update('\0');
  }
  return h.digest('hex').slice(0, 12);
}
