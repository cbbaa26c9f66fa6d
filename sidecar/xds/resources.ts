// What the sidecar holds of xDS, whichever protocol brought it: each resource decoded and
// applied on its own (one that cannot be is named in the NACK and the last good one is
// kept), routes put in force through warming (make before break), and the names EDS and
// RDS must subscribe to, followed from the clusters and listeners in force. A route
// configuration with `vhds` (Delta xDS) is put in force with its inline virtual hosts and
// the VirtualHost resources named for it (`<its name>/<host>`), through the same warming.
// A Delta push that came in parts (proto/delta-parts.ts) is put in force at its last part,
// all of it at once: a route table is never in force with only some of its virtual hosts.
import type { AnyMessage } from '../../proto/any';
import { TypeUrl, shortName, type XdsTypeUrl } from '../../proto/type-urls';
import { decoders, decodeVirtualHost, nameOf, DecodeError } from '../../proto/decode/decode';
import { ENVOY_MAX_DIRECT_RESPONSE_BODY } from '../../proto/decode/decode-route-action';
import type { ClusterModel, EndpointsModel, ListenerModel, RouteConfigModel, VirtualHostResourceModel } from '../../proto/decode/model';
import { Warming } from './warming';

/** What the runtime config is built from. */
export interface InForce {
  clusters: Map<string, ClusterModel>;
  endpoints: Map<string, EndpointsModel>;
  listeners: Map<string, ListenerModel>;
  /** route configurations in force (with their VHDS virtual hosts) */
  routes: Map<string, RouteConfigModel>;
}

export interface Resources extends InForce {
  /** VirtualHost resources (VHDS), by resource name: in force as part of their route configuration */
  virtualHosts: Map<string, VirtualHostResourceModel>;
}

export interface TypeStatus {
  version: string;
  nonce: string;
  names: string[];
  /** resource name -> version it was accepted at */
  resourceVersions: Map<string, string>;
  received: boolean;
  lastError?: string;
}

/** One resource of a response, with the version it is accepted at. */
export interface Incoming {
  any: AnyMessage;
  version: string;
}

export const ORDER: XdsTypeUrl[] = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.VirtualHost];
const FIELD: Record<XdsTypeUrl, keyof Resources> = {
  [TypeUrl.Cluster]: 'clusters',
  [TypeUrl.ClusterLoadAssignment]: 'endpoints',
  [TypeUrl.Listener]: 'listeners',
  [TypeUrl.RouteConfiguration]: 'routes',
  [TypeUrl.VirtualHost]: 'virtualHosts',
};

type Model = ClusterModel | EndpointsModel | ListenerModel | RouteConfigModel | VirtualHostResourceModel;

interface Decoded {
  name: string;
  model: Model;
  version: string;
}

/** One response (or part of a push) decoded, not yet applied. */
interface Part {
  decoded: Decoded[];
  /** every resource named in it, decoded or not (State of the World: what is not named is gone) */
  seen: Set<string>;
  errors: string[];
  removed?: string[];
}

/**
 * The most parts of one push held for its last (proto/delta-parts.ts): the control plane
 * refuses a config whose whole route table is over one message (message-size.ts), so its
 * largest push, split, is two or three parts; this bounds what a control plane that never
 * sends a last part could make a sidecar hold (16 messages of 4 MiB).
 */
export const MAX_HELD_PARTS = 16;

/** What the sidecar subscribes to of VirtualHost: all of them, over the same Delta stream. */
export const VHDS_WILDCARD = ['*'];

export class ResourceStore {
  readonly resources: Resources = { clusters: new Map(), endpoints: new Map(), listeners: new Map(), routes: new Map(), virtualHosts: new Map() };
  /** route configurations with `vhds` as they came, without the virtual hosts that come by VHDS */
  private readonly vhdsRoutes = new Map<string, RouteConfigModel>();
  readonly status = new Map<XdsTypeUrl, TypeStatus>(
    ORDER.map((t) => [t, { version: '', nonce: '', names: [], resourceVersions: new Map(), received: false }]),
  );
  private readonly warming = new Warming();
  /** parts of a Delta push held until its last part (apply), per type */
  private readonly held = new Map<XdsTypeUrl, Part[]>();
  private warmTimer?: NodeJS.Timeout;

  /** @param onWarmed a route waiting for its clusters went in force when its grace ran out */
  constructor(private readonly onWarmed: () => void) {}

  /**
   * Applies the resources of one response. `removed`: the names a Delta response removes;
   * undefined for State of the World, where a listener or cluster missing from the
   * response is gone. `more`: a part of a Delta push after which more follow
   * (proto/delta-parts.ts): its resources are decoded (and what cannot be is returned now,
   * for this part's NACK) but held, and the push is applied whole with its last part, so
   * that a route table is never in force with only some of its virtual hosts.
   * Returns what could not be applied, each naming its resource and field.
   */
  apply(type: XdsTypeUrl, incoming: Incoming[], removed?: string[], more = false): string[] {
    const held = this.held.get(type);
    if (more && (held?.length ?? 0) + 1 >= MAX_HELD_PARTS) {
      // a push that never ends does not hold memory without end: it is refused, and what is in force stays
      this.held.delete(type);
      return [`a push of ${shortName[type]} in more than ${MAX_HELD_PARTS} parts: refused, the resources in force stay`];
    }
    const part = this.decode(type, incoming, removed);
    if (more) {
      if (held) held.push(part);
      else this.held.set(type, [part]);
      return part.errors;
    }
    this.held.delete(type);
    const parts = held ? [...held, part] : [part];
    this.put(
      type,
      parts.flatMap((p) => p.decoded),
      parts.flatMap((p) => [...p.seen]),
      removed && parts.flatMap((p) => p.removed ?? []),
    );
    return part.errors;
  }

  /** Held parts belong to the stream that sent them: a new stream starts without any. */
  dropHeld(): void {
    this.held.clear();
  }

  private decode(type: XdsTypeUrl, incoming: Incoming[], removed?: string[]): Part {
    const decode = type === TypeUrl.VirtualHost ? (a: AnyMessage) => decodeVirtualHost(a, this.maxDirectBody) : (decoders[type] as (a: AnyMessage) => Model);
    const part: Part = { decoded: [], seen: new Set(), errors: [], removed };
    incoming.forEach(({ any, version }, i) => {
      try {
        const model = decode(any);
        const name = nameOf(model);
        part.seen.add(name);
        part.decoded.push({ name, model, version });
      } catch (err) {
        if (err instanceof DecodeError) part.seen.add(err.resource);
        part.errors.push(err instanceof DecodeError ? err.message : `resources[${i}]: ${(err as Error).message}`);
      }
    });
    return part;
  }

  /** Puts what a response (all its parts) brought in force; `seen`: every name in it, decoded or not. */
  private put(type: XdsTypeUrl, decoded: Decoded[], seen: string[], removed?: string[]): void {
    const st = this.status.get(type)!;
    const target = this.resources[FIELD[type]] as Map<string, unknown>;
    /** route configurations whose VHDS virtual hosts changed */
    const recompose = new Set<string>();
    for (const { name, model, version } of decoded) {
      // routes go in force once the clusters they use are warm (make before break)
      if (type === TypeUrl.RouteConfiguration) this.offerRoute(model as RouteConfigModel);
      else target.set(name, model);
      if (type === TypeUrl.VirtualHost) recompose.add((model as VirtualHostResourceModel).routeConfigName);
      if (type === TypeUrl.Cluster) this.warming.revived(name);
      st.resourceVersions.set(name, version);
    }
    const named = new Set(seen);
    const gone = removed ?? (type === TypeUrl.Listener || type === TypeUrl.Cluster ? [...target.keys()].filter((n) => !named.has(n)) : []);
    if (type === TypeUrl.Cluster) {
      const dropped = new Map<string, ClusterModel>();
      for (const name of gone) {
        const c = this.resources.clusters.get(name);
        if (c) dropped.set(name, c);
        this.resources.clusters.delete(name);
        st.resourceVersions.delete(name);
      }
      if (dropped.size) this.warming.clustersReplaced(this.resources, dropped);
    } else {
      for (const name of gone) {
        if (type === TypeUrl.RouteConfiguration) this.forgetRoute(name);
        if (type === TypeUrl.VirtualHost) recompose.add(this.resources.virtualHosts.get(name)?.routeConfigName ?? '');
        target.delete(name);
        st.resourceVersions.delete(name);
      }
    }
    if (type === TypeUrl.VirtualHost) {
      // the first VHDS response puts in force the route configurations that waited for it
      const names = st.received ? recompose : new Set(this.vhdsRoutes.keys());
      for (const n of names) this.offerComposed(n);
    }
    if (type === TypeUrl.Cluster || type === TypeUrl.ClusterLoadAssignment) this.warming.promote(this.resources);
    this.scheduleWarming();
    st.received = true;
  }

  /** A route configuration as it came: with `vhds`, it waits for (and is put in force with) its VHDS virtual hosts. */
  private offerRoute(rc: RouteConfigModel): void {
    if (!rc.vhds) {
      this.vhdsRoutes.delete(rc.name);
      return this.warming.offer(this.resources, rc);
    }
    this.vhdsRoutes.set(rc.name, rc);
    // until the first VHDS response, the route configuration in force (if any) stays
    if (this.status.get(TypeUrl.VirtualHost)!.received) this.offerComposed(rc.name);
  }

  private forgetRoute(name: string): void {
    this.warming.forget(name);
    this.vhdsRoutes.delete(name);
  }

  /**
   * A route configuration with `vhds`, composed: its inline virtual hosts, then those VHDS
   * brought for it, by name. The order does not change routing (a virtual host is chosen by
   * its domains, exact before wildcards, and no two share a domain), only what is listed.
   */
  private offerComposed(name: string): void {
    const rc = this.vhdsRoutes.get(name);
    if (!rc) return;
    const prefix = `${name}/`;
    const vhds = [...this.resources.virtualHosts.values()].filter((v) => v.name.startsWith(prefix)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.warming.offer(this.resources, { name, virtualHosts: [...rc.virtualHosts, ...vhds.map((v) => v.vhost)] });
  }

  /** A VirtualHost's direct responses are bounded by its route configuration's max_direct_response_body_size_bytes, as Envoy bounds them. */
  private readonly maxDirectBody = (routeConfig: string): number => this.vhdsRoutes.get(routeConfig)?.vhds?.maxDirectBody ?? ENVOY_MAX_DIRECT_RESPONSE_BODY;

  /** The names EDS, RDS or VHDS must subscribe to now: what the clusters, listeners and route configurations held reference. */
  referenced(type: typeof TypeUrl.ClusterLoadAssignment | typeof TypeUrl.RouteConfiguration | typeof TypeUrl.VirtualHost): string[] {
    // only EDS clusters get their endpoints by EDS (DNS and ORIGINAL_DST ones carry them or need none)
    if (type === TypeUrl.ClusterLoadAssignment) return [...this.resources.clusters.values()].filter((c) => !c.discovery).map((c) => c.name);
    if (type === TypeUrl.VirtualHost) return this.vhdsRoutes.size ? VHDS_WILDCARD : [];
    return [...this.resources.listeners.values()].flatMap((l) => (l.kind === 'outbound' ? [l.routeConfigName] : []));
  }

  /**
   * Sets the names subscribed to of a type, dropping what is no longer referenced.
   * Returns the names added and removed, or undefined when nothing changed.
   */
  follow(type: XdsTypeUrl, names: string[]): { added: string[]; removed: string[] } | undefined {
    const st = this.status.get(type)!;
    const want = [...new Set(names)].sort();
    if (want.length === st.names.length && want.every((n, i) => n === st.names[i])) return undefined;
    const wanted = new Set(want);
    const had = new Set(st.names);
    const removed = st.names.filter((n) => !wanted.has(n));
    if (type === TypeUrl.RouteConfiguration) for (const n of removed) this.forgetRoute(n);
    st.names = want;
    const target = this.resources[FIELD[type]] as Map<string, unknown>;
    // a wildcard subscription (VHDS) keeps whatever it brought
    if (!wanted.has('*')) for (const n of [...target.keys()]) if (!wanted.has(n)) { target.delete(n); st.resourceVersions.delete(n); }
    if (type === TypeUrl.VirtualHost && !want.length) {
      st.received = false;
      this.held.delete(type);
    }
    return { added: want.filter((n) => !had.has(n)), removed };
  }

  stop(): void {
    clearTimeout(this.warmTimer);
  }

  // a route still waiting for its clusters is put in force when its grace runs out
  private scheduleWarming(): void {
    clearTimeout(this.warmTimer);
    const at = this.warming.waiting;
    if (at === undefined) return;
    this.warmTimer = setTimeout(() => {
      if (this.warming.promote(this.resources)) this.onWarmed();
      this.scheduleWarming();
    }, Math.max(0, at - Date.now()) + 1);
    this.warmTimer.unref();
  }
}
