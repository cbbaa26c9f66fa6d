// `make bench`: requests/s, latency and proxy CPU per request, in one run, for
//   direct  - load straight to a tiny backend HTTP server;
//   tandem  - client -> client sidecar outbound -> (h2 to the peer sidecar; plaintext h2c until mTLS lands) -> server sidecar inbound -> backend;
//   nginx   - a reverse proxy with upstream keepalive in front of the same backend (if installed).
// The load generator (autocannon), the backend, and every proxy run in separate processes;
// proxy CPU is utime+stime from /proc/<pid>/stat, before/after each measured run, divided by
// the requests completed. Env: BENCH_DURATION (s, default 8), BENCH_WARMUP (s, default 2),
// BENCH_CONNECTIONS (default 32), BENCH_NGINX (`off`, or the nginx binary to use).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { LoadRequest, LoadResult } from './load';
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

// ---------------------------------------------------------------------------------------------
// The load generator child.

let loadProc: Proc | undefined;
let interrupted = false;
let nextId = 1;

function load(url: string, host: string | undefined, durationSec: number): Promise<LoadResult> {
  const child = loadProc!.child;
  const req: LoadRequest = { id: nextId++, url, host, connections: CONNECTIONS, durationSec };
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
}

let backendQueries = 0;
function backendServed(proc: Proc): Promise<number> {
  const id = ++backendQueries;
  return new Promise((resolve, reject) => {
    const onMsg = (m: { id?: number; served?: number }) => {
      if (m.id !== id) return;
      proc.child.off('message', onMsg);
      resolve(m.served ?? 0);
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

async function startTandem(dir: string, backendPort: number): Promise<Target> {
  if (!fs.existsSync(TANDEM)) throw new Error(`${TANDEM} not found: run npm run build first`);
  const meshDir = path.join(dir, 'tandem');
  fs.mkdirSync(meshDir);
  const config = path.join(meshDir, 'mesh.yaml');
  // A trivial VirtualService: all of backend's traffic to backend.
  fs.writeFileSync(
    config,
    [
      'apiVersion: networking.istio.io/v1',
      'kind: VirtualService',
      'metadata:',
      '  name: backend',
      '  namespace: default',
      'spec:',
      '  hosts: [backend]',
      '  http:',
      '  - route:',
      '    - destination:',
      '        host: backend',
      '',
    ].join('\n'),
  );
  const caDir = path.join(meshDir, 'certs');
  const [listen, admin] = [await freePort(), await freePort()];
  const cp = startProc('control-plane', process.execPath, [TANDEM, 'control-plane', '--config', config, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--ca-dir', caDir]);
  await waitFor('control plane /ready', async () => (await httpGet(admin, '/ready')).status === 200).catch((err: Error) => {
    throw new Error(`${err.message}\n${cp.output().slice(-2000)}`);
  });

  const sidecar = async (service: string, appPort: number) => {
    const [inbound, outbound, sAdmin] = [await freePort(), await freePort(), await freePort()];
    const proc = startProc(`sidecar ${service}`, process.execPath, [
      TANDEM, 'sidecar',
      '--service', service,
      '--app', `127.0.0.1:${appPort}`,
      '--inbound', `127.0.0.1:${inbound}`,
      '--outbound', `127.0.0.1:${outbound}`,
      '--admin', `127.0.0.1:${sAdmin}`,
      '--control-plane', `127.0.0.1:${listen}`,
      '--root-cert', path.join(caDir, 'root-cert.pem'),
      '--access-log', 'off',
    ]);
    await waitFor(`sidecar ${service} /ready`, async () => (await httpGet(sAdmin, '/ready')).status === 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${proc.output().slice(-2000)}`);
    });
    return { proc, outbound };
  };
  const server = await sidecar('backend', backendPort);
  // The client's own application is never called in this benchmark; any port will do.
  const client = await sidecar('client', await freePort());

  // The first request through: the client sidecar has backend's endpoint (EDS) in place.
  let last = '';
  await waitFor('a 200 through client sidecar -> backend sidecar -> backend', async () => {
    const r = await httpGet(client.outbound, '/', 'backend');
    last = `${r.status} ${r.body.slice(0, 200)}`;
    return r.status === 200;
  }).catch((err: Error) => {
    throw new Error(`${err.message} (last: ${last})`);
  });

  return {
    name: 'tandem',
    url: `http://127.0.0.1:${client.outbound}/`,
    host: 'backend',
    proxies: [
      { label: 'client sidecar', pid: client.proc.pid },
      { label: 'server sidecar', pid: server.proc.pid },
    ],
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

async function measure(t: Target, backend: Proc): Promise<Row> {
  const backendPid = backend.pid;
  if (WARMUP > 0) await load(t.url, t.host, WARMUP);
  const trees = t.proxies.map((p) => processTree(p.pid));
  const backendTree = processTree(backendPid);
  const loadTree = processTree(loadProc!.pid);
  const servedBefore = await backendServed(backend);
  const before = { proxies: trees.map(cpuSeconds), backend: cpuSeconds(backendTree), load: cpuSeconds(loadTree) };
  const r = await load(t.url, t.host, DURATION);
  // Re-read the trees: a proxy may have started a worker meanwhile (CPU of one that
  // exited is lost, which is fine for the proxies measured here).
  const after = { proxies: t.proxies.map((p) => cpuSeconds(processTree(p.pid))), backend: cpuSeconds(backendTree), load: cpuSeconds(loadTree) };
  const served = (await backendServed(backend)) - servedBefore;
  const done = r.ok + r.non2xx;
  // Requests in flight at the start and end can differ by up to a connection's worth each.
  if (Math.abs(served - done) > 2 * CONNECTIONS + done * 0.001) {
    console.warn(`\nbench: ${t.name}: the backend served ${served} requests but the load generator counted ${done}`);
  }
  const perReq = (sec: number) => (done > 0 ? (sec * 1e6) / done : NaN);
  const breakdown = t.proxies.map((p, i) => ({ label: p.label, usPerReq: perReq(after.proxies[i] - before.proxies[i]) }));
  return {
    target: t.name,
    rps: r.rps,
    p50: r.p50,
    p99: r.p99,
    proxyUsPerReq: t.proxies.length ? breakdown.reduce((a, b) => a + b.usPerReq, 0) : undefined,
    breakdown,
    backendUsPerReq: perReq(after.backend - before.backend),
    loadgenUsPerReq: perReq(after.load - before.load),
    ok: r.ok,
    served,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
  };
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

  try {
    targets.push(await startTandem(dir, backend.port));
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

  if (interrupted) return 130;
  const rows: Row[] = [];
  for (const t of targets) {
    if (interrupted) return 130;
    process.stdout.write(`measuring ${t.name} ... `);
    try {
      const r = await measure(t, backend.proc);
      rows.push(r);
      console.log(`${fmt.rps(r.rps)} req/s, p99 ${fmt.ms(r.p99)} ms, ${r.ok} ok (backend served ${r.served})${r.non2xx || r.errors || r.timeouts ? ` (non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts})` : ''}`);
      if (r.ok === 0) failures.push(`${t.name}: no successful responses`);
    } catch (err) {
      console.log('failed');
      failures.push(`${t.name}: ${(err as Error).message}`);
    }
  }

  console.log('');
  const { header, cells } = table(rows);
  printText(header, cells);
  console.log('');
  const tandem = rows.find((r) => r.target === 'tandem');
  if (tandem) console.log(`tandem proxy CPU = ${tandem.breakdown.map((b) => `${b.label} ${fmt.us(b.usPerReq)}`).join(' + ')} µs/req (two proxies, one multiplexed h2 connection between them; h2c until mTLS lands)`);
  console.log(nginxNote);
  console.log(`load generator CPU: ${rows.map((r) => `${r.target} ${fmt.us(r.loadgenUsPerReq)}`).join(', ')} µs/req (not counted as proxy CPU)`);
  console.log('');
  console.log('Markdown:');
  console.log('');
  printMarkdown(header, cells);
  console.log('');
  console.log(
    `_${CONNECTIONS} connections, ${DURATION}s per target after ${WARMUP}s warm-up, autocannon in its own process, ${os.cpus().length} x ${cpuModel}, Node ${process.version}. ` +
      'tandem = client → client sidecar (outbound) → h2 (h2c until mTLS lands) → server sidecar (inbound) → backend; its proxy CPU is both sidecars together. ' +
      (rows.some((r) => r.target === 'nginx') ? 'nginx = one plaintext HTTP/1.1 proxy (1 worker) with upstream keepalive. ' : '') +
      'CPU is utime+stime from /proc per completed request._',
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
