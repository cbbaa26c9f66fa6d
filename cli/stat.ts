// `tandem stat`: per service and version, what its sidecars' own metrics say about the
// traffic that came in over the last interval, like `linkerd viz stat`. The sidecars are
// found through the control plane (/debug/syncz carries each one's admin address); each
// /metrics is scraped with a timeout, so a sidecar that does not answer is reported, not waited on.
import { parseFlags, UsageError } from './flags';
import { parseHostPort, formatHostPort } from '../common/addr';
import { parseDuration } from '../common/duration';
import type { SyncEntry } from '../control-plane/syncz';
import { parsePrometheusText } from './prom-text';
import { statRows, type Pair, type Scrape, type StatRow } from './stat-math';

export interface StatTarget {
  /** the sidecar's admin host:port */
  admin: string;
  service: string;
  namespace: string;
  version: string;
}

export interface StatResult {
  rows: StatRow[];
  /** sidecars whose /metrics did not answer, and why */
  unreachable: { target: StatTarget; error: string }[];
  /** seconds the figures cover (the longest of the intervals) */
  seconds: number;
}

async function getText(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  return res.text();
}

const why = (err: unknown, timeoutMs: number) =>
  (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs}ms` : ((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);

/** The sidecars the control plane knows, one per admin address (--concurrency workers share one). */
export async function discoverSidecars(controlPlaneAdmin: string, timeoutMs: number, namespace?: string): Promise<StatTarget[]> {
  let entries: SyncEntry[];
  try {
    entries = JSON.parse(await getText(`http://${controlPlaneAdmin}/debug/syncz`, timeoutMs)) as SyncEntry[];
  } catch (err) {
    throw new Error(`cannot reach the control plane admin at ${controlPlaneAdmin}: ${why(err, timeoutMs)}`, { cause: err });
  }
  const byAdmin = new Map<string, StatTarget>();
  for (const e of entries) {
    if (!e.service || !e.adminAddress) continue;
    const ns = e.namespace ?? 'default';
    if (namespace && ns !== namespace) continue;
    byAdmin.set(e.adminAddress, { admin: e.adminAddress, service: e.service, namespace: ns, version: e.labels?.version ?? 'unknown' });
  }
  return [...byAdmin.values()];
}

/**
 * Scrapes every sidecar each tick and compares with its previous scrape. The first tick
 * only sets the baseline; `now` is injectable so the interval is the one measured.
 */
export class StatScraper {
  private readonly last = new Map<string, Scrape>();

  constructor(
    private readonly controlPlaneAdmin: string,
    private readonly timeoutMs: number,
    private readonly namespace?: string,
    private readonly now: () => number = Date.now,
  ) {}

  async tick(): Promise<StatResult> {
    const targets = await discoverSidecars(this.controlPlaneAdmin, this.timeoutMs, this.namespace);
    const pairs: Pair[] = [];
    const unreachable: StatResult['unreachable'] = [];
    await Promise.all(
      targets.map(async (t) => {
        try {
          const text = await getText(`http://${t.admin}/metrics`, this.timeoutMs);
          const after = { at: this.now(), samples: parsePrometheusText(text) };
          const before = this.last.get(t.admin);
          this.last.set(t.admin, after);
          if (before) pairs.push({ before, after });
        } catch (err) {
          this.last.delete(t.admin);
          unreachable.push({ target: t, error: why(err, this.timeoutMs) });
        }
      }),
    );
    const live = new Set(targets.map((t) => t.admin));
    for (const k of this.last.keys()) if (!live.has(k)) this.last.delete(k);
    const known = targets.filter((t) => !unreachable.some((u) => u.target === t));
    const rows = statRows(pairs, known.map((t) => ({ name: t.service, namespace: t.namespace, version: t.version })));
    const seconds = Math.max(0, ...pairs.map((p) => (p.after.at - p.before.at) / 1000));
    return { rows, unreachable, seconds };
  }
}

const pct = (x: number | undefined, digits: number) => (x === undefined ? '-' : `${(100 * x).toFixed(digits)}%`);
const ms = (x: number | undefined) => (x === undefined ? '-' : x < 10 ? `${Number(x.toFixed(2))}ms` : `${Math.round(x)}ms`);

/** The table, `linkerd viz stat`'s columns; NAMESPACE only when more than one is shown. */
export function renderStat(r: StatResult): string {
  const multiNs = new Set(r.rows.map((x) => x.namespace)).size > 1;
  const head = [...(multiNs ? ['NAMESPACE'] : []), 'NAME', 'VERSION', 'SUCCESS', 'RPS', 'LATENCY_P50', 'LATENCY_P95', 'LATENCY_P99', 'TCP_CONN', 'MTLS'];
  const rows = [head];
  for (const x of r.rows) {
    rows.push([
      ...(multiNs ? [x.namespace] : []),
      x.name,
      x.version,
      pct(x.success, 2),
      `${x.rps.toFixed(1)}rps`,
      ms(x.p50),
      ms(x.p95),
      ms(x.p99),
      String(x.tcpConnections),
      pct(x.mtls, 0),
    ]);
  }
  const widths = head.map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  // names left, figures right, as linkerd prints them
  const left = multiNs ? 3 : 2;
  const table = rows.map((row) => row.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('   ').trimEnd());
  const notes = r.unreachable.map((u) => `${u.target.service}.${u.target.namespace} ${u.target.version} (admin ${u.target.admin}): not scraped: ${u.error}`);
  return [...table, ...notes].join('\n') + '\n';
}

export async function statCommand(argv: string[], sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))): Promise<number> {
  const f = parseFlags(
    argv,
    { 'control-plane-admin': { default: '127.0.0.1:15014' }, interval: { default: '5s' }, watch: { boolean: true }, namespace: {} },
    'stat',
  );
  const addr = formatHostPort(parseHostPort(f['control-plane-admin']!, '--control-plane-admin'));
  let intervalMs: number;
  try {
    intervalMs = parseDuration(f.interval!);
  } catch (err) {
    throw new UsageError(`--interval: ${(err as Error).message}`);
  }
  if (intervalMs < 100) throw new UsageError('--interval: at least 100ms');
  // a scrape never outlives its interval, and never takes more than 5 s
  const timeoutMs = Math.min(5000, intervalMs);
  const scraper = new StatScraper(addr, timeoutMs, f.namespace);
  const out = process.stdout;
  await scraper.tick();
  if (f.watch !== 'true') {
    await sleep(intervalMs);
    out.write(renderStat(await scraper.tick()));
    return 0;
  }
  let stopped = false;
  let wake: () => void = () => undefined;
  const stop = () => {
    stopped = true;
    wake();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    while (!stopped) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, intervalMs);
      });
      if (stopped) break;
      const table = renderStat(await scraper.tick());
      // in place on a terminal; one table after another into a pipe or a file
      out.write(out.isTTY ? `\x1b[H\x1b[2J${table}` : `${table}\n`);
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return 0;
}
