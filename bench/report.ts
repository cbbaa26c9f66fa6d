// Reporting: the text tables, the per-hop and CA breakdowns, and the same tables again
// as Markdown, with the footnote describing the run.
import * as os from 'node:os';
import type { CaLocalResult, CaRpcResult } from './ca';
import { CA_CONCURRENCY, CA_REQUESTS, CA_WORKLOADS, CONNECTIONS, DURATION, RATE, RATE_CONNECTIONS, RATE_DURATION, WARMUP, WORKERS } from './config';
import { NAMES, type RateRow, type Row } from './target';
import { ACCESS_LOG_TARGET, BARE_TARGET, SPANS_TARGET } from './tandem';
import type { SinkSpan } from './trace-sink';

export const fmt = {
  rps: (v: number) => Math.round(v).toLocaleString('en-US'),
  ms: (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—'),
  us: (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(1) : '—'),
  ratio: (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '—'),
};

/** What each row is compared with: one sidecar with one nginx, the mesh hop with the nginx pair. */
function baselineOf(target: string): string | undefined {
  if (target === NAMES.nginxPair) return NAMES.nginx;
  if (target.startsWith('1 sidecar')) return NAMES.nginx;
  if (target.startsWith('mesh hop')) return NAMES.nginxPair;
  return undefined;
}

const mb = (v: number | undefined) => (v !== undefined && Number.isFinite(v) && v > 0 ? v.toFixed(0) : '—');

/** The headline: closed-loop throughput, latency, CPU and memory, each row against its nginx. */
export function table(rows: Row[]): { header: string[]; cells: string[][] } {
  const direct = rows.find((r) => r.target === NAMES.direct);
  const header = ['target', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'RSS idle MB', 'RSS load MB', 'req/s vs direct', 'against', 'CPU/req ×', 'p99 ×', 'req/s ×'];
  const cells = rows.map((r) => {
    const baseName = baselineOf(r.target);
    const base = baseName ? rows.find((x) => x.target === baseName) : undefined;
    return [
      r.target,
      fmt.rps(r.rps),
      fmt.ms(r.p50),
      fmt.ms(r.p99),
      fmt.us(r.proxyUsPerReq),
      mb(r.rssIdleMb),
      mb(r.rssLoadMb),
      fmt.ratio(r.rps, direct?.rps),
      base ? base.target : '',
      base ? fmt.ratio(r.proxyUsPerReq, base.proxyUsPerReq) : '',
      base ? fmt.ratio(r.p99, base.p99) : '',
      base ? fmt.ratio(r.rps, base.rps) : '',
    ];
  });
  return { header, cells };
}

/** --concurrency N against 1 worker, both with the defaults, measured in the same run. */
export function workersTable(rows: Row[]): { header: string[]; cells: string[][] } | undefined {
  const one = rows.find((r) => r.target === NAMES.sidecar);
  const many = rows.find((r) => r.target === NAMES.sidecarC2);
  if (!one || !many) return undefined;
  // cores busy = CPU per request x requests/s: with the load generator and the backend on the
  // same cores, this says how much of the machine the workers could have had
  const cores = (r: Row, usPerReq: number | undefined) => (usPerReq !== undefined && Number.isFinite(usPerReq) ? ((usPerReq * r.rps) / 1e6).toFixed(2) : '—');
  const header = ['one sidecar, defaults', 'req/s', 'p99 ms', 'CPU µs/req', 'sidecar cores busy', 'load gen + backend cores', 'RSS idle MB', 'RSS load MB', 'processes'];
  const row = (r: Row, label: string) => [label, fmt.rps(r.rps), fmt.ms(r.p99), fmt.us(r.proxyUsPerReq), cores(r, r.proxyUsPerReq), cores(r, r.loadgenUsPerReq + r.backendUsPerReq), mb(r.rssIdleMb), mb(r.rssLoadMb), String(r.rss[0]?.processes ?? '—')];
  return {
    header,
    cells: [
      row(one, '--concurrency 1'),
      row(many, `--concurrency ${WORKERS}`),
      [`${WORKERS} workers vs 1`, fmt.ratio(many.rps, one.rps), fmt.ratio(many.p99, one.p99), fmt.ratio(many.proxyUsPerReq, one.proxyUsPerReq), '', '', fmt.ratio(many.rssIdleMb, one.rssIdleMb), fmt.ratio(many.rssLoadMb, one.rssLoadMb), ''],
    ],
  };
}

/** Latency at the fixed open-loop rate, each percentile also as added over direct. */
export function rateTable(rows: RateRow[]): { header: string[]; cells: string[][] } | undefined {
  const direct = rows.find((r) => r.target === NAMES.direct);
  if (!rows.length) return undefined;
  const added = (a: number, b: number | undefined) => (b !== undefined && Number.isFinite(a - b) ? `${a - b >= 0 ? '+' : ''}${(a - b).toFixed(2)}` : '—');
  const header = ['at ' + fmt.rps(RATE) + ' req/s (open loop)', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'added p50', 'added p99', 'added p99.9', 'proxy CPU µs/req', 'ok/sent', 'waited for a connection', 'sent > 5 ms late (max ms)'];
  const cells = rows.map((r) => [
    r.target,
    fmt.ms(r.p50),
    fmt.ms(r.p99),
    fmt.ms(r.p999),
    fmt.ms(r.max),
    r === direct ? '' : added(r.p50, direct?.p50),
    r === direct ? '' : added(r.p99, direct?.p99),
    r === direct ? '' : added(r.p999, direct?.p999),
    fmt.us(r.proxyUsPerReq),
    `${r.ok.toLocaleString('en-US')}/${r.sent.toLocaleString('en-US')}`,
    String(r.queued),
    `${r.lateSends} (${fmt.ms(r.maxLateMs)})`,
  ]);
  return { header, cells };
}

/** The issue's targets beside the figures of this run. */
export function targetsTable(rows: Row[], rate: RateRow[]): { header: string[]; cells: string[][] } {
  const get = (n: string) => rows.find((r) => r.target === n);
  const getRate = (n: string) => rate.find((r) => r.target === n);
  const header = ['target (issue 14)', 'wanted', 'measured', 'met'];
  const cells: string[][] = [];
  const ratioRow = (what: string, wanted: string, a: number | undefined, b: number | undefined, ok: (v: number) => boolean) => {
    const v = a !== undefined && b !== undefined && b > 0 ? a / b : NaN;
    cells.push([what, wanted, Number.isFinite(v) ? `${v.toFixed(2)}x` : 'not measured', Number.isFinite(v) ? (ok(v) ? 'yes' : 'NO') : '—']);
  };
  ratioRow('one sidecar, CPU per request vs one nginx', '≤ 1.8x', get(NAMES.sidecar)?.proxyUsPerReq, get(NAMES.nginx)?.proxyUsPerReq, (v) => v <= 1.8);
  ratioRow('mesh hop, CPU per request vs the nginx pair', '≤ 2x', get(NAMES.hop)?.proxyUsPerReq, get(NAMES.nginxPair)?.proxyUsPerReq, (v) => v <= 2);
  const direct = getRate(NAMES.direct);
  for (const n of [NAMES.hop, NAMES.sidecar]) {
    const r = getRate(n);
    const v = r && direct ? r.p99 - direct.p99 : NaN;
    cells.push([`${n}, added p99 at ${fmt.rps(RATE)} req/s`, '≤ 1 ms', Number.isFinite(v) ? `${v.toFixed(2)} ms` : 'not measured', Number.isFinite(v) ? (v <= 1 ? 'yes' : 'NO') : '—']);
  }
  ratioRow(`one sidecar, throughput with ${WORKERS} workers vs 1`, '≥ 1.7x', get(NAMES.sidecarC2)?.rps, get(NAMES.sidecar)?.rps, (v) => v >= 1.7);
  // idle RSS of one sidecar process (a --concurrency sidecar is several; its sum is in the tables)
  const sidecars = rows.filter((r) => r.target !== NAMES.sidecarC2 && (r.target.startsWith('1 sidecar') || r.target.startsWith('mesh hop'))).flatMap((r) => r.rss);
  const idle = sidecars.map((x) => x.idleMb ?? NaN).filter(Number.isFinite);
  const fresh = sidecars.map((x) => x.startedMb ?? NaN).filter(Number.isFinite);
  const worst = idle.length ? Math.max(...idle) : NaN;
  const atStart = fresh.length ? `; ${Math.min(...fresh).toFixed(0)}–${Math.max(...fresh).toFixed(0)} right after start` : '';
  cells.push(['idle RSS of a sidecar (the largest of this run\'s 1-worker sidecars, settled)', '≤ 60 MB', Number.isFinite(worst) ? `${worst.toFixed(0)} MB (${Math.min(...idle).toFixed(0)}–${worst.toFixed(0)}${atStart})` : 'not measured', Number.isFinite(worst) ? (worst <= 60 ? 'yes' : 'NO') : '—']);
  return { header, cells };
}

/** tandem mTLS against tandem plaintext, measured in the same run. */
export function mtlsVsPlaintext(rows: Row[]): { header: string[]; cells: string[][] } | undefined {
  const m = rows.find((r) => r.target === NAMES.hopNoLog);
  const p = rows.find((r) => r.target === NAMES.hopPlain);
  if (!m || !p) return undefined;
  const header = ['tandem hop', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'client sidecar µs/req', 'server sidecar µs/req'];
  const row = (r: Row) => [r.target, fmt.rps(r.rps), fmt.ms(r.p50), fmt.ms(r.p99), fmt.us(r.proxyUsPerReq), fmt.us(r.breakdown[0]?.usPerReq), fmt.us(r.breakdown[1]?.usPerReq)];
  const ratio = (a: number | undefined, b: number | undefined) => fmt.ratio(a, b);
  return {
    header,
    cells: [
      row(p),
      row(m),
      [
        'mTLS vs plaintext',
        ratio(m.rps, p.rps),
        ratio(m.p50, p.p50),
        ratio(m.p99, p.p99),
        ratio(m.proxyUsPerReq, p.proxyUsPerReq),
        ratio(m.breakdown[0]?.usPerReq, p.breakdown[0]?.usPerReq),
        ratio(m.breakdown[1]?.usPerReq, p.breakdown[1]?.usPerReq),
      ],
    ],
  };
}

/**
 * What observability costs on the mTLS hop, one row per setting against everything off
 * (BENCH_OBS; without it, against the metrics-only row): CPU and latency differences.
 */
export function observabilityCost(rows: Row[]): { header: string[]; cells: string[][] } | undefined {
  const settings: [string, string][] = [
    [BARE_TARGET, '(a) all off: --access-log off --metrics off, no OTLP'],
    [NAMES.hopNoLog, '(b) metrics on'],
    [ACCESS_LOG_TARGET, '(c) defaults: metrics + access log (stdout)'],
    [SPANS_TARGET, '(d) defaults + spans over OTLP/HTTP protobuf'],
  ];
  const present = settings.map(([t, label]) => [label, rows.find((r) => r.target === t)] as const).filter((x): x is readonly [string, Row] => x[1] !== undefined);
  if (present.length < 2) return undefined;
  const base = present[0][1];
  const diff = (a: number | undefined, b: number | undefined, digits: number) => (a !== undefined && b !== undefined && Number.isFinite(a - b) ? `${a - b >= 0 ? '+' : ''}${(a - b).toFixed(digits)}` : '—');
  const header = ['tandem mTLS hop', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'client sidecar µs/req', 'server sidecar µs/req', `CPU vs ${present[0][0].slice(0, 3)}`, `p50 vs ${present[0][0].slice(0, 3)}`, `p99 vs ${present[0][0].slice(0, 3)}`];
  const cells = present.map(([label, r]) => [
    label,
    fmt.rps(r.rps),
    fmt.ms(r.p50),
    fmt.ms(r.p99),
    fmt.us(r.proxyUsPerReq),
    fmt.us(r.breakdown[0]?.usPerReq),
    fmt.us(r.breakdown[1]?.usPerReq),
    r === base ? '' : `${diff(r.proxyUsPerReq, base.proxyUsPerReq, 1)} µs`,
    r === base ? '' : `${diff(r.p50, base.p50, 2)} ms`,
    r === base ? '' : `${diff(r.p99, base.p99, 2)} ms`,
  ]);
  return { header, cells };
}

const KIND: Record<number, string> = { 1: 'INTERNAL', 2: 'SERVER', 3: 'CLIENT' };
/** attributes shown in the example trace's table (all of them follow it, one line per span) */
const SHOWN = ['http.request.method', 'url.path', 'http.response.status_code', 'network.protocol.version', 'tandem.upstream.cluster', 'tandem.peer.principal'];

/** One request's spans, in the order they nest (the root's first). */
export function traceTable(spans: SinkSpan[]): { header: string[]; cells: string[][]; lines: string[] } {
  const ordered: SinkSpan[] = [];
  const add = (parent: string) => {
    for (const s of spans.filter((x) => x.parentSpanId === parent && !ordered.includes(x))) {
      ordered.push(s);
      add(s.spanId);
    }
  };
  for (const s of spans.filter((x) => !spans.some((y) => y.spanId === x.parentSpanId))) if (!ordered.includes(s)) (ordered.push(s), add(s.spanId));
  const header = ['span (service.name)', 'kind', 'span id', 'parent span id', 'µs', ...SHOWN];
  const cells = ordered.map((s) => [`${s.name} (${String(s.resource['service.name'])})`, KIND[s.kind] ?? String(s.kind), s.spanId, s.parentSpanId, String(s.durationUs), ...SHOWN.map((k) => (s.attributes[k] === undefined ? '' : String(s.attributes[k])))]);
  const lines = ordered.map((s) => JSON.stringify({ name: s.name, kind: KIND[s.kind] ?? s.kind, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId, status: s.status, attributes: s.attributes, resource: s.resource }));
  return { header, cells, lines };
}

export function caTable(rpc: CaRpcResult[]): { header: string[]; cells: string[][] } {
  const header = ['CA over gRPC, credential', 'certs/s', 'p50 ms', 'p99 ms', 'control plane CPU µs/cert', 'certs per control-plane CPU-s', 'client CPU µs/cert', 'ok'];
  const what = { token: 'bootstrap token (first cert)', certificate: 'current certificate (renewal)' };
  const cells = rpc.map((r) => [what[r.credential], fmt.rps(r.certsPerSec), fmt.ms(r.p50), fmt.ms(r.p99), fmt.us(r.cpUsPerCert), r.cpUsPerCert > 0 ? fmt.rps(1e6 / r.cpUsPerCert) : '—', fmt.us(r.clientUsPerCert), `${r.ok}/${r.requests}`]);
  return { header, cells };
}

export function caLocalLine(l: CaLocalResult): string {
  return `CertificateAuthority.signWorkload, ${l.rootKey} root: ${fmt.rps(l.perSec)} signatures/s (${fmt.us(l.usEach)} µs each, ${l.signatures.toLocaleString('en-US')} in ${l.elapsedSec.toFixed(1)} s, one thread)`;
}

export function printText(header: string[], cells: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

export function printMarkdown(header: string[], cells: string[][]): void {
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map((_, i) => (i === 0 ? ':---' : '---:')).join('|')}|`);
  for (const c of cells) console.log(`| ${c.map((v) => v.replace(/\|/g, "\\|")).join(' | ')} |`);
}

export interface CaResults {
  rpc: CaRpcResult[];
  local?: CaLocalResult;
}

/**
 * Everything printed after the measurements: the tables, the breakdowns, what the wire
 * check verified (`verified` is set when the mesh started), then the Markdown.
 */
export function printReport(rows: Row[], rate: RateRow[], verified: string[] | undefined, nginxNote: string, ca: CaResults | undefined, cpuModel: string): void {
  const tables: { title: string; t: { header: string[]; cells: string[][] } }[] = [];
  const add = (title: string, t: { header: string[]; cells: string[][] } | undefined) => t && tables.push({ title, t });
  add(`closed loop, ${CONNECTIONS} connections: each row against the nginx doing the same job (one sidecar: one nginx; the mesh hop: the nginx pair)`, table(rows));
  add(`latency at a fixed ${fmt.rps(RATE)} requests/s, open loop over ${RATE_CONNECTIONS} keep-alive connections, added over direct`, rateTable(rate));
  add(`--concurrency ${WORKERS} against 1 (one sidecar, the defaults)`, workersTable(rows));
  add("the issue's targets, from this run", targetsTable(rows, rate));
  add('the mesh hop over mTLS against plaintext (both with the access log off)', mtlsVsPlaintext(rows));
  add('the cost of observability on the mTLS hop (each row its own pair of sidecars, measured in the same alternating run)', observabilityCost(rows));
  const caTables = ca && ca.rpc.length ? caTable(ca.rpc) : undefined;
  add(`CA signing rate over gRPC: ${CA_REQUESTS} CSRs per credential from ${CA_WORKLOADS} workloads, ${CA_CONCURRENCY} in flight, after ${CA_WORKLOADS} warm-up (each request its own TLS channel to the control plane, as a sidecar's)`, caTables);

  for (const { title, t } of tables) {
    console.log('');
    console.log(`${title}:`);
    printText(t.header, t.cells);
  }
  console.log('');
  for (const r of rows.filter((x) => x.breakdown.length > 1 || x.rss.some((y) => y.processes > 1))) {
    console.log(`${r.target}: CPU ${r.breakdown.map((b) => `${b.label} ${fmt.us(b.usPerReq)}`).join(' + ')} µs/req; RSS idle/load ${r.rss.map((b) => `${b.label} ${mb(b.idleMb)}/${mb(b.loadMb)}${(b.idleEachMb?.length ?? 0) > 1 ? ` (idle: ${b.idleEachMb!.map(mb).join(' + ')}, the first the ${b.label.startsWith('nginx') ? 'master' : 'primary'})` : ''}`).join(' + ')} MB`);
  }
  for (const r of rate.filter((x) => x.errors || x.unanswered)) console.log(`${r.target} at ${fmt.rps(RATE)} req/s: ${r.errors} errors, ${r.unanswered} unanswered (first: ${r.firstError ?? '—'})`);
  if (verified) {
    console.log('');
    console.log('verified before measuring (through a byte-recording relay), and for every measured request at the backend:');
    for (const v of verified) console.log(`  ${v}`);
    for (const r of rows.filter((x) => x.target.startsWith('mesh hop') || x.target.startsWith('1 sidecar'))) console.log(`  ${r.target}: ${r.xfcc}/${r.served} measured requests reached the backend with XFCC URI=spiffe://…`);
    for (const r of rows.filter((x) => x.target === NAMES.nginxPair)) console.log(`  ${r.target}: ${r.nginxTls}/${r.served} measured requests reached the backend marked by nginx B "TLSv1.3 SUCCESS" (a verified client certificate)`);
  }
  console.log(nginxNote);
  console.log(`load generator CPU: ${rows.map((r) => `${r.target} ${fmt.us(r.loadgenUsPerReq)}`).join(', ')} µs/req (not counted as proxy CPU)`);
  if (ca) console.log(`(the CA client here, making CSRs and TLS handshakes, shares the ${os.cpus().length} cores with the control plane; "certs per control-plane CPU-s" is what one core of control plane alone would sign)`);
  if (ca?.local) console.log(`CA signing in process: ${caLocalLine(ca.local)}`);

  console.log('');
  console.log('Markdown:');
  for (const { t } of tables) {
    console.log('');
    printMarkdown(t.header, t.cells);
  }
  if (ca?.local) {
    console.log('');
    console.log(`CA signing in process: ${caLocalLine(ca.local)}`);
  }
  console.log('');
  console.log(
    `_${os.cpus().length} x ${cpuModel}, Node ${process.version}, autocannon and the open-loop generator in their own process. ` +
      `Closed loop: ${CONNECTIONS} connections, ${DURATION}s per target after ${WARMUP}s warm-up, all targets in alternating slices of ~2 s (A B … B A A B …); ` +
      `open loop: ${fmt.rps(RATE)} req/s over ${RATE_CONNECTIONS} connections, ${RATE_DURATION}s per target in alternating slices of ~2 s, latency from the write (from when it was due, for a request that waited for a connection); "sent > 5 ms late" counts the load generator's own stalls (a loaded machine), which are not in the latency. ` +
      "Sidecars run with their defaults (access log to stdout, metrics) unless the row says otherwise. " +
      `1 sidecar = client → sidecar outbound → HTTP/1.1 keep-alive → backend as a ServiceEntry (STATIC, plain HTTP); mesh hop = client → client sidecar → TLS 1.3 with client certificates, HTTP/1.1 keep-alive → server sidecar → backend; ` +
      'nginx = one HTTP/1.1 proxy (1 worker, upstream keep-alive); nginx pair = nginx → TLS 1.3 with client certificates, keep-alive → nginx → backend. ' +
      `CPU is utime+stime from /proc per completed request, every process of a proxy (the primary and its workers; nginx master and worker); RSS is VmRSS summed the same way, idle before any load once it has settled (V8's memory reducer returns what starting left behind after 8–15 s idle; the target row also gives the reading right after start) and the peak sampled under load.` +
      (caTables ? ` CA: ${CA_REQUESTS} CSRs per credential over gRPC from ${CA_WORKLOADS} workloads, ${CA_CONCURRENCY} in flight; CPU per certificate issued.` : '') +
      '_',
  );
}
