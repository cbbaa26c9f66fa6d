// Holds the snapshot in force and rebuilds it when the config or the set of
// registered workloads changes. Rebuilds are coalesced into one per tick.
import { EventEmitter } from 'node:events';
import type { MeshConfig } from '../model/types';
import { emptyMeshConfig } from '../model/types';
import type { Workload } from '../model/workload';
import { Snapshot, type SnapshotOptions } from './snapshot';
import { checkServable } from './sidecar-check';
import { checkMessageSizes } from './message-size';

export class SnapshotCache extends EventEmitter {
  private config: MeshConfig = emptyMeshConfig();
  private readonly workloads = new Map<string, Workload>();
  private current: Snapshot;
  private generation = 0;
  private scheduled = false;
  /** the workloads changed since `current` was built */
  private stale = false;
  /** when the change being built was first seen, for push-convergence figures */
  changedAt = 0;

  constructor(private readonly opts: SnapshotOptions) {
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
  setConfig(config: MeshConfig, changedAt = Date.now()): void {
    // built and checked here, so such a config is refused at load, not later by a NACK
    const next = new Snapshot(this.generation + 1, config, [...this.workloads.values()], this.opts);
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
    this.workloads.set(key, w);
    this.schedule(true);
  }

  removeWorkload(key: string): void {
    if (this.workloads.delete(key)) this.schedule(true);
  }

  private schedule(rebuild: boolean, changedAt = Date.now()): void {
    if (!this.changedAt || changedAt < this.changedAt) this.changedAt = changedAt;
    this.stale ||= rebuild;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const changedAt = this.changedAt;
      this.changedAt = 0;
      if (this.stale) {
        this.stale = false;
        try {
          // the config was translated for every kind of caller when it was set
          this.current = new Snapshot(++this.generation, this.config, [...this.workloads.values()], this.opts, false);
        } catch (err) {
          // A config that validates but cannot be translated must not take the mesh down.
          this.emit('buildError', err);
          return;
        }
      }
      this.emit('snapshot', this.current, changedAt);
    });
  }
}
