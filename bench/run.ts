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
// The two tandem hops are measured in alternating halves (A B B A) after both have warmed
// up, so that the noise of a shared machine falls on both alike.
// The load generator (autocannon), the backend, and every proxy run in separate processes;
// proxy CPU is utime+stime from /proc/<pid>/stat, before/after each measured run, divided by
// the requests completed.
// Then the CA (bench/ca.ts): certificates/s and latency of CSRs sent to the running control
// plane over gRPC the way sidecars send them (bootstrap token, then renewal over the
// certificate), and the raw signWorkload rate in process.
// Env: BENCH_DURATION (s, default 8), BENCH_WARMUP (s, default 2), BENCH_CONNECTIONS
// (default 32), BENCH_NGINX (`off`, or the nginx binary to use), BENCH_CA (`off`),
// BENCH_CA_REQUESTS (default 500), BENCH_CA_CONCURRENCY (16), BENCH_CA_WORKLOADS (64),
// BENCH_CA_SIGN_SECONDS (2).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT_CERT, ROOT_KEY } from '../certs/ca';
import { spiffeUri } from '../certs/spiffe';
import { mintToken } from '../certs/token';
import { caInProcess, caOverGrpc, type CaLocalResult, type CaRpcResult } from './ca';
import type { LoadRequest, LoadResult } from './load';
import { classify, startRelay, type Relay } from './relay';
import { cpuSeconds, executable, forkProc, freePort, httpGet, killAllSync, processTree, removeTmpDirs, startProc, stopAll, tmpDir, waitFor, which, type Proc } from './util';

const TANDEM = path.resolve(__dirname, '..', 'cli', 'tandem.js');

function envNumber(name: string, dflt: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw.replace(/s$/, ''));
  if (!Number.isFinite(v) || v < min) {
    console.error(`bench: ${name}=${raw} is not a number >= ${min}`);
    process.exit(2);
  }
  return v;
}

const DURATION = envNumber('BENCH_DURATION', 8, 1);
const WARMUP = envNumber('BENCH_WARMUP', 2, 0);
const CONNECTIONS = Math.round(envNumber('BENCH_CONNECTIONS', 32, 1));
const CA_OFF = process.env.BENCH_CA === 'off';
const CA_REQUESTS = Math.round(envNumber('BENCH_CA_REQUESTS', 500, 1));
const CA_CONCURRENCY = Math.round(envNumber('BENCH_CA_CONCURRENCY', 16, 1));
const CA_WORKLOADS = Math.round(envNumber('BENCH_CA_WORKLOADS', 64, 1));
const CA_SIGN_SECONDS = envNumber('BENCH_CA_SIGN_SECONDS', 2, 0.1);

// ---------------------------------------------------------------------------------------------
// The load generator child.

let loadProc: Proc | undefined;
let interrupted = false;
let nextId = 1;

function load(url: string, host: string | undefined, durationSec: number, raw = false): Promise<LoadResult> {
  const child = loadProc!.child;
  const req: LoadRequest = { id: nextId++, url, host, connections: CONNECTIONS, durationSec, raw };
  return new Promise((resolve, reject) => {
    const onMsg = (m: LoadResult) => {
      if (m.id !== req.id) return;
      child.off('message', onMsg);
      child.off('exit', onExit);
      if (m.error) reject(new Error(`load generator: ${m.error}`));
      else resolve(m);
    };
    const onExit = () => reject(new Error(`load generator exited: ${loadProc!.output().slice(-2000)}`));
    if (interrupted || !child.connected) {
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
// Targets.

interface Target {
  name: string;
  url: string;
  host?: string;
  /** Processes whose CPU counts as "proxy", grouped for the breakdown. */
  proxies: { label: string; pid: number }[];
  /** tandem: whether every request must reach the backend with a SPIFFE XFCC (mTLS) or none may */
  xfcc?: 'all' | 'none';
  /** the target this one is measured alternately with (see measurePair) */
  pair?: string;
}

interface Row {
  target: string;
  rps: number;
  p50: number;
  p99: number;
  proxyUsPerReq?: number;
  breakdown: { label: string; usPerReq: number }[];
  backendUsPerReq: number;
  loadgenUsPerReq: number;
  ok: number;
  served: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** requests that reached the backend with a SPIFFE XFCC */
  xfcc: number;
}

interface BackendStats {
  served: number;
  xfcc: number;
  lastXfcc: string;
}

let backendQueries = 0;
function backendStats(proc: Proc): Promise<BackendStats> {
  const id = ++backendQueries;
  return new Promise((resolve, reject) => {
    const onMsg = (m: { id?: number } & Partial<BackendStats>) => {
      if (m.id !== id) return;
      proc.child.off('message', onMsg);
      resolve({ served: m.served ?? 0, xfcc: m.xfcc ?? 0, lastXfcc: m.lastXfcc ?? '' });
    };
    proc.child.on('message', onMsg);
    proc.child.send({ id }, (err) => {
      if (err) reject(err);
    });
  });
}

async function startBackend(): Promise<{ proc: Proc; port: number }> {
  const proc = forkProc('backend', path.join(__dirname, 'backend.js'));
  const port = await new Promise<number>((resolve, reject) => {
    proc.child.once('message', (m: { port: number }) => resolve(m.port));
    proc.child.once('exit', () => reject(new Error(`backend exited: ${proc.output()}`)));
  });
  return { proc, port };
}

interface Mesh {
  targets: Target[];
  /** what the wire check found, one line each */
  verified: string[];
  caDir: string;
  controlPlane: Proc;
  /** host:port of its ADS/CA listener */
  cpTarget: string;
}

const MESH_SERVICES = { mtls: 'backend', plain: 'backend-plain' } as const;

/** The mesh config: both services routed to themselves; backend-plain plaintext both ways. */
function meshConfig(): string {
  const vs = (host: string) => [
    'apiVersion: networking.istio.io/v1',
    'kind: VirtualService',
    'metadata:',
    `  name: ${host}`,
    '  namespace: default',
    'spec:',
    `  hosts: [${host}]`,
    '  http:',
    '  - route:',
    '    - destination:',
    `        host: ${host}`,
  ];
  return [
    // backend: no PeerAuthentication (STRICT) and no DestinationRule (ISTIO_MUTUAL), the default
    ...vs(MESH_SERVICES.mtls),
    '---',
    ...vs(MESH_SERVICES.plain),
    '---',
    // backend-plain: its server sidecar also takes plaintext, and clients send plaintext to it
    'apiVersion: security.istio.io/v1',
    'kind: PeerAuthentication',
    'metadata:',
    `  name: ${MESH_SERVICES.plain}`,
    '  namespace: default',
    'spec:',
    '  selector:',
    '    matchLabels:',
    `      app: ${MESH_SERVICES.plain}`,
    '  mtls:',
    '    mode: PERMISSIVE',
    '---',
    'apiVersion: networking.istio.io/v1',
    'kind: DestinationRule',
    'metadata:',
    `  name: ${MESH_SERVICES.plain}`,
    '  namespace: default',
    'spec:',
    `  host: ${MESH_SERVICES.plain}`,
    '  trafficPolicy:',
    '    tls:',
    '      mode: DISABLE',
    '',
  ].join('\n');
}

interface Sidecar {
  proc: Proc;
  service: string;
  /** the address it told the control plane */
  address: string;
  outbound: number;
  admin: number;
}

/**
 * One control plane and three sidecars: a client, and a server sidecar for each of
 * backend (mTLS) and backend-plain (h2c), both in front of the same backend process.
 * Before those server sidecars start, a stand-in for each (same service, same labels,
 * same token) advertises a byte-recording relay instead of its own port, so the first
 * bytes the client sidecar sends can be checked; then the stand-ins make way.
 */
async function startTandem(dir: string, backend: Proc, backendPort: number): Promise<Mesh> {
  if (!fs.existsSync(TANDEM)) throw new Error(`${TANDEM} not found: run npm run build first`);
  const meshDir = path.join(dir, 'tandem');
  fs.mkdirSync(meshDir);
  const config = path.join(meshDir, 'mesh.yaml');
  fs.writeFileSync(config, meshConfig());
  const caDir = path.join(meshDir, 'certs');
  const [listen, admin] = [await freePort(), await freePort()];
  const cp = startProc('control-plane', process.execPath, [TANDEM, 'control-plane', '--config', config, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--ca-dir', caDir]);
  await waitFor('control plane /ready', async () => (await httpGet(admin, '/ready')).status === 200).catch((err: Error) => {
    throw new Error(`${err.message}\n${cp.output().slice(-2000)}`);
  });

  // Bootstrap tokens, as `tandem token --namespace default --service-account SVC --service SVC` mints them.
  const rootKey = fs.readFileSync(path.join(caDir, ROOT_KEY), 'utf8');
  const tokenFile = (service: string) => {
    const f = path.join(meshDir, `${service}.token`);
    if (!fs.existsSync(f)) fs.writeFileSync(f, mintToken(rootKey, { namespace: 'default', serviceAccount: service, services: [service], ttlMs: 3600e3 }), { mode: 0o600 });
    return f;
  };

  const sidecar = async (service: string, appPort: number, advertise?: (inbound: number) => Promise<number>): Promise<Sidecar> => {
    const [inbound, outbound, sAdmin] = [await freePort(), await freePort(), await freePort()];
    const advertised = advertise ? await advertise(inbound) : inbound;
    const proc = startProc(`sidecar ${service}`, process.execPath, [
      TANDEM, 'sidecar',
      '--service', service,
      '--labels', `app=${service}`,
      '--app', `127.0.0.1:${appPort}`,
      '--inbound', `127.0.0.1:${inbound}`,
      ...(advertise ? ['--advertise', `127.0.0.1:${advertised}`] : []),
      '--outbound', `127.0.0.1:${outbound}`,
      '--admin', `127.0.0.1:${sAdmin}`,
      '--control-plane', `127.0.0.1:${listen}`,
      '--root-cert', path.join(caDir, ROOT_CERT),
      '--token', tokenFile(service),
      '--access-log', 'off',
    ]);
    await waitFor(`sidecar ${service} /ready`, async () => (await httpGet(sAdmin, '/ready')).status === 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${proc.output().slice(-2000)}`);
    });
    return { proc, service, address: `127.0.0.1:${advertised}`, outbound, admin: sAdmin };
  };

  const through = async (client: Sidecar, host: string, what: string) => {
    let last = '';
    await waitFor(`a 200 through ${what}`, async () => {
      const r = await httpGet(client.outbound, '/', host);
      last = `${r.status} ${r.body.slice(0, 200)}`;
      return r.status === 200;
    }).catch((err: Error) => {
      throw new Error(`${err.message} (last: ${last})`);
    });
  };

  // 1. The wire check, with stand-in server sidecars behind relays.
  const relays: Relay[] = [];
  const viaRelay = async (inbound: number) => {
    const r = await startRelay(inbound);
    relays.push(r);
    return r.port;
  };
  const [probeMtls, probePlain] = await Promise.all([sidecar(MESH_SERVICES.mtls, backendPort, viaRelay), sidecar(MESH_SERVICES.plain, backendPort, viaRelay)]);
  // The client's own application is never called in this benchmark; any port will do.
  const client = await sidecar('client', await freePort());
  const verified: string[] = [];
  const clientId = spiffeUri({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'client' });
  for (const [svc, relay, want] of [[MESH_SERVICES.mtls, relays[0], 'tls'], [MESH_SERVICES.plain, relays[1], 'h2c']] as const) {
    await through(client, svc, `client sidecar -> relay -> ${svc} sidecar -> backend`);
    const before = await backendStats(backend);
    const n = 5;
    for (let i = 0; i < n; i++) {
      const r = await httpGet(client.outbound, '/', svc);
      if (r.status !== 200) throw new Error(`wire check: ${svc}: ${r.status} ${r.body.slice(0, 200)}`);
    }
    const after = await backendStats(backend);
    const kinds = relay.firstBytes.map(classify);
    const xfcc = after.xfcc - before.xfcc;
    const hex = relay.firstBytes[0]?.subarray(0, 6).toString('hex').replace(/(..)/g, '$1 ').trim() ?? '';
    if (kinds.length === 0 || kinds.some((k) => k !== want)) {
      throw new Error(`wire check: ${svc}: expected ${want}, the client sidecar opened ${kinds.length} connection(s): ${kinds.join(', ') || 'none'} (first bytes ${hex})`);
    }
    if (want === 'tls' && (xfcc !== n || !after.lastXfcc.includes(`URI=${clientId}`))) {
      throw new Error(`wire check: ${svc}: ${xfcc}/${n} requests reached the backend with an XFCC naming ${clientId} (last: ${after.lastXfcc})`);
    }
    if (want === 'h2c' && xfcc !== 0) throw new Error(`wire check: ${svc}: ${xfcc}/${n} plaintext requests reached the backend with a SPIFFE XFCC`);
    verified.push(
      want === 'tls'
        ? `${svc}: TLS on the wire (${kinds.length} connection(s), first bytes ${hex}: a TLS handshake record, ClientHello), and ${xfcc}/${n} requests reached the backend with XFCC URI=${clientId}`
        : `${svc}: plaintext on the wire (${kinds.length} connection(s), first bytes "PRI * HTTP/2.0": the h2c preface), and ${n - xfcc}/${n} requests reached the backend without XFCC`,
    );
  }

  // 2. The measured server sidecars (no relay), then the stand-ins leave.
  const [server, serverPlain] = await Promise.all([sidecar(MESH_SERVICES.mtls, backendPort), sidecar(MESH_SERVICES.plain, backendPort)]);
  await Promise.all([probeMtls.proc.stop(), probePlain.proc.stop()]);
  await Promise.all(relays.map((r) => r.close()));
  const relayAddrs = new Set([probeMtls.address, probePlain.address]);
  let seen = '';
  await waitFor('the client sidecar to drop the stand-ins and see only the measured server sidecars', async () => {
    const r = await httpGet(client.admin, '/clusters');
    const addrs = new Set((JSON.parse(r.body) as { endpoints: { address: string }[] }[]).flatMap((c) => c.endpoints.map((e) => e.address)));
    seen = [...addrs].join(', ');
    return addrs.has(server.address) && addrs.has(serverPlain.address) && ![...relayAddrs].some((a) => addrs.has(a));
  }).catch((err: Error) => {
    throw new Error(`${err.message} (endpoints: ${seen})`);
  });
  await through(client, MESH_SERVICES.mtls, `client sidecar -> ${MESH_SERVICES.mtls} sidecar -> backend`);
  await through(client, MESH_SERVICES.plain, `client sidecar -> ${MESH_SERVICES.plain} sidecar -> backend`);

  const target = (name: string, host: string, s: Sidecar, xfcc: 'all' | 'none', pair: string): Target => ({
    name,
    pair,
    url: `http://127.0.0.1:${client.outbound}/`,
    host,
    xfcc,
    proxies: [
      { label: 'client sidecar', pid: client.proc.pid },
      { label: `${s.service} sidecar`, pid: s.proc.pid },
    ],
  });
  return {
    targets: [
      target('tandem plaintext', MESH_SERVICES.plain, serverPlain, 'none', 'tandem mTLS'),
      target('tandem mTLS', MESH_SERVICES.mtls, server, 'all', 'tandem plaintext'),
    ],
    verified,
    caDir,
    controlPlane: cp,
    cpTarget: `127.0.0.1:${listen}`,
  };
}

function nginxVersion(bin: string): string {
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().replace(/^nginx version:\s*/, '');
}

async function startNginx(bin: string, dir: string, backendPort: number): Promise<Target> {
  const prefix = path.join(dir, 'nginx');
  fs.mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  // Running as root, nginx's worker drops to `nobody`; let it traverse the temp dir.
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(prefix, 0o755);
  fs.chmodSync(path.join(prefix, 'tmp'), 0o777);
  const port = await freePort();
  const conf = path.join(prefix, 'nginx.conf');
  const t = (n: string) => path.join(prefix, 'tmp', n);
  fs.writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${path.join(prefix, 'nginx.pid')};
error_log ${path.join(prefix, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`,
  );
  // -e (early error log) exists since 1.19.5; older builds would try /var/log/nginx first.
  const [maj, min, pat] = nginxVersion(bin).replace(/^nginx\//, '').split('.').map(Number);
  const modern = maj > 1 || (maj === 1 && (min > 19 || (min === 19 && pat >= 5)));
  const args = ['-p', prefix, '-c', conf, ...(modern ? ['-e', path.join(prefix, 'error.log')] : [])];
  const proc = startProc('nginx', bin, args);
  await waitFor('nginx to proxy a 200', async () => (await httpGet(port, '/')).status === 200, 10_000).catch((err: Error) => {
    let log = '';
    try {
      log = fs.readFileSync(path.join(prefix, 'error.log'), 'utf8');
    } catch {
      /* none */
    }
    throw new Error(`${err.message}\n${proc.output()}${log}`.slice(-2000));
  });
  return { name: 'nginx', url: `http://127.0.0.1:${port}/`, proxies: [{ label: 'nginx (master+worker)', pid: proc.pid }] };
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
}

const newAcc = (t: Target): Acc => ({ slices: [], proxyCpu: t.proxies.map(() => 0), backendCpu: 0, loadCpu: 0, served: 0, xfcc: 0 });

/** One measured run of `sec` seconds against `t`, added to `acc`. */
async function slice(t: Target, backend: Proc, sec: number, acc: Acc, raw: boolean): Promise<void> {
  const trees = t.proxies.map((p) => processTree(p.pid));
  const backendTree = processTree(backend.pid);
  const loadTree = processTree(loadProc!.pid);
  const statsBefore = await backendStats(backend);
  const before = { proxies: trees.map(cpuSeconds), backend: cpuSeconds(backendTree), load: cpuSeconds(loadTree) };
  const r = await load(t.url, t.host, sec, raw);
  // Re-read the trees: a proxy may have started a worker meanwhile (CPU of one that
  // exited is lost, which is fine for the proxies measured here).
  const after = { proxies: t.proxies.map((p) => cpuSeconds(processTree(p.pid))), backend: cpuSeconds(backendTree), load: cpuSeconds(loadTree) };
  const statsAfter = await backendStats(backend);
  acc.slices.push(r);
  after.proxies.forEach((v, i) => (acc.proxyCpu[i] += v - before.proxies[i]));
  acc.backendCpu += after.backend - before.backend;
  acc.loadCpu += after.load - before.load;
  acc.served += statsAfter.served - statsBefore.served;
  acc.xfcc += statsAfter.xfcc - statsBefore.xfcc;
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
  };
}

async function measure(t: Target, backend: Proc): Promise<Row> {
  if (WARMUP > 0) await load(t.url, t.host, WARMUP);
  const acc = newAcc(t);
  await slice(t, backend, DURATION, acc, false);
  return row(t, acc);
}

/**
 * Two targets compared with each other (the tandem hops): each warmed up, then measured
 * in alternating halves, A B B A, so that a neighbour's burst of CPU or a slow drift on a
 * shared machine falls on both alike. Each still gets DURATION seconds in all.
 */
async function measurePair(a: Target, b: Target, backend: Proc): Promise<[Row, Row]> {
  if (WARMUP > 0) {
    await load(a.url, a.host, WARMUP);
    await load(b.url, b.host, WARMUP);
  }
  const [accA, accB] = [newAcc(a), newAcc(b)];
  const half = DURATION / 2;
  for (const [t, acc] of [[a, accA], [b, accB], [b, accB], [a, accA]] as const) {
    if (interrupted) throw new Error('interrupted');
    await slice(t, backend, half, acc, true);
  }
  return [row(a, accA), row(b, accB)];
}

// ---------------------------------------------------------------------------------------------
// Reporting.

const fmt = {
  rps: (v: number) => Math.round(v).toLocaleString('en-US'),
  ms: (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—'),
  us: (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(1) : '—'),
  ratio: (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '—'),
};

function table(rows: Row[]): { header: string[]; cells: string[][] } {
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
function mtlsVsPlaintext(rows: Row[]): { header: string[]; cells: string[][] } | undefined {
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

function caTable(rpc: CaRpcResult[]): { header: string[]; cells: string[][] } {
  const header = ['CA over gRPC, credential', 'certs/s', 'p50 ms', 'p99 ms', 'control plane CPU µs/cert', 'certs per control-plane CPU-s', 'client CPU µs/cert', 'ok'];
  const what = { token: 'bootstrap token (first cert)', certificate: 'current certificate (renewal)' };
  const cells = rpc.map((r) => [what[r.credential], fmt.rps(r.certsPerSec), fmt.ms(r.p50), fmt.ms(r.p99), fmt.us(r.cpUsPerCert), r.cpUsPerCert > 0 ? fmt.rps(1e6 / r.cpUsPerCert) : '—', fmt.us(r.clientUsPerCert), `${r.ok}/${r.requests}`]);
  return { header, cells };
}

function caLocalLine(l: CaLocalResult): string {
  return `CertificateAuthority.signWorkload, ${l.rootKey} root: ${fmt.rps(l.perSec)} signatures/s (${fmt.us(l.usEach)} µs each, ${l.signatures.toLocaleString('en-US')} in ${l.elapsedSec.toFixed(1)} s, one thread)`;
}

function printText(header: string[], cells: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

function printMarkdown(header: string[], cells: string[][]): void {
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map((_, i) => (i === 0 ? ':---' : '---:')).join('|')}|`);
  for (const c of cells) console.log(`| ${c.join(' | ')} |`);
}

// ---------------------------------------------------------------------------------------------
// Main, with cleanup on every way out.

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= stopAll().finally(removeTmpDirs);
  return cleaning;
}

function interrupt(signal: string, code: number): void {
  if (interrupted) return;
  interrupted = true;
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
  loadProc = forkProc('load generator', path.join(__dirname, 'load.js'));

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

  if (interrupted) return 130;
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
    if (interrupted) return 130;
    const t = targets[i];
    const pair = t.pair ? targets.find((x) => x.name === t.pair) : undefined;
    if (pair && rows.some((r) => r.target === pair.name)) continue;
    process.stdout.write(`measuring ${pair ? `${t.name} and ${pair.name}, alternating (A B B A, ${DURATION / 2}s each)` : t.name} ... ${pair ? '\n  ' : ''}`);
    try {
      if (pair) {
        const [ra, rb] = await measurePair(t, pair, backend.proc);
        report(t, ra, true);
        process.stdout.write('  ');
        report(pair, rb, true);
      } else {
        report(t, await measure(t, backend.proc));
      }
    } catch (err) {
      console.log('failed');
      failures.push(`${t.name}${pair ? ` / ${pair.name}` : ''}: ${(err as Error).message}`);
    }
  }

  // The CA, once the HTTP measurements are done (the sidecars are idle by then).
  let ca: { rpc: CaRpcResult[]; local?: CaLocalResult } | undefined;
  if (CA_OFF) {
    console.log('\nCA: skipped (BENCH_CA=off)');
  } else if (mesh && !interrupted) {
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
    if (!interrupted) {
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
  if (mesh) {
    console.log('');
    console.log('verified: plaintext hop = h2c (PeerAuthentication PERMISSIVE + DestinationRule tls DISABLE), mTLS hop = TLS 1.3 h2 with client certificates (the default)');
    for (const v of mesh.verified) console.log(`  ${v}`);
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
    `_${CONNECTIONS} connections, ${DURATION}s per target after ${WARMUP}s warm-up (the two tandem hops in alternating halves, A B B A), autocannon in its own process, ${os.cpus().length} x ${cpuModel}, Node ${process.version}. ` +
      'tandem = client → client sidecar (outbound) → h2 → server sidecar (inbound) → backend; mTLS: TLS 1.3 with client certificates (the default), plaintext: h2c (PeerAuthentication PERMISSIVE + DestinationRule tls DISABLE); ' +
      'its proxy CPU is both sidecars together. ' +
      (rows.some((r) => r.target === 'nginx') ? 'nginx = one plaintext HTTP/1.1 proxy (1 worker) with upstream keepalive. ' : '') +
      'CPU is utime+stime from /proc per completed request.' +
      (caTables ? ` CA: ${CA_REQUESTS} CSRs per credential over gRPC from ${CA_WORKLOADS} workloads, ${CA_CONCURRENCY} in flight; CPU per certificate issued.` : '') +
      '_',
  );

  for (const f of failures) console.error(`bench: ${f}`);
  console.log(`\ndone in ${((Date.now() - started) / 1000).toFixed(1)}s (stopping processes...)`);
  return failures.length ? 1 : 0;
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
