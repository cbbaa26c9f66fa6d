// What the sidecar holds of xDS, whichever protocol brought it: each resource decoded and
// applied on its own (one that cannot be is named in the NACK and the last good one is
// kept), routes put in force through warming (make before break), and the names EDS and
// RDS must subscribe to, followed from the clusters and listeners in force.
import type { AnyMessage } from '../../proto/any';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import { decoders, nameOf, DecodeError } from '../../proto/decode/decode';
import type { ClusterModel, EndpointsModel, ListenerModel, RouteConfigModel } from '../../proto/decode/model';
import { Warming } from './warming';

export interface Resources {
  clusters: Map<string, ClusterModel>;
  endpoints: Map<string, EndpointsModel>;
  listeners: Map<string, ListenerModel>;
  routes: Map<string, RouteConfigModel>;
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

export const ORDER: XdsTypeUrl[] = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];
const FIELD: Record<XdsTypeUrl, keyof Resources> = {
  [TypeUrl.Cluster]: 'clusters',
  [TypeUrl.ClusterLoadAssignment]: 'endpoints',
  [TypeUrl.Listener]: 'listeners',
  [TypeUrl.RouteConfiguration]: 'routes',
};

type Model = ClusterModel | EndpointsModel | ListenerModel | RouteConfigModel;

export class ResourceStore {
  readonly resources: Resources = { clusters: new Map(), endpoints: new Map(), listeners: new Map(), routes: new Map() };
  readonly status = new Map<XdsTypeUrl, TypeStatus>(
    ORDER.map((t) => [t, { version: '', nonce: '', names: [], resourceVersions: new Map(), received: false }]),
  );
  private readonly warming = new Warming();
  private warmTimer?: NodeJS.Timeout;

  /** @param onWarmed a route waiting for its clusters went in force when its grace ran out */
  constructor(private readonly onWarmed: () => void) {}

  /**
   * Applies the resources of one response. `removed`: the names a Delta response removes;
   * undefined for State of the World, where a listener or cluster missing from the
   * response is gone. Returns what could not be applied, each naming its resource and field.
   */
  apply(type: XdsTypeUrl, incoming: Incoming[], removed?: string[]): string[] {
    const st = this.status.get(type)!;
    const decode = decoders[type] as (a: AnyMessage) => Model;
    const target = this.resources[FIELD[type]] as Map<string, unknown>;
    const errors: string[] = [];
    const seen = new Set<string>();
    incoming.forEach(({ any, version }, i) => {
      try {
        const m = decode(any);
        const name = nameOf(m);
        seen.add(name);
        // routes go in force once the clusters they use are warm (make before break)
        if (type === TypeUrl.RouteConfiguration) this.warming.offer(this.resources, m as RouteConfigModel);
        else target.set(name, m);
        if (type === TypeUrl.Cluster) this.warming.revived(name);
        st.resourceVersions.set(name, version);
      } catch (err) {
        if (err instanceof DecodeError) seen.add(err.resource);
        errors.push(err instanceof DecodeError ? err.message : `resources[${i}]: ${(err as Error).message}`);
      }
    });
    const gone = removed ?? (type === TypeUrl.Listener || type === TypeUrl.Cluster ? [...target.keys()].filter((n) => !seen.has(n)) : []);
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
        if (type === TypeUrl.RouteConfiguration) this.warming.forget(name);
        target.delete(name);
        st.resourceVersions.delete(name);
      }
    }
    if (type === TypeUrl.Cluster || type === TypeUrl.ClusterLoadAssignment) this.warming.promote(this.resources);
    this.scheduleWarming();
    st.received = true;
    return errors;
  }

  /** The names EDS or RDS must subscribe to now: what the clusters and listeners in force reference. */
  referenced(type: typeof TypeUrl.ClusterLoadAssignment | typeof TypeUrl.RouteConfiguration): string[] {
    // only EDS clusters get their endpoints by EDS (DNS and ORIGINAL_DST ones carry them or need none)
    if (type === TypeUrl.ClusterLoadAssignment) return [...this.resources.clusters.values()].filter((c) => !c.discovery).map((c) => c.name);
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
    if (type === TypeUrl.RouteConfiguration) for (const n of removed) this.warming.forget(n);
    st.names = want;
    const target = this.resources[FIELD[type]] as Map<string, unknown>;
    for (const n of [...target.keys()]) if (!wanted.has(n)) { target.delete(n); st.resourceVersions.delete(n); }
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
