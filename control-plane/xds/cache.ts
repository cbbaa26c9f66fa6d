// Holds the snapshot in force and rebuilds it when the config or the set of
// registered workloads changes. Changes are debounced as istiod does
// (PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX): a burst of them (sidecars reconnecting,
// an editor saving twice) becomes one rebuild and one push, made from the state at the
// end of the burst, so the last change is never lost; a steady stream of changes is
// still pushed at least every `maxMs`.
//
// A service known only from its sidecars outlives its last one by a grace period (Istio's
// services come from Kubernetes and never leave with a pod): a sidecar restarting, or a
// tenth of the mesh reconnecting, changes only endpoint sets, not every proxy's clusters and
// route table (at 2,000 sidecars, 1,458 CDS and 482 RDS responses for one reconnect wave).
// And a sidecar whose stream ends without a goodbye (a network blip, a control plane
// restart, a crash) stays an endpoint for a shorter grace: one that reconnects within it
// (its service's, with the same workload id or inbound address) takes its own place and
// nothing is pushed at all; one that said goodbye as it drains (server.ts) leaves at once.
import { EventEmitter } from 'node:events';
import type { MeshConfig } from '../model/types';
import { emptyMeshConfig } from '../model/types';
import type { Workload } from '../model/workload';
import { Snapshot, type DepartedService, type SnapshotOptions } from './snapshot';
import { checkServable } from './sidecar-check';
import { checkMessageSizes } from './message-size';

export interface Debounce {
  /** quiet time after a change before the push; 0: at the next turn of the event loop */
  afterMs: number;
  /** the longest a change waits while others keep coming */
  maxMs: number;
}

/** Timers, injectable so that tests of the debounce are deterministic. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

type RealHandle = { timeout: NodeJS.Timeout } | { immediate: NodeJS.Immediate };

export const realClock: Clock = {
  now: () => Date.now(),
  // 0 keeps the old behaviour: coalesced within one turn of the event loop
  setTimeout: (fn, ms): RealHandle => (ms > 0 ? { timeout: setTimeout(fn, ms) } : { immediate: setImmediate(fn) }),
  // each cleared by its own kind: clearImmediate given a Timeout would unlink it from a list it is not on
  clearTimeout: (h) => {
    const handle = h as RealHandle;
    if ('timeout' in handle) clearTimeout(handle.timeout);
    else clearImmediate(handle.immediate);
  },
};

export const NO_DEBOUNCE: Debounce = { afterMs: 0, maxMs: 0 };

/** How long what a sidecar brought outlives it; 0 (the default): not at all. */
export interface Graces {
  /** a service known only from sidecars, after the last one left */
  serviceMs?: number;
  /** a sidecar's endpoint, after its stream ended without a goodbye */
  endpointMs?: number;
}

export class SnapshotCache extends EventEmitter {
  private config: MeshConfig = emptyMeshConfig();
  private readonly workloads = new Map<string, Workload>();
  /** services whose last sidecar left, by `namespace/service`, kept until `until` */
  private readonly departed = new Map<string, DepartedService & { until: number }>();
  /** registered sidecars per `namespace/service` */
  private readonly perService = new Map<string, number>();
  /** workloads whose stream ended without a goodbye, by stream key: kept until then */
  private readonly lost = new Map<string, number>();
  private expiry?: unknown;
  private current: Snapshot;
  private generation = 0;
  private timer?: unknown;
  /** when the first change of the burst being debounced came */
  private burstStart = 0;
  /** the workloads changed since `current` was built */
  private stale = false;
  /** when the change being built was first seen, for push-convergence figures */
  changedAt = 0;

  constructor(
    private readonly opts: SnapshotOptions,
    private readonly debounce: Debounce = NO_DEBOUNCE,
    private readonly clock: Clock = realClock,
    private readonly graces: Graces = {},
  ) {
    super();
    this.current = new Snapshot(0, this.config, [], opts);
  }

  get snapshot(): Snapshot {
    return this.current;
  }

  /**
   * Throws, leaving the config in force, when the new config cannot be translated or
   * translates to something a sidecar would refuse (UnservableConfigError) or could not
   * receive in one message (OversizedConfigError).
   * @param changedAt when the config changed (its file was written), for push convergence
   */
  setConfig(config: MeshConfig, changedAt = this.clock.now()): void {
    // built and checked here, so such a config is refused at load, not later by a NACK
    const next = new Snapshot(this.generation + 1, config, [...this.workloads.values()], this.opts, true, undefined, [...this.departed.values()]);
    // sizes first: a config too large to send is refused without decoding all of it
    checkMessageSizes(next);
    checkServable(next);
    this.generation++;
    this.config = config;
    this.current = next;
    this.schedule(false, changedAt);
  }

  /** Register a sidecar's workload under its stream key; a second stream of the same key replaces it. */
  addWorkload(key: string, w: Workload): void {
    const before = this.workloads.get(key);
    this.workloads.set(key, w);
    const k = serviceKey(w);
    this.perService.set(k, (this.perService.get(k) ?? 0) + 1);
    this.departed.delete(k);
    if (before) this.left(before);
    // the same sidecar back (or its successor on the same address): it takes its own place
    for (const lostKey of this.lost.keys()) {
      const o = this.workloads.get(lostKey);
      if (lostKey === key || !o || serviceKey(o) !== k || (o.id !== w.id && o.inboundAddress !== w.inboundAddress)) continue;
      this.lost.delete(lostKey);
      this.workloads.delete(lostKey);
      this.left(o);
    }
    this.schedule(true);
  }

  /** A sidecar that said goodbye (or was refused): its endpoint leaves now. */
  removeWorkload(key: string): void {
    const w = this.workloads.get(key);
    if (!w) return;
    this.workloads.delete(key);
    this.lost.delete(key);
    this.left(w);
    this.schedule(true);
  }

  /** A sidecar whose stream ended without a goodbye: its endpoint stays for the endpoint grace. */
  loseWorkload(key: string): void {
    if (!this.workloads.has(key) || this.lost.has(key)) return;
    const ms = this.graces.endpointMs ?? 0;
    if (ms <= 0) return this.removeWorkload(key);
    this.lost.set(key, this.clock.now() + ms);
    this.armExpiry();
  }

  // the last sidecar of its service gone: the service stays for the grace period
  private left(w: Workload): void {
    const k = serviceKey(w);
    const n = (this.perService.get(k) ?? 1) - 1;
    if (n > 0) return void this.perService.set(k, n);
    this.perService.delete(k);
    const ms = this.graces.serviceMs ?? 0;
    if (ms <= 0) return;
    this.departed.set(k, { service: w.service, namespace: w.namespace, until: this.clock.now() + ms });
    this.armExpiry();
  }

  /** services kept past their last sidecar now */
  get departedServices(): DepartedService[] {
    return [...this.departed.values()].map(({ service, namespace }) => ({ service, namespace }));
  }

  // one timer, for the earliest grace to run out: an endpoint whose grace is over leaves (and
  // maybe starts its service's), a service whose grace is over leaves
  private armExpiry(): void {
    if (this.expiry !== undefined) this.clock.clearTimeout(this.expiry);
    this.expiry = undefined;
    if (!this.departed.size && !this.lost.size) return;
    let next = Infinity;
    for (const d of this.departed.values()) next = Math.min(next, d.until);
    for (const until of this.lost.values()) next = Math.min(next, until);
    this.expiry = this.clock.setTimeout(() => {
      this.expiry = undefined;
      const now = this.clock.now();
      for (const [key, until] of this.lost) if (until <= now) this.removeWorkload(key);
      let gone = false;
      for (const [k, d] of this.departed) {
        if (d.until <= now) {
          this.departed.delete(k);
          gone = true;
        }
      }
      if (gone) this.schedule(true);
      this.armExpiry();
    }, Math.max(0, next - this.clock.now()));
  }

  private schedule(rebuild: boolean, changedAt = this.clock.now()): void {
    if (!this.changedAt || changedAt < this.changedAt) this.changedAt = changedAt;
    this.stale ||= rebuild;
    const now = this.clock.now();
    if (this.timer === undefined) this.burstStart = now;
    else this.clock.clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.debounce.afterMs, this.burstStart + this.debounce.maxMs - now));
    this.timer = this.clock.setTimeout(() => this.flush(), wait);
  }

  /** Builds from the state now (every change so far), and pushes. */
  private flush(): void {
    this.timer = undefined;
    const changedAt = this.changedAt;
    this.changedAt = 0;
    if (this.stale) {
      this.stale = false;
      try {
        // the config was translated for every kind of caller when it was set
        this.current = new Snapshot(++this.generation, this.config, [...this.workloads.values()], this.opts, false, this.current, [...this.departed.values()]);
      } catch (err) {
        // A config that validates but cannot be translated must not take the mesh down.
        this.emit('buildError', err);
        return;
      }
    }
    this.emit('snapshot', this.current, changedAt);
  }
}

const serviceKey = (w: { service: string; namespace: string }): string => `${w.namespace}/${w.service}`;
