// Resident memory of the soak's processes: VmRSS from /proc/<pid>/status, sampled over
// the run, and the growth from a window after warm-up to the last window. Growth is that
// of each window's floor, its lowest sample: what stays resident after the collections,
// which is where a leak shows. The median and the peak follow the garbage made between
// collections instead: on a shared machine a sidecar's swing between 120 and 175 MiB
// within one minute, and its median moved by 9% in a run whose heap snapshots, 7.5 minutes
// apart, showed 0.6 MiB more retained (all of it compiled code).
import * as fs from 'node:fs';

/** VmRSS in MiB, or undefined once the process is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface Sample {
  /** seconds since the load started */
  t: number;
  rss: (number | undefined)[];
}

export interface Windows {
  /** [from, to] seconds of the window after warm-up, and of the last one */
  early: [number, number];
  late: [number, number];
}

/**
 * Minute 2 against the last minute on a 10-minute run; on a shorter one, thirds of it
 * (the first third is warm-up), so SOAK_SECONDS=90 compares 30-60 s with 60-90 s.
 */
export function windowsFor(seconds: number): Windows {
  const w = Math.min(60, Math.round(seconds / 3));
  return { early: [w, 2 * w], late: [seconds - w, seconds] };
}

export interface WindowRss {
  median: number;
  /** the floor: what stays resident after collections, where a leak shows first */
  min: number;
  max: number;
  samples: number;
}

export interface Growth {
  early: WindowRss;
  late: WindowRss;
  /** of the floors: late / early - 1 */
  growth: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** RSS of process `i` in both windows: [from, to) for the early one, (from, to] for the last. */
export function growthOf(samples: Sample[], i: number, w: Windows): Growth | undefined {
  const of = (keep: (t: number) => boolean) => samples.filter((s) => keep(s.t)).map((s) => s.rss[i]).filter((v): v is number => v !== undefined);
  const early = of((t) => t >= w.early[0] - 0.5 && t < w.early[1] - 0.5);
  const late = of((t) => t > w.late[0] + 0.5 && t <= w.late[1] + 0.5);
  if (!early.length || !late.length) return undefined;
  const sum = (xs: number[]): WindowRss => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), samples: xs.length });
  const [e, l] = [sum(early), sum(late)];
  return { early: e, late: l, growth: l.min / e.min - 1 };
}
