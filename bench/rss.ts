// Resident memory of a proxy: VmRSS from /proc/<pid>/status, summed over the process and
// its descendants (a --concurrency sidecar is a primary and its cluster workers; nginx a
// master and its worker), and a sampler that keeps the peak while a run goes on.
// Summing RSS counts pages shared between processes (code, the forked workers' copy-on-write
// heap) once per process: the sum is what `ps` and most dashboards show, an upper bound.
import * as fs from 'node:fs';
import { processTree } from './util';

export interface Rss {
  /** the whole tree, MB */
  totalMb: number;
  /** each process of the tree, root first, MB */
  eachMb: number[];
}

/** VmRSS of one process in MB, or undefined when it is gone. */
export function vmRssMb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function treeRss(root: number): Rss {
  const eachMb = processTree(root).map((p) => vmRssMb(p) ?? 0);
  return { totalMb: eachMb.reduce((a, b) => a + b, 0), eachMb };
}

/** Samples the trees every `everyMs` until stopped; stop() gives each tree's peak total. */
export function sampleRss(roots: number[], everyMs = 250): { stop(): Rss[] } {
  // the tree is found once (a /proc scan) and its members read each time
  const trees = roots.map((r) => processTree(r));
  const peak: Rss[] = roots.map(() => ({ totalMb: 0, eachMb: [] }));
  const take = () =>
    trees.forEach((pids, i) => {
      const eachMb = pids.map((p) => vmRssMb(p) ?? 0);
      const totalMb = eachMb.reduce((a, b) => a + b, 0);
      if (totalMb > peak[i].totalMb) peak[i] = { totalMb, eachMb };
    });
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak;
    },
  };
}

/**
 * RSS once idle memory has settled: V8 returns what starting left behind only after its
 * memory reducer has seen the process idle for a while (it first looks after 8 s), so a
 * reading right after start shows garbage, not what an idle proxy holds. Read every second,
 * for at least `minMs`, then until no tree has shrunk by more than 1 MB for three readings,
 * or `maxMs` has passed.
 */
export async function settledRss(roots: number[], minMs = 15_000, maxMs = 40_000): Promise<Rss[]> {
  const start = Date.now();
  let last = roots.map(treeRss);
  let steady = 0;
  while ((steady < 3 || Date.now() - start < minMs) && Date.now() - start < maxMs) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = roots.map(treeRss);
    steady = now.every((r, i) => r.totalMb > last[i].totalMb - 1) ? steady + 1 : 0;
    last = now;
  }
  return last;
}
