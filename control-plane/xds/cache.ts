// Holds the snapshot in force and rebuilds it when the config or the set of
// registered workloads changes. Rebuilds are coalesced into one per tick.
import { EventEmitter } from 'node:events';
import type { MeshConfig } from '../model/types';
import { emptyMeshConfig } from '../model/types';
import type { WorkloadInfo } from '../../proto/node-meta';
import { Snapshot } from './snapshot';

export class SnapshotCache extends EventEmitter {
  private config: MeshConfig = emptyMeshConfig();
  private readonly workloads = new Map<string, WorkloadInfo>();
  private current: Snapshot;
  private generation = 0;
  private scheduled = false;
  /** when the change being built was first seen, for push-convergence figures */
  changedAt = 0;

  constructor(private readonly domain: string) {
    super();
    this.current = new Snapshot(0, this.config, [], domain);
  }

  get snapshot(): Snapshot {
    return this.current;
  }

  /** Throws, leaving the config in force, when the new config cannot be translated. */
  setConfig(config: MeshConfig): void {
    new Snapshot(-1, config, [...this.workloads.values()], this.domain);
    this.config = config;
    this.schedule();
  }

  /** Register a sidecar's workload under its stream key; a second stream of the same key replaces it. */
  addWorkload(key: string, w: WorkloadInfo): void {
    this.workloads.set(key, w);
    this.schedule();
  }

  removeWorkload(key: string): void {
    if (this.workloads.delete(key)) this.schedule();
  }

  private schedule(): void {
    if (!this.changedAt) this.changedAt = Date.now();
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const changedAt = this.changedAt;
      this.changedAt = 0;
      try {
        this.current = new Snapshot(++this.generation, this.config, [...this.workloads.values()], this.domain);
      } catch (err) {
        // A config that validates but cannot be translated must not take the mesh down.
        this.emit('buildError', err);
        return;
      }
      this.emit('snapshot', this.current, changedAt);
    });
  }
}
