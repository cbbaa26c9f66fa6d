// `make bench-xds`: how the control plane copes with many sidecars. For each N (default
// 100, 500, 1000, 2000; XDS_BENCH_N=100,500 to pick), a real control plane is started on
// a config of N/2 services (every tenth with a VirtualService), N simulated sidecars
// (bench/xds-sim.ts, in XDS_BENCH_WORKERS=2 processes) connect over real ADS streams with real workload certificates (two
// replicas per service), and it prints: initial sync time, the control plane's RSS and
// CPU, and for three events (a route edit, one endpoint joining, 10% of the sidecars
// reconnecting) convergence from the file write or the event to each sidecar's last ACK
// (p50/p99/max over the sidecars), the control plane's CPU and the bytes it wrote.
// The simulated sidecars speak Delta xDS, as the sidecar does by default;
// XDS_BENCH_PROTOCOL=sotw: State of the World instead.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { newKey } from '../certs/keys';
import { spiffeUri } from '../certs/spiffe';
import { mintToken } from '../certs/token';
import { ROOT_KEY } from '../certs/ca';
import { requestCertificate } from '../sidecar/identity/ca-client';
import { Fleet } from './xds-fleet';
import type { SimSpec, SimStatus } from './xds-worker';
import { cpuSeconds, freePort, httpGet, killAllSync, removeTmpDirs, startProc, stopAll, tmpDir, waitFor, type Proc } from './util';

const TANDEM = path.join(__dirname, '..', 'cli', 'tandem.js');
const SIZES = (process.env.XDS_BENCH_N ?? '100,500,1000,2000').split(',').map((s) => Number(s.trim())).filter((n) => n >= 2);
const EVENT_TIMEOUT_MS = Number(process.env.XDS_BENCH_TIMEOUT_S ?? 300) * 1000;
/** no response to any sidecar for this long, with every sidecar in the expected state: the event is over */
const QUIET_MS = 1000;
/** processes the simulated sidecars run in */
const WORKERS = Math.max(1, Number(process.env.XDS_BENCH_WORKERS ?? 2));
const CLUSTER = (svc: string) => `outbound|80||${svc}.default.svc.cluster.local`;

interface EventResult {
  p50: number;
  p99: number;
  max: number;
  cpuSec: number;
  mbWritten: number;
  timedOut: boolean;
  /** responses sent for the event, by type */
  responses: string;
}

interface Row {
  n: number;
  services: number;
  syncSec: number;
  syncCpuSec: number;
  rssMb: number;
  peakMb: number;
  events: Record<'route edit' | 'endpoint join' | '10% reconnect', EventResult>;
}

function meshYaml(services: number, edit?: string): string {
  const docs: string[] = [];
  for (let i = 0; i < services; i += 10) {
    const headers = i === 0 && edit ? `\n    headers: {request: {set: {x-bench-edit: "${edit}"}}}` : '';
    docs.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-${i}, namespace: default}
spec:
  hosts: [svc-${i}]
  http:
  - timeout: 3s
    retries: {attempts: 2, retryOn: 5xx}${headers}
    route:
    - destination: {host: svc-${i}}`);
  }
  return docs.join('\n---\n') + '\n';
}

const rssMb = (pid: number, field: 'VmRSS' | 'VmHWM'): number => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};
const written = (pid: number): number => Number(/^wchar: (\d+)/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);

/** `k` of `items`, picked by a seeded generator so that every run picks the same. */
function sample<T>(items: T[], k: number): T[] {
  let seed = 0x2545f491;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const pool = [...items];
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, k);
}

function pct(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] : NaN;
}

async function poolMap<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

async function runOne(n: number): Promise<Row> {
  const services = Math.max(1, Math.floor(n / 2));
  const dir = tmpDir('tandem-xds-bench-');
  const caDir = path.join(dir, 'certs');
  const configPath = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(configPath, meshYaml(services));
  const [listen, admin] = [await freePort(), await freePort()];
  // XDS_BENCH_CPU_PROF=DIR: the control plane writes a V8 CPU profile there when it stops
  const prof = process.env.XDS_BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.XDS_BENCH_CPU_PROF] : [];
  const cp: Proc = startProc('control-plane', process.execPath, [
    ...prof,
    TANDEM, 'control-plane', '--config', configPath, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--ca-dir', caDir,
  ]);
  await waitFor('control plane ready', async () => (await httpGet(admin, '/ready').catch(() => ({ status: 0 }))).status === 200, 30_000);
  const target = `127.0.0.1:${listen}`;
  const rootPem = fs.readFileSync(path.join(caDir, 'root-cert.pem'), 'utf8');
  const rootKeyPem = fs.readFileSync(path.join(caDir, ROOT_KEY), 'utf8');

  // one identity per service (its replicas share the service account), issued by the CA service
  const names = Array.from({ length: services }, (_, i) => `svc-${i}`);
  const ids = await poolMap(names, 16, async (svc) => {
    const key = newKey();
    const token = mintToken(rootKeyPem, { namespace: 'default', serviceAccount: svc, services: [svc], ttlMs: 3600e3 });
    const chain = await requestCertificate({ target, rootPem, timeoutMs: 60_000 }, key, spiffeUri({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: svc }), { token });
    return { keyPem: key.keyPem, chainPem: chain.join('') };
  });

  const fleet = new Fleet(WORKERS);
  await fleet.init(target, rootPem);
  const replicas = new Map(names.map((s) => [CLUSTER(s), 0]));
  const spec = (id: number, svc: number, address: string): SimSpec => {
    replicas.set(CLUSTER(names[svc]), (replicas.get(CLUSTER(names[svc])) ?? 0) + 1);
    return { id, service: names[svc], address, ...ids[svc] };
  };
  const all = Array.from({ length: n }, (_, i) => i);
  await fleet.add(all.map((i) => spec(i, i % services, `127.${10 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}:15006`)));
  await fleet.expect(replicas);
  const statusOf = async (watched: number[]) => {
    const { status } = await fleet.status();
    const by = new Map(status.map((st) => [st.id, st]));
    return watched.map((id) => by.get(id)!);
  };

  // ---- initial sync: everyone connects at once
  const cpu0 = cpuSeconds([cp.pid]);
  const t0 = Date.now();
  await fleet.connect();
  await waitFor(`${n} sidecars synced`, async () => (await statusOf(all)).every((st) => st.synced && st.short === 0), EVENT_TIMEOUT_MS, 200);
  const syncSec = (Date.now() - t0) / 1000;
  const syncCpuSec = cpuSeconds([cp.pid]) - cpu0;
  await waitFor('quiet', async () => Date.now() - Math.max(...(await statusOf(all)).map((st) => st.lastResponseAt)) >= QUIET_MS, EVENT_TIMEOUT_MS, 200);
  const rss = rssMb(cp.pid, 'VmRSS');

  const pushes = async (): Promise<Map<string, number>> => {
    const text = (await httpGet(admin, '/metrics')).body;
    return new Map([...text.matchAll(/^tandem_xds_pushes_total\{type="(\w+)"\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]));
  };
  const event = async (name: string, trigger: () => Promise<void>, done: (st: SimStatus) => boolean, watched: number[], reconnected = new Set<number>()): Promise<EventResult> => {
    const p0 = await pushes();
    const c0 = cpuSeconds([cp.pid]);
    const w0 = written(cp.pid);
    const start = Date.now();
    await trigger();
    let timedOut = false;
    let last: SimStatus[] = [];
    await waitFor(name, async () => {
      last = await statusOf(watched);
      return last.every(done) && Date.now() - Math.max(...last.map((st) => st.lastResponseAt)) >= QUIET_MS;
    }, EVENT_TIMEOUT_MS, 200).catch(() => (timedOut = true));
    const times = last
      .map((st) => Math.max(st.lastAckAt, reconnected.has(st.id) ? st.upAt : 0) - start)
      .map((ms) => Math.max(0, ms) / 1000)
      .sort((a, b) => a - b);
    const cpuSec = cpuSeconds([cp.pid]) - c0;
    const mbWritten = (written(cp.pid) - w0) / 2 ** 20;
    const p1 = await pushes();
    const responses = [...p1].map(([t, k]) => `${t} ${k - (p0.get(t) ?? 0)}`).join(', ');
    const res = { p50: pct(times, 0.5), p99: pct(times, 0.99), max: times[times.length - 1], cpuSec, mbWritten, timedOut, responses };
    process.stderr.write(`  N=${n} ${name}: p50 ${res.p50.toFixed(3)} s p99 ${res.p99.toFixed(3)} s max ${res.max.toFixed(3)} s, CPU ${cpuSec.toFixed(2)} s, ${mbWritten.toFixed(1)} MB, responses ${responses}${timedOut ? ' (TIMED OUT)' : ''}\n`);
    return res;
  };

  // ---- a route edit: one VirtualService gets a header; every sidecar's routes carry it
  const routeMarker = `edit-${Date.now()}`;
  await fleet.markers({ route: routeMarker });
  const routeEdit = await event('route edit', async () => fs.writeFileSync(configPath, meshYaml(services, routeMarker)), (st) => st.routeMarked, all);

  // ---- one endpoint joins svc-1: every sidecar's svc-1 endpoints include it
  const endpoint = '127.250.250.250';
  await fleet.markers({ endpoint });
  await fleet.add([spec(n, 1 % services, `${endpoint}:15006`)]);
  await fleet.expect(replicas);
  const join = await event('endpoint join', () => fleet.connect([n]), (st) => st.endpointMarked && st.short === 0, all);

  // ---- 10% reconnect: a random tenth of the sidecars (seeded, the same every run) drop their
  // streams and come back after the sidecar's first retry delay (bench/xds-worker.ts). Where
  // both replicas of a service are among them, the service leaves the mesh for that moment,
  // and every sidecar's clusters and routes change twice.
  const everyone = [...all, n];
  const again = new Set(sample(everyone, Math.round(everyone.length / 10)));
  const reconnect = await event('10% reconnect', () => fleet.reconnect([...again]), (st) => st.short === 0 && (!again.has(st.id) || st.upAt > 0), everyone, again);
  const peak = rssMb(cp.pid, 'VmHWM');
  const { drops } = await fleet.status();
  if (drops.size) process.stderr.write(`  N=${n}: streams that ended unasked (and were reopened): ${[...drops].map(([why, k]) => `${k} x ${why}`).join('; ')}\n`);
  await fleet.stop();
  await cp.stop();
  return { n, services, syncSec, syncCpuSec, rssMb: rss, peakMb: peak, events: { 'route edit': routeEdit, 'endpoint join': join, '10% reconnect': reconnect } };
}

function print(rows: Row[]): void {
  const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const out: string[] = [];
  const protocol = process.env.XDS_BENCH_PROTOCOL === 'sotw' ? 'State of the World' : 'Delta xDS';
  out.push('', `## xDS at scale (control plane, N simulated sidecars on N/2 services, ${protocol})`, '');
  out.push('| N | services | initial sync s | sync CPU s | RSS after sync MB | peak RSS MB |');
  out.push('|---|---|---|---|---|---|');
  for (const r of rows) out.push(`| ${r.n} | ${r.services} | ${f(r.syncSec)} | ${f(r.syncCpuSec)} | ${f(r.rssMb, 0)} | ${f(r.peakMb, 0)} |`);
  out.push('', 'Convergence: from the file write (or the event) to each sidecar\'s last ACK, over all sidecars; CPU and MB written are the control plane\'s for the event.', '');
  out.push('| N | event | p50 s | p99 s | max s | CP CPU s | CP MB written | responses |');
  out.push('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    for (const [name, e] of Object.entries(r.events)) {
      out.push(`| ${r.n} | ${name} | ${f(e.p50, 3)} | ${f(e.p99, 3)} | ${f(e.max, 3)}${e.timedOut ? ' (timed out)' : ''} | ${f(e.cpuSec)} | ${f(e.mbWritten, 1)} | ${e.responses} |`);
    }
  }
  console.log(out.join('\n'));
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const n of SIZES) {
    process.stderr.write(`bench-xds: N=${n}\n`);
    try {
      rows.push(await runOne(n));
    } catch (err) {
      process.stderr.write(`bench-xds: N=${n} failed: ${(err as Error).message}\n`);
      await stopAll();
    }
  }
  print(rows);
}

process.on('exit', () => {
  killAllSync();
  removeTmpDirs();
});
process.on('SIGINT', () => process.exit(130));
main().then(
  async () => {
    await stopAll();
    process.exit(0);
  },
  async (err) => {
    console.error(err);
    await stopAll();
    process.exit(1);
  },
);
