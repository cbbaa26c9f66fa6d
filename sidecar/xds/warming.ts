// Make before break. A route configuration is put in force only once every cluster it
// sends traffic to is known and has its endpoints (or after a grace period, so a cluster
// that never warms cannot freeze routing); a cluster the control plane removed stays
// while a route in force still sends traffic to it. So adding or removing a subset under
// load never leaves a request with a route to a cluster that has no endpoints.
import type { ClusterModel, EndpointsModel, RouteConfigModel } from '../../proto/decode/model';

export const WARMING_GRACE_MS = 5000;

export interface WarmingState {
  clusters: Map<string, ClusterModel>;
  endpoints: Map<string, EndpointsModel>;
  routes: Map<string, RouteConfigModel>;
}

export function clustersOf(rc: RouteConfigModel): Set<string> {
  const out = new Set<string>();
  for (const vh of rc.virtualHosts) {
    for (const r of vh.routes) {
      for (const c of r.clusters) out.add(c.name);
      for (const m of r.mirrors) out.add(m.cluster);
    }
  }
  return out;
}

export class Warming {
  private readonly pending = new Map<string, { rc: RouteConfigModel; since: number }>();
  /** clusters the control plane removed that routes in force still use */
  private readonly draining = new Map<string, ClusterModel>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A route configuration arrived: in force now if it is warm, else when it is. */
  offer(s: WarmingState, rc: RouteConfigModel): void {
    this.pending.set(rc.name, { rc, since: this.now() });
    this.promote(s);
  }

  /** Subscriptions dropped a route configuration. */
  forget(name: string): void {
    this.pending.delete(name);
  }

  /** The clusters of a SotW response replaced the old set: keep the ones still routed to. */
  clustersReplaced(s: WarmingState, removed: Map<string, ClusterModel>): void {
    for (const [name, c] of removed) this.draining.set(name, c);
    this.settle(s);
  }

  /** Whether anything is still waiting, and the earliest time it will be forced. */
  get waiting(): number | undefined {
    let t: number | undefined;
    for (const p of this.pending.values()) t = Math.min(t ?? Infinity, p.since + WARMING_GRACE_MS);
    return t;
  }

  /** Re-check pending routes (after CDS or EDS arrived, or the grace ran out). */
  promote(s: WarmingState): boolean {
    let changed = false;
    for (const [name, p] of this.pending) {
      const cold = [...clustersOf(p.rc)].some((c) => !s.clusters.has(c) || (!s.clusters.get(c)!.discovery && !s.endpoints.has(c)));
      if (cold && this.now() - p.since < WARMING_GRACE_MS) continue;
      s.routes.set(name, p.rc);
      this.pending.delete(name);
      changed = true;
    }
    this.settle(s);
    return changed;
  }

  private settle(s: WarmingState): void {
    const used = new Set<string>();
    for (const rc of s.routes.values()) for (const c of clustersOf(rc)) used.add(c);
    for (const [name, c] of this.draining) {
      if (used.has(name)) {
        if (!s.clusters.has(name)) s.clusters.set(name, c);
      } else {
        this.draining.delete(name);
        s.clusters.delete(name);
      }
    }
  }

  /** A cluster the control plane sent again is no longer draining. */
  revived(name: string): void {
    this.draining.delete(name);
  }
}
