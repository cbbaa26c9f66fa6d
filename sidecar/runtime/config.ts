// The immutable runtime config the request path reads. Compiled from the xDS
// resources each time they change and swapped in one assignment; mutable per-
// endpoint counters live in EndpointStats so they outlive swaps.
import type { ClusterModel, EndpointModel, InboundListenerModel, RouteConfigModel, RouteModel, StringMatcher, VirtualHostModel } from '../../proto/decode/model';
import type { InForce } from '../xds/client';

/** The request path reads runtime types only; these come from the checked model unchanged. */
export type { HeaderOps } from '../../proto/decode/model';
import type { ConnectionOptions, Target } from '../proxy/dispatch';
import { SmoothWeighted, makeBalancer, type Random } from './pickers';
import { meshH1Target, tlsTarget, type MeshTlsSource } from './tls-targets';
import { compileAuthorizer, type Authorizer } from './authz';
import { HashRing } from './hash-ring';
import { freshOutlierState, isEjected } from './outlier';
import { byFamily, type ResolvedAddress } from './dns';
import { isIP } from 'node:net';
import { slowStartBalancer } from './slow-start';

export class EndpointStats {
  activeRequests = 0;
  totalRequests = 0;
  failures = 0;
  outlier = freshOutlierState();
  constructor(
    readonly key: string,
    /** when this sidecar first saw the endpoint (slow start ramps from here) */
    readonly since = Date.now(),
  ) {}
  active(): number {
    return this.activeRequests;
  }
}

export interface Endpoint {
  address: string;
  port: number;
  labels: Record<string, string>;
  /** load-balancing weight, 1 and up */
  weight: number;
  /** where and how a dispatcher reaches it (TLS and the identity it must prove) */
  target: Target;
  stats: EndpointStats;
  active(): number;
  /** the SPIFFE ID the endpoint registered with (metrics' destination_principal) */
  identity?: string;
}

/** The inbound port's policy: PeerAuthentication's transports and AuthorizationPolicy's RBAC. */
export interface InboundRuntime {
  plaintextAllowed: boolean;
  authorizer: Authorizer;
  setClientCert: boolean;
}

/** Per-cluster counters that outlive config swaps (keyed by cluster name). */
export class ClusterStats {
  /** requests sent to the cluster and not finished */
  active = 0;
  /** requests waiting for a connection slot (maxConnections) */
  pending = 0;
  overflows = 0;
  ejections = 0;
  /** waiting for a slot: woken in order as requests finish */
  readonly queue: (() => void)[] = [];
  /** when the cluster first had endpoints: those are not slow-started, later ones are */
  firstEndpointsAt?: number;
  constructor(readonly name: string) {}
}

export interface ClusterRuntime {
  model: ClusterModel;
  endpoints: Endpoint[];
  stats: ClusterStats;
  /**
   * An endpoint by the cluster's load balancer; ring hash and Maglev use `hash`. An
   * ORIGINAL_DST cluster's endpoint is the destination the request names in a header.
   */
  pick(hash?: number, header?: (name: string) => string | undefined): Endpoint | undefined;
}

export interface RuntimeOptions {
  meshTls?: MeshTlsSource;
  clusterStats?: (name: string) => ClusterStats;
  now?: () => number;
  listenerName?: string;
  inboundName?: string;
  /** the addresses of DNS clusters' names (see dns.ts); undefined while a name awaits its first answer */
  dns?: { addresses(host: string): ResolvedAddress[] | undefined };
}

export interface CompiledRoute {
  model: RouteModel;
  vhost: VirtualHostModel;
  pickCluster(): RouteModel['clusters'][number];
}

interface CompiledVhost {
  model: VirtualHostModel;
  routes: CompiledRoute[];
}

export class RouteTable {
  private readonly exact = new Map<string, CompiledVhost>();
  private readonly suffix: [string, CompiledVhost][] = [];
  private readonly prefix: [string, CompiledVhost][] = [];
  private any?: CompiledVhost;

  constructor(rc: RouteConfigModel | undefined, readonly stripPort: boolean) {
    for (const vh of rc?.virtualHosts ?? []) {
      const cv: CompiledVhost = { model: vh, routes: vh.routes.map((r) => compileRoute(r, vh)) };
      for (const d of vh.domains) {
        if (d === '*') this.any ??= cv;
        else if (d.startsWith('*')) this.suffix.push([d.slice(1), cv]);
        else if (d.endsWith('*')) this.prefix.push([d.slice(0, -1), cv]);
        else if (!this.exact.has(d)) this.exact.set(d, cv);
      }
    }
    // Envoy: the longest wildcard wins
    this.suffix.sort((a, b) => b[0].length - a[0].length);
    this.prefix.sort((a, b) => b[0].length - a[0].length);
  }

  /** Envoy's virtual host selection, then the first route that matches. */
  match(authority: string, path: string, headers: (name: string) => string | undefined): CompiledRoute | undefined {
    let host = authority.toLowerCase();
    const port = portOf(host);
    if (this.stripPort) host = host.replace(/:\d+$/, '');
    const vh =
      this.exact.get(host) ??
      this.suffix.find(([s]) => host.endsWith(s))?.[1] ??
      this.prefix.find(([p]) => host.startsWith(p))?.[1] ??
      this.any;
    if (!vh) return undefined;
    const q = path.indexOf('?');
    const pathOnly = q < 0 ? path : path.slice(0, q);
    // parsed only if a route looks at the query, once
    let parsed: URLSearchParams | undefined;
    const query = q < 0 ? NO_QUERY : (name: string) => (parsed ??= new URLSearchParams(path.slice(q + 1))).get(name) ?? undefined;
    return vh.routes.find((r) => routeMatches(r.model, port, pathOnly, query, headers));
  }
}

const NO_QUERY = (): undefined => undefined;

/** The port the application addressed: its authority's, else HTTP's 80 (outbound is plaintext). */
function portOf(authority: string): number {
  const m = /:(\d+)$/.exec(authority);
  return m ? Number(m[1]) : 80;
}

function compileRoute(model: RouteModel, vhost: VirtualHostModel): CompiledRoute {
  const picker = new SmoothWeighted(model.clusters.map((c) => ({ item: c, weight: c.weight })));
  return { model, vhost, pickCluster: model.clusters.length === 1 ? () => model.clusters[0] : () => picker.next() };
}

export function matchString(m: StringMatcher, v: string | undefined): boolean {
  if (v === undefined) return false;
  switch (m.kind) {
    case 'exact':
      return v === m.value;
    case 'prefix':
      return v.startsWith(m.value);
    case 'regex':
      return m.re.test(v);
    case 'present':
      return true;
  }
}

function matchPath(r: RouteModel, path: string): boolean {
  if (!r.ignoreCase || r.path.kind === 'regex' || r.path.kind === 'present') return matchString(r.path, path);
  const p = path.toLowerCase();
  const want = r.path.value.toLowerCase();
  return r.path.kind === 'exact' ? p === want : p.startsWith(want);
}

function routeMatches(r: RouteModel, port: number, path: string, query: (name: string) => string | undefined, headers: (n: string) => string | undefined): boolean {
  if (r.port !== undefined && r.port !== port) return false;
  if (!matchPath(r, path)) return false;
  for (const h of r.headers) {
    let v = headers(h.name);
    if (v === undefined && h.missingAsEmpty) v = '';
    // Envoy: an absent header fails the match, inverted or not (a presence test aside)
    if (v === undefined && h.match.kind !== 'present') return false;
    if (matchString(h.match, v) === h.invert) return false;
  }
  for (const q of r.query) if (!matchString(q.match, query(q.name))) return false;
  return true;
}

export class RuntimeConfig {
  readonly clusters = new Map<string, ClusterRuntime>();
  readonly outbound: RouteTable;
  /** undefined until the control plane sent this sidecar's inbound listener */
  readonly inbound?: InboundRuntime;
  /** a DNS cluster's name still awaits its first answer */
  readonly resolving: boolean;

  constructor(
    readonly generation: number,
    res: InForce,
    statsFor: (key: string) => EndpointStats,
    random: Random,
    o: RuntimeOptions = {},
  ) {
    const { meshTls, listenerName = 'outbound', inboundName = 'virtualInbound', now = Date.now } = o;
    const clusterStats = o.clusterStats ?? ((name: string) => new ClusterStats(name));
    const listener = res.listeners.get(listenerName);
    const out = listener?.kind === 'outbound' ? listener : undefined;
    this.outbound = new RouteTable(out ? res.routes.get(out.routeConfigName) : undefined, out?.stripAnyHostPort ?? true);
    const inb = res.listeners.get(inboundName);
    if (inb?.kind === 'inbound') this.inbound = compileInbound(inb);
    const endpointOf = (model: ClusterModel, e: EndpointModel, conn = connectionOptions(model)): Endpoint => {
      const stats = statsFor(`${model.name}|${e.address}:${e.port}`);
      const target: Target = { host: e.address, port: e.port, tls: tlsTarget(model.tls, e.address, e.port, e.identity, meshTls), ...(conn ? { conn } : {}) };
      const h1Tls = meshH1Target(model.tls, e.address, e.port, e.identity, meshTls);
      if (h1Tls) target.h1 = { ...target, tls: h1Tls };
      return { address: e.address, port: e.port, labels: e.labels, weight: e.weight ?? 1, target, stats, active: () => stats.activeRequests, ...(e.identity ? { identity: e.identity } : {}) };
    };
    let resolving = false;
    for (const model of res.clusters.values()) {
      const d = model.discovery;
      let listed: EndpointModel[];
      if (!d) listed = res.endpoints.get(model.name)?.endpoints ?? [];
      else if (d.kind === 'static') listed = d.endpoints;
      else if (d.kind === 'dns') {
        // each name becomes its addresses (LOGICAL_DNS: the first one), keeping its port, weight and labels
        listed = d.endpoints.flatMap((e) => {
          const found = o.dns?.addresses(e.address) ?? (isIP(e.address) ? [{ address: e.address, family: isIP(e.address) === 6 ? (6 as const) : (4 as const) }] : undefined);
          if (!found) resolving = true;
          const addrs = byFamily(found ?? [], d.family);
          return (d.logical ? addrs.slice(0, 1) : addrs).map((a) => ({ ...e, address: a.address }));
        });
      } else listed = [];
      const conn = connectionOptions(model);
      const endpoints = listed.filter((e) => e.healthy).map((e) => endpointOf(model, e, conn));
      const cstats = clusterStats(model.name);
      if (endpoints.length && cstats.firstEndpointsAt === undefined) cstats.firstEndpointsAt = now();
      const pick = d?.kind === 'originalDst' ? originalDestination(model, d, (e) => endpointOf(model, e, conn), now) : picker(model, endpoints, cstats, random, now);
      this.clusters.set(model.name, { model, endpoints, stats: cstats, pick });
    }
    this.resolving = resolving;
  }
}

// The destination the request names (Envoy reads an IP:port there; here a host name too,
// resolved when a connection is made), on the override port if the cluster has one. The
// endpoints made are kept for the config's life, so their counters and connections last.
function originalDestination(
  model: ClusterModel,
  d: { header: string; portOverride?: number },
  make: (e: EndpointModel) => Endpoint,
  now: () => number,
): ClusterRuntime['pick'] {
  const made = new Map<string, Endpoint>();
  return (_hash, header) => {
    const dest = header?.(d.header);
    const m = dest ? /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(dest) : null;
    if (!m) return undefined;
    const host = m[1].replace(/^\[(.*)\]$/, '$1').toLowerCase();
    const port = d.portOverride ?? (m[2] ? Number(m[2]) : 80);
    if (!(port > 0 && port < 65536)) return undefined;
    const key = `${host}:${port}`;
    let e = made.get(key);
    if (!e) {
      // a bound on what an application can make the sidecar remember
      if (made.size >= 1024) made.clear();
      made.set(key, (e = make({ address: host, port, healthy: true, labels: {} })));
    }
    return model.outlier && isEjected(e.stats, now()) ? undefined : e;
  };
}

/** A cluster's connection settings as dispatchers take them, named by their content. */
function connectionOptions(model: ClusterModel): ConnectionOptions | undefined {
  const c = model.connection;
  return c ? { ...c, key: JSON.stringify(c) } : undefined;
}

function compileInbound(l: InboundListenerModel): InboundRuntime {
  return { plaintextAllowed: l.plaintext, authorizer: compileAuthorizer(l.rbac), setClientCert: l.setClientCert };
}

function picker(model: ClusterModel, endpoints: Endpoint[], stats: ClusterStats, random: Random, now: () => number): ClusterRuntime['pick'] {
  const usable = (e: Endpoint) => !isEjected(e.stats, now());
  if (model.lbPolicy === 'RING_HASH' || model.lbPolicy === 'MAGLEV') {
    const ring = new HashRing(endpoints, (e) => `${e.address}:${e.port}`, (e) => e.weight);
    // no hash (the route has no hash policy, or nothing to hash on): Envoy picks at random
    return (h) => ring.pick(h ?? Math.floor(random() * 2 ** 32), model.outlier ? usable : undefined);
  }
  const weighted = endpoints.some((e) => e.weight !== endpoints[0].weight);
  const lb = model.lbPolicy === 'CLUSTER_PROVIDED' ? 'ROUND_ROBIN' : model.lbPolicy;
  const plain = makeBalancer<Endpoint>(lb, random, weighted);
  const balance = model.slowStart && (lb === 'ROUND_ROBIN' || lb === 'LEAST_REQUEST') ? slowStartBalancer(model.slowStart, lb, plain, now, () => stats.firstEndpointsAt) : plain;
  if (!model.outlier) return () => balance(endpoints);
  const panic = model.panicThresholdPercent ?? 50;
  return () => {
    const live = endpoints.filter(usable);
    // too few usable: Envoy's panic mode spreads over all of them; with the threshold at 0, none is picked (UH)
    if (endpoints.length && (live.length * 100) / endpoints.length < panic) return balance(endpoints);
    return balance(live);
  };
}
