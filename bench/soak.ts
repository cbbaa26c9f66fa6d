// `make soak`: does the mesh hold steady over time? SOAK_SECONDS (default 600) of a fixed
// request rate (SOAK_RATE, default 200/s) through a real mesh on 127.0.0.1,
//   load (this process) -> client sidecar outbound -> mTLS -> backend sidecar inbound -> app,
// with connections opening and closing all the time (soak-load.ts), workload certificates
// that rotate every ~10 s (--cert-ttl 22s; a sidecar renews at 40-50% of the life) and the
// watched mesh.yaml rewritten every 30 s. Every 10 s it prints a row: each process's RSS
// (/proc/PID/status VmRSS, also sampled every 2 s in between for the windows' floors), the
// interval's requests, and the checks that rotation is real, in the sidecars and at the
// control plane (soak-certs.ts). At the end: requests sent and failed, what the app saw,
// the rotations and config edits seen to apply, and each process's RSS growth (of the
// floor: soak-memory.ts) from the window after warm-up (minute 2) to the last minute.
// Exit 1 if a request failed (any non-2xx or error), the RSS of a sidecar or of the
// control plane grew more than 10%, rotation or a config edit did not happen, or a process
// died. The app and this process are shown, not judged: they are not the mesh.
// Files: soak-mesh.ts (the processes and the config), soak-load.ts, soak-app.ts,
// soak-certs.ts, soak-memory.ts, soak-report.ts.
import * as os from 'node:os';
import { controlPlaneExpiries, RotationWatch } from './soak-certs';
import { SoakLoad } from './soak-load';
import { SERVICE, startSoakMesh, v1Weight, type SoakMesh } from './soak-mesh';
import { rssMiB, type Sample } from './soak-memory';
import { reportCertificates, reportConfigEdits, reportMemory, reportRequests, Table, type Edit, type Watched } from './soak-report';
import { cleanup, cleanupOnEveryExit, httpGet, isInterrupted, tmpDir } from './util';

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
/** RSS alone, more often, so that each window's floor is one taken after a collection */
const RSS_EVERY_S = 2;
const EDIT_EVERY_S = 30;
/** edits fall between samples, so a row never straddles a half-applied edit */
const EDIT_OFFSET_S = 15;
/** SPEC section 1 says sidecars renew at half-life; 22 s certificates renew at least every 11 s */
const MIN_ROTATIONS = (seconds: number) => Math.floor(seconds / 11) - 1;
const RSS_LIMIT = 0.1;

cleanupOnEveryExit('soak');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function main(): Promise<number> {
  const failures: string[] = [];
  const dir = tmpDir('tandem-soak-');
  console.log(`Tandem soak: ${SECONDS} s at ${RATE} req/s through load -> client sidecar -> mTLS -> ${SERVICE} sidecar -> app, all on 127.0.0.1`);
  console.log(`host: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${os.type()} ${os.release()}`);
  console.log('load: half HTTP/1.1 keep-alive (1 in 50 with Connection: close), a fifth HTTP/1.1 on a new connection each, 3/10 h2c on sessions retired after 300 requests; one in three a POST of 1 KiB');
  console.log(`certificates: --cert-ttl ${CERT_TTL}, so each sidecar renews every 8.8-11 s; config: mesh.yaml rewritten every ${EDIT_EVERY_S} s (the v1/all split flips 90/10 <-> 10/90)`);
  console.log(`every ${SAMPLE_EVERY_S} s: VmRSS of each process (also every ${RSS_EVERY_S} s, for each window's floor), each sidecar's /certs and rotation count, and the serial its inbound port shows a new TLS handshake\n`);

  const mesh: SoakMesh = await startSoakMesh(dir, CERT_TTL);
  const procs: Watched[] = [
    { label: 'control plane', pid: mesh.controlPlane.pid, judged: true },
    { label: 'client sidecar', pid: mesh.client.proc.pid, judged: true },
    { label: `${SERVICE} sidecar`, pid: mesh.server.proc.pid, judged: true },
    { label: 'app', pid: mesh.app.pid, judged: false },
    { label: 'soak (load)', pid: process.pid, judged: false },
  ];
  const sidecars = [mesh.client, mesh.server];
  const watches = sidecars.map((s) => new RotationWatch(s.name, s.service, s.admin, s.inbound));
  const sampleCerts = async (t: number) => {
    await Promise.all(watches.map((w) => w.sample()));
    const expiries = await controlPlaneExpiries(mesh.cpAdmin);
    await Promise.all(watches.map((w) => w.checkControlPlane(expiries.get(w.service), t)));
  };
  await sampleCerts(0);
  const logLinesAtStart = sidecars.map((s) => s.rotationLogLines());
  const accessLogAtStart = sidecars.map((s) => s.accessLogLines());
  const appStart = await mesh.appStats();

  const load = new SoakLoad({ port: mesh.client.outbound, host: SERVICE, rate: RATE });
  const samples: Sample[] = [];
  const edits: Edit[] = [];
  const table = new Table(procs, SAMPLE_EVERY_S);
  console.log(`columns: the interval's rate and latency; failed requests so far; requests in flight; certificate renewals so far (${sidecars.map((s) => s.name).join('/')}); config edits seen in a response / written`);
  console.log(table.header());

  const started = Date.now();
  load.start();
  for (let t = 1; t <= SECONDS && !isInterrupted(); t++) {
    await sleep(started + t * 1000 - Date.now());
    if (isInterrupted()) break;
    if (t % EDIT_EVERY_S === EDIT_OFFSET_S && t < SECONDS) {
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
    const renewals = watches.map((w) => w.rotations).join('/');
    const applied = edits.filter((e) => load.byConfig.has(e.generation)).length;
    console.log(table.row(t, load.takeInterval(), load.failed, load.pending, renewals, `${applied}/${edits.length}`, s));
  }
  if (isInterrupted()) return 130;
  const stopAt = Date.now();
  await load.stop();
  const drainedMs = Date.now() - stopAt;
  // access log lines are written in batches, a moment after the response
  await sleep(1500);

  const app = await mesh.appStats();
  failures.push(
    ...reportRequests({
      load,
      seconds: SECONDS,
      startedAt: started,
      drainedMs,
      // the warm-up request before the load is not the load's
      app: { ...app, served: app.served - appStart.served, h1: app.h1 - appStart.h1, h2: app.h2 - appStart.h2 },
      accessLog: sidecars.map((s, i) => `${s.name} ${s.accessLogLines() - accessLogAtStart[i]}`),
    }),
    ...reportCertificates({
      watches,
      logLines: sidecars.map((s, i) => s.rotationLogLines() - logLinesAtStart[i]),
      certTtl: CERT_TTL,
      seconds: SECONDS,
      minRotations: MIN_ROTATIONS(SECONDS),
    }),
    ...reportConfigEdits(edits, load, v1Weight),
    ...reportMemory(samples, procs, SECONDS, RSS_LIMIT),
  );

  console.log('');
  for (const f of failures) console.error(`soak: FAIL: ${f}`);
  console.log(failures.length ? `soak: FAILED (${failures.length} problem(s))` : 'soak: PASSED: no request lost, the mesh\'s RSS flat, certificates rotated and config edits applied');
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
