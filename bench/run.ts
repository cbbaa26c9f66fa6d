// `make bench`: requests/s, latency, proxy CPU per request and proxy memory, in one run, for
//   direct            - load straight to a tiny backend HTTP server;
//   nginx             - one reverse proxy with upstream keep-alive in front of it (if installed);
//   1 sidecar         - one sidecar with its defaults (access log to stdout, metrics): client →
//                       its outbound port → the backend as a service outside the mesh (a
//                       ServiceEntry, STATIC, plain HTTP/1.1 keep-alive), the job one nginx does;
//                       again with --access-log off, and again with --concurrency 2 (BENCH_WORKERS);
//   nginx pair        - nginx → TLS 1.3 with client certificates, keep-alive → nginx → backend;
//   mesh hop (mTLS)   - client → client sidecar outbound → TLS 1.3 with client certificates (HTTP/1.1 keep-alive) →
//                       server sidecar inbound → backend, both sidecars with their defaults
//                       (service backend-logged); again with --access-log off (service backend),
//                       and in plaintext with the log off (backend-plain: PeerAuthentication
//                       PERMISSIVE + DestinationRule tls DISABLE);
//   mesh hop, obs off / + spans (BENCH_OBS, on unless `off`) - the mTLS hop through two more
//                       pairs: nothing recorded (--access-log off --metrics off, no OTLP), and the
//                       defaults plus spans exported over OTLP/HTTP protobuf to a sink in this
//                       process (trace-sink.ts), which must receive them all.
// One control plane, a sidecar per client and per service, each with a bootstrap token minted
// with the mesh root key. Before measuring, a byte-recording relay checks the wire: between
// the sidecars (a TLS ClientHello for backend, a plaintext HTTP/1.1 request line for backend-plain) and between
// the two nginx (a ClientHello). Every measured request is checked at the backend: a SPIFFE
// x-forwarded-client-cert on all mTLS hop requests, on none of the others; nginx B's mark
// "TLSv1.3 SUCCESS" (a verified client certificate) on all of the nginx pair's.
// Closed loop (autocannon, BENCH_CONNECTIONS): every target is measured in alternating
// slices of about 2 s (A B C … C B A A B C …) after all have warmed up, so that the noise of a shared machine
// falls on all alike and the ratios of one run are fair; the proxies' CPU is utime+stime
// from /proc/<pid>/stat of the proxy and its descendants (a --concurrency primary and its
// workers, nginx master and worker), before/after each slice, per request completed; their
// RSS (VmRSS, summed the same way) is read idle, once everything has started and before any
// load (at once, and again once it has settled: rss.ts settledRss), and sampled every 250 ms
// under load (the peak).
// Open loop (open-loop.ts): direct, nginx, one sidecar, the nginx pair and the mesh hop at a
// fixed BENCH_RATE requests/s (1,000) over BENCH_RATE_CONNECTIONS (10), in alternating slices
// of about 2 s: p50, p99 and p99.9, and each added over direct. autocannon's own rate limit sends
// bursts, so it is not used for this.
// Then the CA (bench/ca.ts): certificates/s and latency of CSRs sent to the running control
// plane over gRPC the way sidecars send them (bootstrap token, then renewal over the
// certificate), and the raw signWorkload rate in process.
// Env: BENCH_DURATION (s, default 8), BENCH_WARMUP (s, default 2), BENCH_CONNECTIONS
// (default 32), BENCH_RATE (1000), BENCH_RATE_CONNECTIONS (10), BENCH_RATE_DURATION (s, 20;
// 0 skips the open loop), BENCH_WORKERS (2), BENCH_NGINX (`off`, or the nginx binary to use),
// BENCH_CA (`off`), BENCH_OBS (`off`), BENCH_CA_REQUESTS (default 500), BENCH_CA_CONCURRENCY
// (16), BENCH_CA_WORKLOADS (64), BENCH_CA_SIGN_SECONDS (2).
// Files: config.ts (the env), target.ts (targets, rows, the backend process), tandem.ts
// (the mesh and its wire check), nginx.ts (one nginx, the pair and its wire check),
// measure.ts (the load generator and the measured runs), load.ts and open-loop.ts (the load
// generator process), rss.ts, report.ts (tables and Markdown); this file runs them in order.
import * as os from 'node:os';
import * as path from 'node:path';
import { caInProcess, caOverGrpc } from './ca';
import { CA_CONCURRENCY, CA_OFF, CA_REQUESTS, CA_SIGN_SECONDS, CA_WORKLOADS, CONNECTIONS, DURATION, RATE, RATE_CONNECTIONS, RATE_DURATION, WARMUP } from './config';
import { alternation, measure, measureGroup, measureRateGroup, startLoadGenerator } from './measure';
import { nginxVersion, startNginx, startNginxPair } from './nginx';
import { settledRss, treeRss, type Rss } from './rss';
import { fmt, printMarkdown, printReport, printText, traceTable, type CaResults } from './report';
import { SPANS_TARGET, startTandem, type Mesh } from './tandem';
import { NAMES, startBackend, type RateRow, type Row, type Target } from './target';
import { cleanup, cleanupOnEveryExit, executable, httpGet, isInterrupted, tmpDir, which } from './util';

// ---------------------------------------------------------------------------------------------
// Main, with cleanup on every way out.

cleanupOnEveryExit('bench');

async function main(): Promise<number> {
  const started = Date.now();
  const dir = tmpDir('tandem-bench-');
  const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`Tandem benchmark: ${CONNECTIONS} connections, ${WARMUP}s warm-up + ${DURATION}s measured per target; then ${RATE} req/s open loop, ${RATE_DURATION}s per target`);
  console.log(`host: ${os.cpus().length} x ${cpuModel}, Node ${process.version}, ${os.type()} ${os.release()}`);
  console.log('load generator: autocannon (separate process); body: 32-byte JSON; all on 127.0.0.1\n');

  const backend = await startBackend();
  startLoadGenerator();

  const targets: Target[] = [{ name: NAMES.direct, url: `http://127.0.0.1:${backend.port}/`, proxies: [] }];
  const verified: string[] = [];
  const failures: string[] = [];

  let mesh: Mesh | undefined;
  try {
    mesh = await startTandem(dir, backend.proc, backend.port);
    targets.push(...mesh.targets);
    verified.push(...mesh.verified);
  } catch (err) {
    failures.push(`tandem: could not start: ${(err as Error).message}`);
  }

  // BENCH_NGINX=off skips nginx; BENCH_NGINX=/path/to/nginx picks a binary.
  const nginxEnv = process.env.BENCH_NGINX ?? '';
  const nginxBin = nginxEnv === 'off' ? undefined : nginxEnv ? executable(path.resolve(nginxEnv)) : which('nginx', ['/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']);
  let nginxNote: string;
  if (nginxEnv === 'off') {
    nginxNote = 'nginx: skipped (BENCH_NGINX=off)';
    console.log(nginxNote);
  } else if (!nginxBin) {
    nginxNote = 'nginx not installed: skipping (apt-get install nginx to compare)';
    console.log(nginxNote);
  } else {
    nginxNote = `nginx ${nginxVersion(nginxBin)} (${nginxBin}): worker_processes 1 each, upstream keepalive 64, access_log off; the pair: TLS 1.3, EC P-256 certificates, client certificate verified, sessions reused`;
    try {
      targets.push(await startNginx(nginxBin, dir, backend.port));
    } catch (err) {
      failures.push(`nginx: could not start: ${(err as Error).message}`);
    }
    try {
      const pair = await startNginxPair(nginxBin, dir, backend.proc, backend.port);
      targets.push(pair.target);
      verified.push(pair.verified);
    } catch (err) {
      failures.push(`nginx pair: could not start: ${(err as Error).message}`);
    }
  }
  // the order of the alternating slices: the baselines next to what is compared with them
  const sequence: string[] = [NAMES.direct, NAMES.nginx, NAMES.sidecar, NAMES.sidecarNoLog, NAMES.sidecarC2, NAMES.nginxPair, NAMES.hop, NAMES.hopNoLog];
  const rank = (t: Target) => (sequence.includes(t.name) ? sequence.indexOf(t.name) : sequence.length);
  targets.sort((a, b) => rank(a) - rank(b));
  // one group: every target in the same alternating sequence, so every ratio is from the same minutes
  for (const t of targets) t.group = 'all';
  if (verified.length) {
    console.log('wire check (5 requests each through a byte-recording relay, before measuring):');
    for (const v of verified) console.log(`  ${v}`);
  }
  // Idle memory: everything has started and served only the readiness and wire-check requests;
  // read at once (what a proxy that just started shows) and once settled (what an idle one holds).
  const justStarted = new Map<number, Rss>();
  for (const t of targets) for (const p of t.proxies) if (!justStarted.has(p.pid)) justStarted.set(p.pid, treeRss(p.pid));
  const pids = [...justStarted.keys()];
  console.log('waiting for idle memory to settle (V8\'s memory reducer returns what starting left behind after 8–15 s idle) ...');
  const idle = new Map<number, Rss>((await settledRss(pids)).map((r, i) => [pids[i], r]));
  console.log('');

  if (isInterrupted()) return 130;
  const rows: Row[] = [];
  const report = (t: Target, r: Row, named = false) => {
    rows.push(r);
    r.rss.forEach((x, k) => {
      x.idleMb = idle.get(t.proxies[k].pid)?.totalMb;
      x.idleEachMb = idle.get(t.proxies[k].pid)?.eachMb;
      x.startedMb = justStarted.get(t.proxies[k].pid)?.totalMb;
    });
    r.rssIdleMb = t.proxies.length ? r.rss.reduce((a, x) => a + (x.idleMb ?? 0), 0) : undefined;
    const mtls = t.xfcc ? `, ${r.xfcc}/${r.served} with a SPIFFE XFCC (${t.xfcc === 'all' ? 'mTLS' : 'plaintext'})` : t.nginxTls ? `, ${r.nginxTls}/${r.served} over nginx's verified TLS` : '';
    console.log(`${named ? `${t.name}: ` : ''}${fmt.rps(r.rps)} req/s, p99 ${fmt.ms(r.p99)} ms, ${r.ok} ok (backend served ${r.served}${mtls})${r.non2xx || r.errors || r.timeouts ? ` (non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts})` : ''}`);
    if (r.ok === 0) failures.push(`${t.name}: no successful responses`);
    if (t.xfcc === 'all' && r.xfcc !== r.served) failures.push(`${t.name}: only ${r.xfcc} of ${r.served} requests reached the backend over mTLS (with a SPIFFE XFCC)`);
    if (t.xfcc === 'none' && r.xfcc !== 0) failures.push(`${t.name}: ${r.xfcc} of ${r.served} requests reached the backend with a SPIFFE XFCC: not plaintext`);
    if (t.nginxTls && r.nginxTls !== r.served) failures.push(`${t.name}: only ${r.nginxTls} of ${r.served} requests reached the backend over TLS 1.3 with a verified client certificate`);
  };
  for (let i = 0; i < targets.length; i++) {
    if (isInterrupted()) return 130;
    const t = targets[i];
    const group = t.group ? targets.filter((x) => x.group === t.group) : [];
    if (group.some((g) => rows.some((r) => r.target === g.name))) continue;
    const { order, sliceSec } = alternation(group.length, DURATION);
    const letters = order.map((k) => String.fromCharCode(65 + k)).join(' ');
    process.stdout.write(`measuring ${group.length ? `${group.map((g) => g.name).join(', ')}, alternating (${letters}, ${sliceSec}s each)` : t.name} ... ${group.length ? '\n  ' : ''}`);
    try {
      if (group.length) {
        const measured = await measureGroup(group, backend.proc);
        measured.forEach((r, k) => {
          if (k) process.stdout.write('  ');
          report(group[k], r, true);
        });
      } else {
        report(t, await measure(t, backend.proc));
      }
    } catch (err) {
      console.log('failed');
      failures.push(`${group.length ? group.map((g) => g.name).join(' / ') : t.name}: ${(err as Error).message}`);
    }
  }

  // Latency at a fixed rate, open loop: the baselines, one sidecar and the mesh hop.
  let rateRows: RateRow[] = [];
  const rateNames: string[] = [NAMES.direct, NAMES.nginx, NAMES.sidecar, NAMES.nginxPair, NAMES.hop];
  const rateTargets = rateNames.map((n) => targets.find((t) => t.name === n)).filter((t): t is Target => t !== undefined);
  if (RATE_DURATION > 0 && !isInterrupted()) {
    process.stdout.write(`\nmeasuring latency at ${RATE} req/s, open loop over ${RATE_CONNECTIONS} connections: ${rateTargets.map((t) => t.name).join(', ')}, alternating slices of ~2 s, ${RATE_DURATION}s each ...\n`);
    try {
      rateRows = await measureRateGroup(rateTargets);
      for (const r of rateRows) {
        console.log(`  ${r.target}: p50 ${fmt.ms(r.p50)} ms, p99 ${fmt.ms(r.p99)} ms, p99.9 ${fmt.ms(r.p999)} ms, ${r.ok}/${r.sent} ok, ${r.queued} waited for a connection, ${r.lateSends} sent > 5 ms late`);
        if (r.ok === 0) failures.push(`${r.target} at ${RATE} req/s: no successful responses (${r.firstError ?? 'no error'})`);
        else if (r.errors || r.unanswered) failures.push(`${r.target} at ${RATE} req/s: ${r.errors} errors, ${r.unanswered} unanswered of ${r.sent} (first: ${r.firstError ?? '—'})`);
      }
    } catch (err) {
      console.log('failed');
      failures.push(`open loop at ${RATE} req/s: ${(err as Error).message}`);
    }
  }

  // The spans row is honest only if the spans arrived: counted and decoded at the sink.
  if (mesh?.traces && !isInterrupted()) {
    try {
      await checkSpans(mesh.traces, rows.find((r) => r.target === SPANS_TARGET), failures);
    } catch (err) {
      failures.push(`trace sink: ${(err as Error).message}`);
    }
  }

  // The CA, once the HTTP measurements are done (the sidecars are idle by then).
  let ca: CaResults | undefined;
  if (CA_OFF) {
    console.log('\nCA: skipped (BENCH_CA=off)');
  } else if (mesh && !isInterrupted()) {
    process.stdout.write(`\nmeasuring the CA over gRPC (${CA_REQUESTS} CSRs from ${CA_WORKLOADS} workloads, ${CA_CONCURRENCY} at a time, token then certificate) ... `);
    try {
      const rpc = await caOverGrpc({
        target: mesh.cpTarget,
        caDir: mesh.caDir,
        trustDomain: 'cluster.local',
        controlPlanePid: mesh.controlPlane.pid,
        requests: CA_REQUESTS,
        concurrency: CA_CONCURRENCY,
        warmup: CA_WORKLOADS,
        workloads: CA_WORKLOADS,
      });
      ca = { rpc };
      console.log(rpc.map((r) => `${r.credential} ${fmt.rps(r.certsPerSec)} certs/s`).join(', '));
      for (const r of rpc) if (r.failed) failures.push(`CA (${r.credential}): ${r.failed} of ${r.requests} requests failed: ${r.firstError}`);
      if (rpc.length < 2) failures.push('CA: the warm-up did not give every workload a certificate, so renewals were not measured');
    } catch (err) {
      console.log('failed');
      failures.push(`CA over gRPC: ${(err as Error).message}`);
    }
    if (!isInterrupted()) {
      process.stdout.write(`measuring signWorkload in process (${CA_SIGN_SECONDS}s) ... `);
      try {
        const local = caInProcess(mesh.caDir, 'cluster.local', CA_SIGN_SECONDS);
        ca = { rpc: ca?.rpc ?? [], local };
        console.log(`${fmt.rps(local.perSec)} signatures/s`);
      } catch (err) {
        console.log('failed');
        failures.push(`CA in process: ${(err as Error).message}`);
      }
    }
  } else if (!mesh) {
    console.log('\nCA: skipped (the mesh did not start)');
  }

  printReport(rows, rateRows, verified.length ? verified : undefined, nginxNote, ca, cpuModel);

  for (const f of failures) console.error(`bench: ${f}`);
  console.log(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)}s (stopping processes...)`);
  return failures.length ? 1 : 0;
}

async function checkSpans(traces: NonNullable<Mesh['traces']>, row: Row | undefined, failures: string[]): Promise<void> {
  const { posts, bytes } = traces.sink.received();
  const spans = traces.sink.spans();
  let dropped = 0;
  for (const admin of traces.admins) {
    const text = (await httpGet(admin, '/metrics')).body;
    for (const m of text.matchAll(/^tandem_spans_dropped_total\{[^}]*\} (\S+)$/gm)) dropped += Number(m[1]);
  }
  const measured = row ? row.ok + row.non2xx : 0;
  console.log(
    `\ntrace sink (OTLP/HTTP protobuf, ${traces.sink.endpoint}/v1/traces): ${spans.length.toLocaleString('en-US')} spans decoded from ${posts} exports (${(bytes / 1024).toFixed(0)} KiB); ` +
      `${SPANS_TARGET}: ${measured.toLocaleString('en-US')} measured requests (+ warm-up), 2 spans each expected (CLIENT + SERVER); dropped in the sidecars: ${dropped}`,
  );
  if (spans.length === 0) failures.push('trace sink: no spans arrived: the spans row measured no export');
  else if (spans.length < measured * 2 - dropped) failures.push(`trace sink: ${spans.length} spans for ${measured} measured requests (2 each expected, ${dropped} dropped)`);
  const example = spans.filter((s) => s.traceId === traces.exampleTraceId);
  if (example.length < 2) {
    failures.push(`trace sink: the example request's trace ${traces.exampleTraceId} has ${example.length} span(s), 2 expected`);
    return;
  }
  const t = traceTable(example);
  console.log(`one request through ${SPANS_TARGET}'s two sidecars (trace ${traces.exampleTraceId}, the caller's traceparent sampled):`);
  printText(t.header, t.cells);
  for (const l of t.lines) console.log(`  ${l}`);
  console.log('');
  printMarkdown(t.header, t.cells);
}

main().then(
  async (code) => {
    await cleanup();
    process.exit(code);
  },
  async (err: Error) => {
    console.error(`bench: ${err.stack ?? err.message}`);
    await cleanup();
    process.exit(1);
  },
);
