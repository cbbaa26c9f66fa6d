// Reporting: the text tables, the per-hop and CA breakdowns, and the same tables again
// as Markdown, with the footnote describing the run.
import * as os from 'node:os';
import type { CaLocalResult, CaRpcResult } from './ca';
import { CA_CONCURRENCY, CA_REQUESTS, CA_WORKLOADS, CONNECTIONS, DURATION, WARMUP } from './config';
import type { Row } from './target';
import { ACCESS_LOG_TARGET, BARE_TARGET, SPANS_TARGET } from './tandem';
import type { SinkSpan } from './trace-sink';

export const fmt = {
  rps: (v: number) => Math.round(v).toLocaleString('en-US'),
  ms: (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—'),
  us: (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(1) : '—'),
  ratio: (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '—'),
};

export function table(rows: Row[]): { header: string[]; cells: string[][] } {
  const direct = rows.find((r) => r.target === 'direct');
  const nginx = rows.find((r) => r.target === 'nginx');
  const header = ['target', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'backend CPU µs/req', 'req/s vs direct', 'p99 vs direct'];
  if (nginx) header.push('req/s vs nginx', 'p99 vs nginx', 'CPU vs nginx');
  const cells = rows.map((r) => {
    const c = [r.target, fmt.rps(r.rps), fmt.ms(r.p50), fmt.ms(r.p99), fmt.us(r.proxyUsPerReq), fmt.us(r.backendUsPerReq), fmt.ratio(r.rps, direct?.rps), fmt.ratio(r.p99, direct?.p99)];
    if (nginx) c.push(fmt.ratio(r.rps, nginx.rps), fmt.ratio(r.p99, nginx.p99), fmt.ratio(r.proxyUsPerReq, nginx.proxyUsPerReq));
    return c;
  });
  return { header, cells };
}

/** tandem mTLS against tandem plaintext, measured in the same run. */
export function mtlsVsPlaintext(rows: Row[]): { header: string[]; cells: string[][] } | undefined {
  const m = rows.find((r) => r.target === 'tandem mTLS');
  const p = rows.find((r) => r.target === 'tandem plaintext');
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
    ['tandem mTLS', '(b) metrics on'],
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
export function printReport(rows: Row[], verified: string[] | undefined, nginxNote: string, ca: CaResults | undefined, cpuModel: string): void {
  console.log('');
  const { header, cells } = table(rows);
  printText(header, cells);
  console.log('');
  for (const t of rows.filter((r) => r.target.startsWith('tandem'))) {
    console.log(`${t.target} proxy CPU = ${t.breakdown.map((b) => `${b.label} ${fmt.us(b.usPerReq)}`).join(' + ')} µs/req`);
  }
  const cmp = mtlsVsPlaintext(rows);
  if (cmp) {
    console.log('');
    printText(cmp.header, cmp.cells);
  }
  const logCost = observabilityCost(rows);
  if (logCost) {
    console.log('');
    console.log('the cost of observability on the mTLS hop (each row its own pair of sidecars, measured in the same alternating run):');
    printText(logCost.header, logCost.cells);
  }
  if (verified) {
    console.log('');
    console.log('verified: plaintext hop = h2c (PeerAuthentication PERMISSIVE + DestinationRule tls DISABLE), mTLS hop = TLS 1.3 h2 with client certificates (the default)');
    for (const v of verified) console.log(`  ${v}`);
    for (const r of rows.filter((x) => x.target.startsWith('tandem'))) console.log(`  ${r.target}: ${r.xfcc}/${r.served} measured requests reached the backend with XFCC URI=spiffe://…`);
  }
  console.log(nginxNote);
  console.log(`load generator CPU: ${rows.map((r) => `${r.target} ${fmt.us(r.loadgenUsPerReq)}`).join(', ')} µs/req (not counted as proxy CPU)`);
  const caTables = ca ? caTable(ca.rpc) : undefined;
  if (ca) {
    console.log('');
    console.log(`CA signing rate over gRPC: ${CA_REQUESTS} CSRs per credential from ${CA_WORKLOADS} workloads, ${CA_CONCURRENCY} in flight, after ${CA_WORKLOADS} warm-up (each request its own TLS channel to the control plane, as a sidecar's)`);
    if (caTables) printText(caTables.header, caTables.cells);
    console.log(`(the client here, making CSRs and TLS handshakes, shares the ${os.cpus().length} cores with the control plane; "certs per control-plane CPU-s" is what one core of control plane alone would sign)`);
    if (ca.local) console.log(`CA signing in process: ${caLocalLine(ca.local)}`);
  }
  console.log('');
  console.log('Markdown:');
  console.log('');
  printMarkdown(header, cells);
  if (cmp) {
    console.log('');
    printMarkdown(cmp.header, cmp.cells);
  }
  if (logCost) {
    console.log('');
    printMarkdown(logCost.header, logCost.cells);
  }
  if (caTables && caTables.cells.length) {
    console.log('');
    printMarkdown(caTables.header, caTables.cells);
  }
  if (ca?.local) {
    console.log('');
    console.log(`CA signing in process: ${caLocalLine(ca.local)}`);
  }
  console.log('');
  console.log(
    `_${CONNECTIONS} connections, ${DURATION}s per target after ${WARMUP}s warm-up (the tandem hops in alternating halves, A B C C B A), autocannon in its own process, ${os.cpus().length} x ${cpuModel}, Node ${process.version}. ` +
      'tandem = client → client sidecar (outbound) → h2 → server sidecar (inbound) → backend; mTLS: TLS 1.3 with client certificates (the default), plaintext: h2c (PeerAuthentication PERMISSIVE + DestinationRule tls DISABLE); ' +
      'its proxy CPU is both sidecars together; the access log is off but for the "+ access log" rows (the default: stdout, both sidecars), metrics are recorded in all but the "obs off" row, spans exported only in the "+ spans" row. ' +
      (rows.some((r) => r.target === 'nginx') ? 'nginx = one plaintext HTTP/1.1 proxy (1 worker) with upstream keepalive. ' : '') +
      'CPU is utime+stime from /proc per completed request.' +
      (caTables ? ` CA: ${CA_REQUESTS} CSRs per credential over gRPC from ${CA_WORKLOADS} workloads, ${CA_CONCURRENCY} in flight; CPU per certificate issued.` : '') +
      '_',
  );
}
