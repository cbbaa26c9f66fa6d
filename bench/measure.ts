// Measuring: the load generator child (bench/load.ts) and the measured runs against a
// target, with proxy, backend and load generator CPU from /proc before and after each run,
// and the proxies' resident memory sampled while it runs; and the open-loop runs at a fixed
// rate (open-loop.ts), for latency.
import * as path from 'node:path';
import { CONNECTIONS, DURATION, RATE, RATE_CONNECTIONS, RATE_DURATION, WARMUP } from './config';
import type { LoadRequest, LoadResult, RateReply } from './load';
import { sampleRss } from './rss';
import { backendStats, type RateRow, type Row, type Target } from './target';
import { cpuSeconds, forkProc, isInterrupted, processTree, type Proc } from './util';

// ---------------------------------------------------------------------------------------------
// The load generator child.

let loadProc: Proc | undefined;
let nextId = 1;

/** Start the load generator process (once, before anything is measured). */
export function startLoadGenerator(): void {
  loadProc = forkProc('load generator', path.join(__dirname, 'load.js'));
}

function load(url: string, host: string | undefined, durationSec: number, raw?: boolean): Promise<LoadResult>;
function load(url: string, host: string | undefined, durationSec: number, raw: false, rate: number): Promise<RateReply>;
function load(url: string, host: string | undefined, durationSec: number, raw = false, rate?: number): Promise<LoadResult | RateReply> {
  const child = loadProc!.child;
  const req: LoadRequest = { id: nextId++, url, host, connections: rate ? RATE_CONNECTIONS : CONNECTIONS, durationSec, raw, rate };
  return new Promise((resolve, reject) => {
    const onMsg = (m: LoadResult | RateReply) => {
      if (m.id !== req.id) return;
      child.off('message', onMsg);
      child.off('exit', onExit);
      if (m.error) reject(new Error(`load generator: ${m.error}`));
      else resolve(m);
    };
    const onExit = () => reject(new Error(`load generator exited: ${loadProc!.output().slice(-2000)}`));
    if (isInterrupted() || !child.connected) {
      reject(new Error('load generator is gone'));
      return;
    }
    child.on('message', onMsg);
    child.once('exit', onExit);
    child.send(req, (err) => {
      if (err) reject(err);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Measuring.

/** What the measured slices of one target add up to. */
interface Acc {
  slices: LoadResult[];
  proxyCpu: number[];
  backendCpu: number;
  loadCpu: number;
  served: number;
  xfcc: number;
  nginxTls: number;
  /** peak RSS of each proxy tree over the slices, MB, and how many processes it had then */
  rssPeak: { mb: number; processes: number }[];
}

const newAcc = (t: Target): Acc => ({ slices: [], proxyCpu: t.proxies.map(() => 0), backendCpu: 0, loadCpu: 0, served: 0, xfcc: 0, nginxTls: 0, rssPeak: t.proxies.map(() => ({ mb: 0, processes: 0 })) });

/** One measured run of `sec` seconds against `t`, added to `acc`. */
async function slice(t: Target, backend: Proc, sec: number, acc: Acc, raw: boolean): Promise<void> {
  const trees = t.proxies.map((p) => processTree(p.pid));
  const backendTree = processTree(backend.pid);
  const loadTree = processTree(loadProc!.pid);
  const statsBefore = await backendStats(backend);
  const before = { proxies: trees.map(cpuSeconds), backend: cpuSeconds(backendTree), load: cpuSeconds(loadTree) };
  const rss = sampleRss(t.proxies.map((p) => p.pid));
  let r: LoadResult;
  try {
    r = await load(t.url, t.host, sec, raw);
  } finally {
    rss.stop().forEach((m, i) => {
      if (m.totalMb > acc.rssPeak[i].mb) acc.rssPeak[i] = { mb: m.totalMb, processes: m.eachMb.length };
    });
  }
  // Re-read the trees: a proxy may have started a worker meanwhile (CPU of one that
  // exited is lost, which is fine for the proxies measured here).
  const after = { proxies: t.proxies.map((p) => cpuSeconds(processTree(p.pid))), backend: cpuSeconds(backendTree), load: cpuSeconds(loadTree) };
  const statsAfter = await backendStats(backend);
  acc.slices.push(r);
  after.proxies.forEach((v, i) => (acc.proxyCpu[i] += v - before.proxies[i]));
  acc.backendCpu += after.backend - before.backend;
  acc.loadCpu += after.load - before.load;
  // by Host where the target has its own: a straggler of the previous target's run may land now
  acc.served += t.host ? (statsAfter.servedByHost[t.host] ?? 0) - (statsBefore.servedByHost[t.host] ?? 0) : statsAfter.served - statsBefore.served;
  // counted by Host: another target of a group may still have requests landing
  acc.xfcc += t.host ? (statsAfter.xfccByHost[t.host] ?? 0) - (statsBefore.xfccByHost[t.host] ?? 0) : statsAfter.xfcc - statsBefore.xfcc;
  if (t.host) acc.nginxTls += (statsAfter.tlsByHost[t.host] ?? 0) - (statsBefore.tlsByHost[t.host] ?? 0);
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function row(t: Target, acc: Acc): Row {
  const sum = (f: (r: LoadResult) => number) => acc.slices.reduce((a, r) => a + f(r), 0);
  const ok = sum((r) => r.ok);
  const non2xx = sum((r) => r.non2xx);
  const elapsed = sum((r) => r.elapsedSec);
  let p50 = acc.slices[0]?.p50 ?? NaN;
  let p99 = acc.slices[0]?.p99 ?? NaN;
  if (acc.slices.length > 1) {
    // percentiles of all the slices' latencies together
    const all = new Float64Array(acc.slices.reduce((a, r) => a + (r.latencies?.length ?? 0), 0));
    let i = 0;
    for (const r of acc.slices) for (const v of r.latencies ?? []) all[i++] = v;
    all.sort();
    p50 = percentile(all, 0.5);
    p99 = percentile(all, 0.99);
  }
  const done = ok + non2xx;
  // Requests in flight at the start and end can differ by up to a connection's worth each.
  if (Math.abs(acc.served - done) > 2 * CONNECTIONS * acc.slices.length + done * 0.001) {
    console.warn(`\nbench: ${t.name}: the backend served ${acc.served} requests but the load generator counted ${done}`);
  }
  const perReq = (sec: number) => (done > 0 ? (sec * 1e6) / done : NaN);
  const breakdown = t.proxies.map((p, i) => ({ label: p.label, usPerReq: perReq(acc.proxyCpu[i]) }));
  return {
    target: t.name,
    rps: elapsed > 0 ? ok / elapsed : 0,
    p50,
    p99,
    proxyUsPerReq: t.proxies.length ? breakdown.reduce((a, b) => a + b.usPerReq, 0) : undefined,
    breakdown,
    backendUsPerReq: perReq(acc.backendCpu),
    loadgenUsPerReq: perReq(acc.loadCpu),
    ok,
    served: acc.served,
    non2xx,
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    xfcc: acc.xfcc,
    nginxTls: acc.nginxTls,
    rssLoadMb: t.proxies.length ? acc.rssPeak.reduce((a, b) => a + b.mb, 0) : undefined,
    rss: t.proxies.map((p, i) => ({ label: p.label, loadMb: acc.rssPeak[i].mb, processes: acc.rssPeak[i].processes })),
  };
}

export async function measure(t: Target, backend: Proc): Promise<Row> {
  if (WARMUP > 0) await load(t.url, t.host, WARMUP);
  const acc = newAcc(t);
  await slice(t, backend, DURATION, acc, false);
  return row(t, acc);
}

/** Rounds of slices of about 2 s that alternate direction (A B C C B A A B C …), at least 2. */
export function alternation(n: number, seconds: number): { order: number[]; sliceSec: number } {
  const rounds = Math.max(2, Math.round(seconds / 2));
  const order: number[] = [];
  for (let k = 0; k < rounds; k++) for (let j = 0; j < n; j++) order.push(k % 2 ? n - 1 - j : j);
  return { order, sliceSec: seconds / rounds };
}

/**
 * Targets compared with each other: each warmed up, then measured in alternating slices of
 * about 2 s, A B C C B A A B C …, so that a neighbour's burst of CPU or a slow drift on a
 * shared machine falls on all alike. Each still gets DURATION seconds in all.
 */
export async function measureGroup(ts: Target[], backend: Proc): Promise<Row[]> {
  if (WARMUP > 0) for (const t of ts) await load(t.url, t.host, WARMUP);
  const accs = ts.map(newAcc);
  const { order, sliceSec } = alternation(ts.length, DURATION);
  for (const i of order) {
    if (isInterrupted()) throw new Error('interrupted');
    await slice(ts[i], backend, sliceSec, accs[i], true);
  }
  return ts.map((t, i) => row(t, accs[i]));
}

/**
 * Latency at a fixed open-loop rate (RATE requests/s over RATE_CONNECTIONS keep-alive
 * connections, open-loop.ts), for each target in alternating slices;
 * a short warm-up at the same rate first. Proxy CPU is counted too, per request sent.
 */
export async function measureRateGroup(ts: Target[]): Promise<RateRow[]> {
  const warm = Math.min(WARMUP, 2);
  if (warm > 0) for (const t of ts) await load(t.url, t.host, warm, false, RATE);
  const accs = ts.map(() => ({ replies: [] as RateReply[], cpu: 0 }));
  // a stall of the shared machine lands in one short slice of one target, not in half of its samples
  const { order, sliceSec } = alternation(ts.length, RATE_DURATION);
  for (const i of order) {
    if (isInterrupted()) throw new Error('interrupted');
    const trees = ts[i].proxies.map((p) => processTree(p.pid));
    const before = cpuSeconds(trees.flat());
    accs[i].replies.push(await load(ts[i].url, ts[i].host, sliceSec, false, RATE));
    accs[i].cpu += cpuSeconds(ts[i].proxies.flatMap((p) => processTree(p.pid))) - before;
  }
  return ts.map((t, i) => {
    const rs = accs[i].replies;
    const sum = (f: (r: RateReply) => number) => rs.reduce((a, r) => a + f(r), 0);
    const all = new Float64Array(sum((r) => r.latencies.length));
    let k = 0;
    for (const r of rs) for (const v of r.latencies) all[k++] = v;
    all.sort();
    const sent = sum((r) => r.sent);
    return {
      target: t.name,
      rate: RATE,
      sent,
      ok: sum((r) => r.ok),
      errors: sum((r) => r.errors),
      queued: sum((r) => r.queued),
      unanswered: sum((r) => r.unanswered),
      lateSends: sum((r) => r.lateSends),
      maxLateMs: Math.max(...rs.map((r) => r.maxLateMs)),
      p50: percentile(all, 0.5),
      p99: percentile(all, 0.99),
      p999: percentile(all, 0.999),
      max: all.length ? all[all.length - 1] : NaN,
      proxyUsPerReq: t.proxies.length && sent ? (accs[i].cpu * 1e6) / sent : undefined,
      firstError: rs.find((r) => r.firstError)?.firstError,
    };
  });
}
