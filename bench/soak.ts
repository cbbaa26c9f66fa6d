// `make soak`: does the mesh hold steady over time? SOAK_SECONDS (default 600) of a fixed
// request rate (SOAK_RATE, default 200/s) through a real mesh on 127.0.0.1,
//   load (this process) -> client sidecar outbound -> mTLS -> backend sidecar inbound -> app,
// with connections opening and closing all the time (soak-load.ts), workload certificates
// that rotate every ~10 s (--cert-ttl 22s; a sidecar renews at 40-50% of the life) and the
// watched mesh.yaml rewritten every 30 s. Every 10 s it prints a row: each process's RSS
// (/proc/PID/status VmRSS, also sampled every 2 s in between for the windows' means), the
// interval's requests, and the checks that rotation is real, in the sidecars and at the
// control plane (soak-certs.ts). At the end:
// requests sent and failed, what the app saw, the rotations and config edits seen to
// apply, and each process's RSS growth from the window after warm-up (minute 2) to the
// last minute. Exit 1 if a request failed (any non-2xx or error), a sidecar's RSS grew
// more than 10%, rotation or a config edit did not happen, or a process died.
// Files: soak-mesh.ts (the processes and the config), soak-load.ts, soak-app.ts,
// soak-certs.ts, soak-memory.ts.
import * as os from 'node:os';
import { controlPlaneExpiries, RotationWatch } from './soak-certs';
import { SoakLoad, type Interval } from './soak-load';
import { SERVICE, startSoakMesh, v1Weight, type SoakMesh } from './soak-mesh';
import { growthOf, rssMiB, windowsFor, type Sample } from './soak-memory';
import { httpGet, killAllSync, removeTmpDirs, stopAll, tmpDir } from './util';

function envNumber(name: string, dflt: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw.replace(/s$/, ''));
  if (!Number.isFinite(v) || v < min) {
    console.error(`soak: ${name}=${raw} is not a number >= ${min}`);
    process.exit(2);
  }
  return v;
}

const SECONDS = Math.round(envNumber('SOAK_SECONDS', 600, 30));
const RATE = envNumber('SOAK_RATE', 200, 1);
/** a sidecar renews between 40% and 50% of its certificate's life: 8.8-11 s */
const CERT_TTL = '22s';
/** a row of the table: RSS, rotation checks, the interval's requests */
const SAMPLE_EVERY_S = 10;
/** RSS alone, more often: a window's mean then rides over the garbage collector's swings */
const RSS_EVERY_S = 2;
const EDIT_EVERY_S = 30;
/** edits fall between samples, so a row never straddles a half-applied edit */
const EDIT_OFFSET_S = 15;
/** SPEC section 1 says sidecars renew at half-life; 22 s certificates renew at least every 11 s */
const MIN_ROTATIONS = (seconds: number) => Math.floor(seconds / 11) - 1;
const RSS_LIMIT = 0.1;
/** a generation's observed split may stray this far from its weight (with enough responses to tell) */
const SPLIT_TOLERANCE = 0.05;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= stopAll().finally(removeTmpDirs);
  return cleaning;
}
let interrupted = false;
function interrupt(signal: string, code: number): void {
  if (interrupted) return;
  interrupted = true;
  console.error(`\nsoak: ${signal}, stopping everything`);
  void cleanup().finally(() => process.exit(code));
}
process.on('SIGINT', () => interrupt('interrupted', 130));
process.on('SIGTERM', () => interrupt('terminated', 143));
process.on('exit', () => {
  killAllSync();
  removeTmpDirs();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
const mib = (v: number | undefined) => (v === undefined ? 'gone' : v.toFixed(1));

interface Edit {
  generation: number;
  writtenAt: number;
  cpError?: string;
}

async function main(): Promise<number> {
  const failures: string[] = [];
  const dir = tmpDir('tandem-soak-');
  console.log(`Tandem soak: ${SECONDS} s at ${RATE} req/s through load -> client sidecar -> mTLS -> ${SERVICE} sidecar -> app, all on 127.0.0.1`);
  console.log(`host: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${os.type()} ${os.release()}`);
  console.log('load: half HTTP/1.1 keep-alive (1 in 50 with Connection: close), a fifth HTTP/1.1 on a new connection each, 3/10 h2c on sessions retired after 300 requests; one in three a POST of 1 KiB');
  console.log(`certificates: --cert-ttl ${CERT_TTL}, so each sidecar renews every 8.8-11 s; config: mesh.yaml rewritten every ${EDIT_EVERY_S} s (the v1/all split flips 90/10 <-> 10/90)`);
  console.log(`every ${SAMPLE_EVERY_S} s: VmRSS of each process (also every ${RSS_EVERY_S} s for the means), each sidecar's /certs and rotation count, and the serial its inbound port shows a new TLS handshake\n`);

  const mesh: SoakMesh = await startSoakMesh(dir, CERT_TTL);
  const procs = [
    { label: 'control plane', pid: mesh.controlPlane.pid, judged: false },
    { label: 'client sidecar', pid: mesh.client.proc.pid, judged: true },
    { label: `${SERVICE} sidecar`, pid: mesh.server.proc.pid, judged: true },
    { label: 'app', pid: mesh.app.pid, judged: false },
    { label: 'soak (load)', pid: process.pid, judged: false },
  ];
  const watches = [mesh.client, mesh.server].map((s) => new RotationWatch(s.name, s.service, s.admin, s.inbound));
  const sampleCerts = async (t: number) => {
    await Promise.all(watches.map((w) => w.sample()));
    const expiries = await controlPlaneExpiries(mesh.cpAdmin);
    await Promise.all(watches.map((w) => w.checkControlPlane(expiries.get(w.service), t)));
  };
  await sampleCerts(0);
  const logLinesAtStart = [mesh.client, mesh.server].map((s) => s.rotationLogLines());
  const accessLogAtStart = [mesh.client, mesh.server].map((s) => s.accessLogLines());
  const appAtStart = await mesh.appStats();

  const load = new SoakLoad({ port: mesh.client.outbound, host: SERVICE, rate: RATE });
  const samples: Sample[] = [];
  const edits: Edit[] = [];
  const header =
    `${pad('t s', 5)} ${pad('req/s', 6)} ${pad('failed', 6)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('pending', 7)} ${pad('renewals', 9)} ${pad('config', 6)}  | RSS MiB: ` +
    procs.map((p) => pad(p.label, Math.max(7, p.label.length))).join(' ');
  console.log(header);
  const row = (t: number, iv: Interval, s: Sample) => {
    const lat = [...iv.latenciesMs].sort((a, b) => a - b);
    const renewals = watches.map((w) => w.rotations).join('/');
    const applied = edits.filter((e) => load.byConfig.has(e.generation)).length;
    console.log(
      `${pad(t, 5)} ${pad((iv.sent / SAMPLE_EVERY_S).toFixed(1), 6)} ${pad(load.failed, 6)} ${pad(percentile(lat, 50).toFixed(1), 7)} ${pad(percentile(lat, 99).toFixed(1), 7)} ${pad(load.pending, 7)} ${pad(renewals, 9)} ${pad(`${applied}/${edits.length}`, 6)}  |          ` +
        procs.map((p, i) => pad(mib(s.rss[i]), Math.max(7, p.label.length))).join(' '),
    );
  };

  const started = Date.now();
  load.start();
  for (let t = 1; t <= SECONDS && !interrupted; t++) {
    await sleep(started + t * 1000 - Date.now());
    if (interrupted) break;
    if (t % EDIT_EVERY_S === EDIT_OFFSET_S && t < SECONDS) {
      // the edit before this one had 30 s to show up in a response
      const prev = edits[edits.length - 1];
      if (prev && !load.byConfig.has(prev.generation)) failures.push(`config generation ${prev.generation} never reached a response in ${EDIT_EVERY_S} s`);
      const generation = edits.length + 1;
      mesh.writeConfig(generation);
      edits.push({ generation, writtenAt: Date.now() });
    }
    if (t % RSS_EVERY_S && t % SAMPLE_EVERY_S) continue;
    const s: Sample = { t, rss: procs.map((p) => rssMiB(p.pid)) };
    samples.push(s);
    const gone = procs.filter((_, i) => s.rss[i] === undefined);
    for (const p of gone) failures.push(`${p.label} (pid ${p.pid}) exited during the soak`);
    if (gone.length) break;
    if (t % SAMPLE_EVERY_S) continue;
    await sampleCerts(t).catch((err: Error) => {
      failures.push(`rotation check at ${t} s: ${err.message}`);
    });
    const last = edits[edits.length - 1];
    if (last && last.cpError === undefined) last.cpError = await controlPlaneError(mesh.cpAdmin);
    row(t, load.takeInterval(), s);
  }
  if (interrupted) return 130;
  const stopAt = Date.now();
  await load.stop();
  const drained = Date.now() - stopAt;
  // access log lines are written in batches, a moment after the response
  await sleep(1500);
  const app = await mesh.appStats();

  // ---- requests
  const served = app.served - appAtStart.served;
  console.log(`\nrequests: ${load.sent} sent at ${(load.sent / SECONDS).toFixed(1)}/s, ${load.ok} ok, ${load.failed} failed (the last in-flight ones ended ${drained} ms after the load stopped)`);
  for (const [kind, k] of Object.entries(load.byKind)) console.log(`  ${kind.padEnd(14)} ${pad(k.sent, 7)} sent ${pad(k.failed, 5)} failed`);
  console.log(`connections the load opened: ${load.opened.keepAlive} keep-alive, ${load.opened.fresh} one-request, ${load.opened.h2Sessions} h2 sessions`);
  console.log(`app: ${served} served (HTTP/1.1 ${app.h1 - appAtStart.h1}, h2c ${app.h2 - appAtStart.h2}), ${app.shortBodies} short bodies, ${app.withoutXfcc} without a SPIFFE XFCC`);
  const logged = [mesh.client, mesh.server].map((s, i) => `${s.name} ${s.accessLogLines() - accessLogAtStart[i]}`);
  console.log(`access log lines: ${logged.join(', ')}`);
  if (load.failed) {
    failures.push(`${load.failed} of ${load.sent} requests failed`);
    console.log('failures by reason:');
    for (const [reason, n] of [...load.failureReasons].sort((a, b) => b[1] - a[1])) console.log(`  ${pad(n, 6)}  ${reason}`);
    console.log('first failures:');
    for (const f of load.failures) console.log(`  ${((f.at - started) / 1000).toFixed(1)} s  ${f.kind}: ${f.what}`);
  }
  if (served !== load.sent) console.log(`note: the app served ${served} requests for ${load.sent} sent${served > load.sent ? ' (more: some were sent twice, e.g. retried)' : ''}`);
  if (app.shortBodies || app.withoutXfcc) failures.push(`the app saw ${app.shortBodies} short bodies and ${app.withoutXfcc} requests without a SPIFFE XFCC`);

  // ---- certificates
  console.log(`\ncertificate rotation (--cert-ttl ${CERT_TTL}; at least ${MIN_ROTATIONS(SECONDS)} renewals expected in ${SECONDS} s):`);
  for (const [i, w] of watches.entries()) {
    const logLines = [mesh.client, mesh.server][i].rotationLogLines() - logLinesAtStart[i];
    console.log(
      `  ${w.name}: ${w.rotations} renewals (tandem_certificate_rotations_total), ${logLines} "certificate … until" log lines, ${w.serials.size} serials seen at /certs; ` +
        `new handshakes on its inbound port showed the current certificate ${w.current} times, an older one ${w.stale} times`,
    );
    for (const e of w.probeErrors) console.log(`    probe error: ${e}`);
    console.log(`    the control plane's /debug/syncz (tandem status CERT EXPIRES) showed the expiry of the certificate held ${w.cpCurrent} times, another ${w.cpStale.length} times`);
    for (const e of w.cpStale.slice(0, 3)) console.log(`      ${e}`);
    if (w.cpStale.length) failures.push(`${w.name}: the control plane reported a certificate expiry other than the one held in ${w.cpStale.length} of ${w.cpStale.length + w.cpCurrent} samples`);
    if (w.rotations < MIN_ROTATIONS(SECONDS)) failures.push(`${w.name}: ${w.rotations} certificate renewals in ${SECONDS} s, at least ${MIN_ROTATIONS(SECONDS)} expected`);
    if (w.stale) failures.push(`${w.name}: ${w.stale} new handshakes were shown a certificate older than the one held`);
    if (w.current === 0) failures.push(`${w.name}: no TLS probe of its inbound port succeeded`);
  }

  // ---- config edits
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
    if (!c) continue;
    const v1 = c.subsets.get('v1') ?? 0;
    const total = [...c.subsets.values()].reduce((a, b) => a + b, 0);
    const want = v1Weight(e.generation) / 100;
    splits.push(`${e.generation}: ${((100 * v1) / total).toFixed(1)}% of ${total} (${want * 100}%)`);
    if (total >= 500 && Math.abs(v1 / total - want) > SPLIT_TOLERANCE) failures.push(`config generation ${e.generation}: subset v1 got ${((100 * v1) / total).toFixed(1)}% of ${total} responses, its weight is ${want * 100}%`);
  }
  if (splits.length) console.log(`  subset v1's share per generation (weight): ${splits.join(', ')}`);
  const lastEdit = edits[edits.length - 1];
  if (lastEdit && !load.byConfig.has(lastEdit.generation)) failures.push(`config generation ${lastEdit.generation} never reached a response`);

  // ---- memory
  const w = windowsFor(SECONDS);
  console.log(`\nRSS growth: mean VmRSS in ${w.early[0]}-${w.early[1]} s (after warm-up) against ${w.late[0]}-${w.late[1]} s (the end); limit ${RSS_LIMIT * 100}% for the sidecars`);
  for (const [i, p] of procs.entries()) {
    const g = growthOf(samples, i, w);
    if (!g) {
      console.log(`  ${p.label.padEnd(16)} not enough samples`);
      if (p.judged) failures.push(`${p.label}: not enough RSS samples to judge its growth`);
      continue;
    }
    const over = g.growth > RSS_LIMIT;
    console.log(
      `  ${p.label.padEnd(16)} ${pad(g.early.toFixed(1), 7)} MiB -> ${pad(g.late.toFixed(1), 7)} MiB  ${pad(`${g.growth >= 0 ? '+' : ''}${(g.growth * 100).toFixed(1)}%`, 7)}` +
        `  (${g.samples[0]} and ${g.samples[1]} samples)${p.judged ? (over ? '  OVER THE LIMIT' : '') : '  (not judged)'}`,
    );
    if (p.judged && over) failures.push(`${p.label}: RSS grew ${(g.growth * 100).toFixed(1)}% (${g.early.toFixed(1)} -> ${g.late.toFixed(1)} MiB)`);
  }

  console.log('');
  for (const f of failures) console.error(`soak: FAIL: ${f}`);
  console.log(failures.length ? `soak: FAILED (${failures.length} problem(s))` : 'soak: PASSED: no request lost, sidecar RSS flat, certificates rotated and config edits applied');
  return failures.length ? 1 : 0;
}

/** The control plane's last config error, or '' if it has none. */
async function controlPlaneError(admin: number): Promise<string> {
  try {
    const r = await httpGet(admin, '/debug/config');
    const s = JSON.parse(r.body) as { lastError?: { message?: string } };
    return s.lastError ? (s.lastError.message ?? JSON.stringify(s.lastError)) : '';
  } catch (err) {
    return `no answer at /debug/config: ${(err as Error).message}`;
  }
}

main().then(
  async (code) => {
    console.log('stopping processes...');
    await cleanup();
    process.exit(code);
  },
  async (err: Error) => {
    console.error(`soak: ${err.stack ?? err.message}`);
    await cleanup();
    process.exit(1);
  },
);
