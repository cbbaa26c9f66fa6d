// What the soak prints: the row every 10 s, then at the end one section per concern
// (requests, certificates, config edits, memory), each returning what it found wrong.
import type { SoakAppStats } from './soak-app';
import type { RotationWatch } from './soak-certs';
import type { Interval, SoakLoad } from './soak-load';
import { growthOf, windowsFor, type Sample } from './soak-memory';

/** a generation's observed split may stray this far from its weight (with enough responses to tell) */
const SPLIT_TOLERANCE = 0.05;

export interface Watched {
  label: string;
  pid: number;
  /** part of the mesh: its RSS growth can fail the soak */
  judged: boolean;
}

export interface Edit {
  generation: number;
  writtenAt: number;
  /** the control plane's config error after the edit ('' for none), once checked */
  cpError?: string;
}

export const pad = (s: string | number, n: number) => String(s).padStart(n);
const mib = (v: number | undefined) => (v === undefined ? 'gone' : v.toFixed(1));
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export class Table {
  constructor(
    private readonly procs: Watched[],
    private readonly everyS: number,
  ) {}

  header(): string {
    return (
      `${pad('t s', 5)} ${pad('req/s', 6)} ${pad('failed', 6)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('pending', 7)} ${pad('renewals', 9)} ${pad('config', 6)}  | RSS MiB: ` +
      this.procs.map((p) => pad(p.label, Math.max(7, p.label.length))).join(' ')
    );
  }

  /** `renewals`: each sidecar's so far, a/b; `config`: edits seen in a response / written */
  row(t: number, iv: Interval, failed: number, pending: number, renewals: string, config: string, s: Sample): string {
    const lat = [...iv.latenciesMs].sort((a, b) => a - b);
    return (
      `${pad(t, 5)} ${pad((iv.sent / this.everyS).toFixed(1), 6)} ${pad(failed, 6)} ${pad(percentile(lat, 50).toFixed(1), 7)} ${pad(percentile(lat, 99).toFixed(1), 7)} ${pad(pending, 7)} ${pad(renewals, 9)} ${pad(config, 6)}  |          ` +
      this.procs.map((p, i) => pad(mib(s.rss[i]), Math.max(7, p.label.length))).join(' ')
    );
  }
}

export function reportRequests(o: {
  load: SoakLoad;
  seconds: number;
  startedAt: number;
  drainedMs: number;
  app: SoakAppStats;
  /** access log lines per sidecar during the run */
  accessLog: string[];
}): string[] {
  const { load, app } = o;
  const failures: string[] = [];
  console.log(`\nrequests: ${load.sent} sent at ${(load.sent / o.seconds).toFixed(1)}/s, ${load.ok} ok, ${load.failed} failed (the last in-flight ones ended ${o.drainedMs} ms after the load stopped)`);
  for (const [kind, k] of Object.entries(load.byKind)) console.log(`  ${kind.padEnd(14)} ${pad(k.sent, 7)} sent ${pad(k.failed, 5)} failed`);
  console.log(`connections the load opened: ${load.opened.keepAlive} keep-alive, ${load.opened.fresh} one-request, ${load.opened.h2Sessions} h2 sessions`);
  console.log(`app: ${app.served} served (HTTP/1.1 ${app.h1}, h2c ${app.h2}), ${app.shortBodies} short bodies, ${app.withoutXfcc} without a SPIFFE XFCC`);
  console.log(`access log lines: ${o.accessLog.join(', ')}`);
  if (load.failed) {
    failures.push(`${load.failed} of ${load.sent} requests failed`);
    console.log('failures by reason:');
    for (const [reason, n] of [...load.failureReasons].sort((a, b) => b[1] - a[1])) console.log(`  ${pad(n, 6)}  ${reason}`);
    console.log('first failures:');
    for (const f of load.failures) console.log(`  ${((f.at - o.startedAt) / 1000).toFixed(1)} s  ${f.kind}: ${f.what}`);
  }
  if (app.served !== load.sent) console.log(`note: the app served ${app.served} requests for ${load.sent} sent${app.served > load.sent ? ' (more: some were sent twice, e.g. retried)' : ''}`);
  if (app.shortBodies || app.withoutXfcc) failures.push(`the app saw ${app.shortBodies} short bodies and ${app.withoutXfcc} requests without a SPIFFE XFCC`);
  return failures;
}

export function reportCertificates(o: { watches: RotationWatch[]; logLines: number[]; certTtl: string; seconds: number; minRotations: number }): string[] {
  const failures: string[] = [];
  console.log(`\ncertificate rotation (--cert-ttl ${o.certTtl}; at least ${o.minRotations} renewals expected in ${o.seconds} s):`);
  for (const [i, w] of o.watches.entries()) {
    console.log(
      `  ${w.name}: ${w.rotations} renewals (tandem_certificate_rotations_total), ${o.logLines[i]} "certificate … until" log lines, ${w.serials.size} serials seen at /certs; ` +
        `new handshakes on its inbound port showed the current certificate ${w.current} times, an older one ${w.stale} times`,
    );
    for (const e of w.probeErrors) console.log(`    probe error: ${e}`);
    console.log(`    the control plane's /debug/syncz (tandem status CERT EXPIRES) showed the expiry of the certificate held ${w.cpCurrent} times, another ${w.cpStale.length} times`);
    for (const e of w.cpStale.slice(0, 3)) console.log(`      ${e}`);
    if (w.cpStale.length) failures.push(`${w.name}: the control plane reported a certificate expiry other than the one held in ${w.cpStale.length} of ${w.cpStale.length + w.cpCurrent} samples`);
    if (w.rotations < o.minRotations) failures.push(`${w.name}: ${w.rotations} certificate renewals in ${o.seconds} s, at least ${o.minRotations} expected`);
    if (w.stale) failures.push(`${w.name}: ${w.stale} new handshakes were shown a certificate older than the one held`);
    if (w.current === 0) failures.push(`${w.name}: no TLS probe of its inbound port succeeded`);
  }
  return failures;
}

export function reportConfigEdits(edits: Edit[], load: SoakLoad, weightOf: (generation: number) => number): string[] {
  const failures: string[] = [];
  const applied = edits.filter((e) => load.byConfig.has(e.generation));
  const delays = applied.map((e) => load.byConfig.get(e.generation)!.firstAt - e.writtenAt).sort((a, b) => a - b);
  console.log(
    `\nconfig edits: ${edits.length} written, ${applied.length} seen in responses` +
      (delays.length ? `, the first response with the new generation came ${percentile(delays, 50)} ms (median) / ${delays[delays.length - 1]} ms (max) after the write; ${delays.filter((d) => d > 1000).length} over SPEC's 1 s` : ''),
  );
  const splits: string[] = [];
  for (const e of edits) {
    if (e.cpError) failures.push(`config generation ${e.generation}: the control plane reports ${e.cpError}`);
    const c = load.byConfig.get(e.generation);
    if (!c) {
      failures.push(`config generation ${e.generation} never reached a response`);
      continue;
    }
    const v1 = c.subsets.get('v1') ?? 0;
    const total = [...c.subsets.values()].reduce((a, b) => a + b, 0);
    const want = weightOf(e.generation) / 100;
    splits.push(`${e.generation}: ${((100 * v1) / total).toFixed(1)}% of ${total} (${want * 100}%)`);
    if (total >= 500 && Math.abs(v1 / total - want) > SPLIT_TOLERANCE) failures.push(`config generation ${e.generation}: subset v1 got ${((100 * v1) / total).toFixed(1)}% of ${total} responses, its weight is ${want * 100}%`);
  }
  if (splits.length) console.log(`  subset v1's share per generation (weight): ${splits.join(', ')}`);
  return failures;
}

export function reportMemory(samples: Sample[], procs: Watched[], seconds: number, limit: number): string[] {
  const failures: string[] = [];
  const w = windowsFor(seconds);
  console.log(
    `\nRSS: the floor (lowest sample) of ${w.early[0]}-${w.early[1]} s (after warm-up) against ${w.late[0]}-${w.late[1]} s (the end): a leak lifts the floor, ` +
      `garbage between collections only the median and the peak; limit +${limit * 100}% for the mesh (control plane and sidecars)`,
  );
  console.log(`  ${''.padEnd(16)} ${pad('floor MiB', 17)} ${pad('growth', 7)}   ${pad('median MiB', 15)}   ${pad('peak MiB', 15)}   samples`);
  for (const [i, p] of procs.entries()) {
    const g = growthOf(samples, i, w);
    if (!g) {
      console.log(`  ${p.label.padEnd(16)} not enough samples`);
      if (p.judged) failures.push(`${p.label}: not enough RSS samples to judge its growth`);
      continue;
    }
    const over = g.growth > limit;
    const span = (a: number, b: number) => `${pad(a.toFixed(1), 6)} -> ${b.toFixed(1).padEnd(6)}`;
    console.log(
      `  ${p.label.padEnd(16)} ${span(g.early.min, g.late.min)} ${pad(pct(g.growth), 7)}   ${span(g.early.median, g.late.median)}   ${span(g.early.max, g.late.max)}   ${g.early.samples}+${g.late.samples}` +
        (p.judged ? (over ? '  OVER THE LIMIT' : '') : '  (not judged)'),
    );
    if (p.judged && over) failures.push(`${p.label}: RSS grew ${pct(g.growth)} (floor ${g.early.min.toFixed(1)} -> ${g.late.min.toFixed(1)} MiB)`);
  }
  return failures;
}
