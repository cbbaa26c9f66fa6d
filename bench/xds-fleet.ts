// The simulated sidecars of `make bench-xds`, spread over worker processes (bench/xds-worker.ts),
// as one fleet: commands go to every worker, status comes back merged.
import * as path from 'node:path';
import { forkProc, type Proc } from './util';
import type { Command, Reply, SimSpec, SimStatus } from './xds-worker';

export class Fleet {
  private readonly workers: Proc[];
  private seq = 0;
  private readonly pending = new Map<number, { left: number; status: SimStatus[]; drops: Map<string, number>; done: (r: { status: SimStatus[]; drops: Map<string, number> }) => void }>();
  /** sim id -> worker */
  private readonly home = new Map<number, number>();

  constructor(workers: number) {
    this.workers = Array.from({ length: workers }, (_, i) => forkProc(`xds-sims-${i}`, path.join(__dirname, 'xds-worker.js')));
    for (const w of this.workers) {
      w.child.on('message', (r: Reply) => {
        const p = this.pending.get(r.seq);
        if (!p) return;
        if (r.status) p.status.push(...r.status);
        for (const [why, n] of r.drops ?? []) p.drops.set(why, (p.drops.get(why) ?? 0) + n);
        if (--p.left === 0) {
          this.pending.delete(r.seq);
          p.done({ status: p.status, drops: p.drops });
        }
      });
    }
  }

  private send(c: Command, to = this.workers.map((_, i) => i)): Promise<{ status: SimStatus[]; drops: Map<string, number> }> {
    const seq = ++this.seq;
    return new Promise((done) => {
      if (!to.length) return done({ status: [], drops: new Map() });
      this.pending.set(seq, { left: to.length, status: [], drops: new Map(), done });
      for (const i of to) this.workers[i].child.send({ ...c, seq });
    });
  }

  async init(target: string, rootPem: string): Promise<void> {
    await this.send({ cmd: 'init', target, rootPem });
  }

  /** Sidecars are dealt to the workers in turn. */
  async add(sims: SimSpec[]): Promise<void> {
    const by = this.workers.map(() => [] as SimSpec[]);
    for (const s of sims) {
      const w = this.home.get(s.id) ?? s.id % this.workers.length;
      this.home.set(s.id, w);
      by[w].push(s);
    }
    await Promise.all(by.map((list, w) => (list.length ? this.send({ cmd: 'add', sims: list }, [w]) : undefined)));
  }

  async expect(replicas: Map<string, number>): Promise<void> {
    await this.send({ cmd: 'expect', replicas: [...replicas] });
  }

  async markers(m: { route?: string; endpoint?: string }): Promise<void> {
    await this.send({ cmd: 'markers', markers: m });
  }

  async connect(ids?: number[]): Promise<void> {
    if (!ids) await this.send({ cmd: 'connect' });
    else await this.perWorker(ids, (list, w) => this.send({ cmd: 'connect', ids: list }, [w]));
  }

  async reconnect(ids: number[]): Promise<void> {
    await this.perWorker(ids, (list, w) => this.send({ cmd: 'reconnect', ids: list }, [w]));
  }

  async status(): Promise<{ status: SimStatus[]; drops: Map<string, number> }> {
    return this.send({ cmd: 'status' });
  }

  async stop(): Promise<void> {
    await this.send({ cmd: 'stop' });
    await Promise.all(this.workers.map((w) => w.stop()));
  }

  private async perWorker(ids: number[], fn: (list: number[], w: number) => Promise<unknown>): Promise<void> {
    const by = new Map<number, number[]>();
    for (const id of ids) {
      const w = this.home.get(id)!;
      by.set(w, [...(by.get(w) ?? []), id]);
    }
    await Promise.all([...by].map(([w, list]) => fn(list, w)));
  }
}
