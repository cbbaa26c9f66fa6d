// `make bench`: requests/s, latency and proxy CPU per request, in one run, for
//   direct            - load straight to a tiny backend HTTP server;
//   tandem plaintext  - client -> client sidecar outbound -> h2c -> server sidecar inbound -> backend
//                       (service backend-plain: PeerAuthentication PERMISSIVE + DestinationRule tls DISABLE);
//   tandem mTLS       - the same hop as the mesh does it by default: TLS 1.3 h2 with client
//                       certificates (service backend: STRICT, ISTIO_MUTUAL);
//   nginx             - a reverse proxy with upstream keepalive in front of the same backend (if installed).
// One control plane, one client sidecar, a server sidecar per service, each with a bootstrap
// token minted with the mesh root key. Before measuring, a byte-recording relay between the
// sidecars checks the wire (a TLS ClientHello for backend, the h2c preface for backend-plain),
// and every measured request is checked at the backend: a SPIFFE x-forwarded-client-cert on
// all mTLS requests, on none of the plaintext ones.
//   tandem mTLS + access log - the mTLS hop with the sidecars' default access log (stdout, one
//                       JSON line per request on each side) through its own client and server
//                       sidecars (service backend-logged); the others run with --access-log off,
//                       so the difference is what the log costs. Metrics are recorded in all.
//   tandem mTLS, obs off / + access log + spans (BENCH_OBS, on unless `off`) - the mTLS hop
//                       through two more pairs: nothing recorded (--access-log off --metrics off,
//                       no OTLP), and the defaults plus spans exported over OTLP/HTTP protobuf to
//                       a sink in this process (trace-sink.ts), which must receive them all.
// The tandem hops are measured in alternating halves (A B C C B A) after all have warmed
// up, so that the noise of a shared machine falls on all alike.
// The load generator (autocannon), the backend, and every proxy run in separate processes;
// proxy CPU is utime+stime from /proc/<pid>/stat, before/after each measured run, divided by
// the requests completed.
// Then the CA (bench/ca.ts): certificates/s and latency of CSRs sent to the running control
// plane over gRPC the way sidecars send them (bootstrap token, then renewal over the
// certificate), and the raw signWorkload rate in process.
// Env: BENCH_DURATION (s, default 8), BENCH_WARMUP (s, default 2), BENCH_CONNECTIONS
// (default 32), BENCH_NGINX (`off`, or the nginx binary to use), BENCH_CA (`off`),
// BENCH_OBS (`off`), BENCH_CA_REQUESTS (default 500), BENCH_CA_CONCURRENCY (16), BENCH_CA_WORKLOADS (64),
// BENCH_CA_SIGN_SECONDS (2).
// Files: config.ts (the env), target.ts (targets, rows, the backend process), tandem.ts
// (the mesh and the wire check), nginx.ts, measure.ts (the load generator and the
// measured runs), report.ts (tables and Markdown); this file runs them in order.
import * as os from 'node:os';
import * as path from 'node:path';
import { caInProcess, caOverGrpc } from './ca';
import { CA_CONCURRENCY, CA_OFF, CA_REQUESTS, CA_SIGN_SECONDS, CA_WORKLOADS, CONNECTIONS, DURATION, WARMUP } from './config';
import { isInterrupted, measure, measureGroup, setInterrupted, startLoadGenerator } from './measure';
import { nginxVersion, startNginx } from './nginx';
import { fmt, printMarkdown, printReport, printText, traceTable, type CaResults } from './report';
import { SPANS_TARGET, startTandem, type Mesh } from './tandem';
import { startBackend, type Row, type Target } from './target';
import { executable, httpGet, killAllSync, removeTmpDirs, stopAll, tmpDir, which } from './util';

// ---------------------------------------------------------------------------------------------
// Main, with cleanup on every way out.

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= stopAll().finally(removeTmpDirs);
  return cleaning;
}

function interrupt(signal: string, code: number): void {
  if (isInterrupted()) return;
  setInterrupted();
  console.error(`\nbench: ${signal}, stopping everything`);
  void cleanup().finally(() => process.exit(code));
}
process.on('SIGINT', () => interrupt('interrupted', 130));
process.on('SIGTERM', () => interrupt('terminated', 143));
process.on('exit', () => {
  killAllSync();
  removeTmpDirs();
});

async function main(): Promise<number> {
  const started = Date.now();
  const dir = tmpDir('tandem-bench-');
  const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`Tandem benchmark: ${CONNECTIONS} connections, ${WARMUP}s warm-up + ${DURATION}s measured per target`);
  console.log(`host: ${os.cpus().length} x ${cpuModel}, Node ${process.version}, ${os.type()} ${os.release()}`);
  console.log('load generator: autocannon (separate process); body: 32-byte JSON; all on 127.0.0.1\n');

  const backend = await startBackend();
  startLoadGenerator();

  const targets: Target[] = [{ name: 'direct', url: `http://127.0.0.1:${backend.port}/`, proxies: [] }];
  const failures: string[] = [];

  let mesh: Mesh | undefined;
  try {
    mesh = await startTandem(dir, backend.proc, backend.port);
    targets.push(...mesh.targets);
    console.log('wire check (5 requests each through a byte-recording relay between the sidecars, before measuring):');
    for (const v of mesh.verified) console.log(`  ${v}`);
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
    nginxNote = `nginx ${nginxVersion(nginxBin)} (${nginxBin}): worker_processes 1, upstream keepalive 64, access_log off`;
    try {
      targets.push(await startNginx(nginxBin, dir, backend.port));
    } catch (err) {
      failures.push(`nginx: could not start: ${(err as Error).message}`);
    }
  }
  console.log('');

  if (isInterrupted()) return 130;
  const rows: Row[] = [];
  const report = (t: Target, r: Row, named = false) => {
    rows.push(r);
    const mtls = t.xfcc ? `, ${r.xfcc}/${r.served} with a SPIFFE XFCC (${t.xfcc === 'all' ? 'mTLS' : 'plaintext'})` : '';
    console.log(`${named ? `${t.name}: ` : ''}${fmt.rps(r.rps)} req/s, p99 ${fmt.ms(r.p99)} ms, ${r.ok} ok (backend served ${r.served}${mtls})${r.non2xx || r.errors || r.timeouts ? ` (non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts})` : ''}`);
    if (r.ok === 0) failures.push(`${t.name}: no successful responses`);
    if (t.xfcc === 'all' && r.xfcc !== r.served) failures.push(`${t.name}: only ${r.xfcc} of ${r.served} requests reached the backend over mTLS (with a SPIFFE XFCC)`);
    if (t.xfcc === 'none' && r.xfcc !== 0) failures.push(`${t.name}: ${r.xfcc} of ${r.served} requests reached the backend with a SPIFFE XFCC: not plaintext`);
  };
  for (let i = 0; i < targets.length; i++) {
    if (isInterrupted()) return 130;
    const t = targets[i];
    const group = t.group ? targets.filter((x) => x.group === t.group) : [];
    if (group.some((g) => rows.some((r) => r.target === g.name))) continue;
    const order = group.map((_, k) => String.fromCharCode(65 + k));
    process.stdout.write(`measuring ${group.length ? `${group.map((g) => g.name).join(', ')}, alternating (${[...order, ...[...order].reverse()].join(' ')}, ${DURATION / 2}s each)` : t.name} ... ${group.length ? '\n  ' : ''}`);
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

  printReport(rows, mesh ? mesh.verified : undefined, nginxNote, ca, cpuModel);

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
