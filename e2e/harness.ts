// Real processes on loopback for e2e tests: free ports, the built `tandem` binary,
// readiness polling, and cleanup of everything a test started.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const TANDEM = path.resolve(__dirname, '..', 'dist', 'cli', 'tandem.js');

import { freePort } from '../common/free-port';
import { mintToken } from '../certs/token';

export { freePort };
import { waitFor } from '../common/wait';
export { waitFor };


export interface Proc {
  child: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<Proc>();

export function start(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const child = spawn(process.execPath, [TANDEM, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const p: Proc = {
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 8000);
      const code = await exited;
      clearTimeout(t);
      running.delete(p);
      return code;
    },
  };
  running.add(p);
  return p;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

export function tmpDir(prefix = 'tandem-e2e-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

export function request(port: number, opts: { path?: string; host?: string; method?: string; headers?: Record<string, string>; body?: string; absolute?: boolean } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.host) headers.host = opts.host;
    const path = opts.absolute && opts.host ? `http://${opts.host}${opts.path ?? '/'}` : (opts.path ?? '/');
    const req = http.request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end(opts.body);
  });
}

/** A tiny application: answers every request with its name and what it saw, and counts hits. */
export interface App {
  port: number;
  name: string;
  hits: number;
  last?: http.IncomingHttpHeaders;
  close(): Promise<void>;
}

const apps = new Set<App>();

export async function startApp(name: string, handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<App> {
  const app: App = { port: 0, name, hits: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    app.hits++;
    app.last = req.headers;
    if (handler) return handler(req, res);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ app: name, host: req.headers.host, path: req.url, method: req.method, headers: req.headers }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  app.port = (server.address() as net.AddressInfo).port;
  app.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
      apps.delete(app);
    });
  apps.add(app);
  return app;
}

export async function closeApps(): Promise<void> {
  await Promise.all([...apps].map((a) => a.close()));
}

/**
 * Polls the admin /ready of a process just started, until it is ready and `ours` confirms
 * the admin port is really that process's: a port from freePort can be taken by another
 * process before ours binds it, and a /ready answered there must not count. A failure says
 * how the process stood and what it printed.
 */
async function waitReady(what: string, p: Proc, admin: number, ours: () => Promise<boolean>): Promise<void> {
  let last = 'no answer';
  try {
    await waitFor(what, async () => {
      const { exitCode, signalCode } = p.child;
      if (exitCode !== null || signalCode !== null) throw new Error(`process exited (${exitCode ?? signalCode})`);
      const r = await request(admin, { path: '/ready' });
      last = `${r.status} ${r.body.trim()}`;
      return r.status === 200 && (await ours());
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}; last /ready: ${last}; output:\n${p.output().slice(-3000)}`);
  }
}

/** Starts a process on freshly picked ports; when one was taken meanwhile (EADDRINUSE), again on others. */
async function startOnFreePorts<T>(pick: () => Promise<T>, launch: (ports: T) => Promise<{ proc: Proc }>, retry = true): Promise<{ ports: T; proc: Proc }> {
  for (let attempt = 1; ; attempt++) {
    const ports = await pick();
    try {
      const { proc } = await launch(ports);
      return { ports, proc };
    } catch (err) {
      if (!retry || attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
    }
  }
}

export interface ControlPlane {
  proc: Proc;
  listen: number;
  admin: number;
  xdsPlaintext: number;
  caDir: string;
  configPath: string;
}

export async function startControlPlane(
  dir: string,
  configPath: string,
  ports?: Partial<Pick<ControlPlane, 'listen' | 'admin' | 'xdsPlaintext'>>,
  /** more flags, e.g. --service-grace */
  args: string[] = [],
): Promise<ControlPlane> {
  const caDir = path.join(dir, 'certs');
  const { ports: p, proc } = await startOnFreePorts(
    async () => ({
      listen: ports?.listen ?? (await freePort()),
      admin: ports?.admin ?? (await freePort()),
      xdsPlaintext: ports?.xdsPlaintext ?? (await freePort()),
    }),
    async ({ listen, admin, xdsPlaintext }) => {
      const proc = start([
        'control-plane',
        '--config', configPath,
        '--listen', `127.0.0.1:${listen}`,
        '--admin', `127.0.0.1:${admin}`,
        '--xds-plaintext', `127.0.0.1:${xdsPlaintext}`,
        '--ca-dir', caDir,
        ...args,
      ]);
      // ours: a control plane reading this config (an absent file loads as no files)
      const ours = async () => {
        const files = (await json<{ files?: string[] }>(admin, '/debug/config')).files ?? [];
        return files.length === 0 || files.some((f) => f.startsWith(configPath));
      };
      await waitReady('control plane ready', proc, admin, ours).catch(async (err) => {
        await proc.stop('SIGKILL');
        throw err;
      });
      return { proc };
    },
    !ports,
  );
  return { proc, ...p, caDir, configPath };
}

export interface Sidecar {
  proc: Proc;
  service: string;
  inbound: number;
  outbound: number;
  admin: number;
}

export interface SidecarOptions {
  namespace?: string;
  serviceAccount?: string;
  /** a token file to use instead of one minted for this service (a path, or the token) */
  token?: string;
  /** more flags, e.g. --concurrency */
  args?: string[];
  accessLog?: string;
  /** more environment, e.g. OTEL_* */
  env?: NodeJS.ProcessEnv;
}

/** A bootstrap token for a workload, minted with the control plane's root key, written to a file. */
export function mintTokenFile(cp: ControlPlane, o: { namespace?: string; serviceAccount: string; services?: string[]; ttlMs?: number }): string {
  const keyPem = fs.readFileSync(path.join(cp.caDir, 'root-key.pem'), 'utf8');
  const token = mintToken(keyPem, { namespace: o.namespace ?? 'default', serviceAccount: o.serviceAccount, services: o.services, ttlMs: o.ttlMs ?? 3600e3 });
  const file = path.join(cp.caDir, `token-${o.namespace ?? 'default'}-${o.serviceAccount}-${(o.services ?? []).join('+')}-${++tokens}.jwt`);
  fs.writeFileSync(file, token, { mode: 0o600 });
  return file;
}
let tokens = 0;

export async function startSidecar(cp: ControlPlane, service: string, appPort: number, labels: Record<string, string> = {}, o: SidecarOptions = {}): Promise<Sidecar> {
  const namespace = o.namespace ?? 'default';
  const serviceAccount = o.serviceAccount ?? service;
  const token = o.token ?? mintTokenFile(cp, { namespace, serviceAccount, services: [service] });
  const { ports, proc } = await startOnFreePorts(
    async () => ({ inbound: await freePort(), outbound: await freePort(), admin: await freePort() }),
    async ({ inbound, outbound, admin }) => {
      const args = [
        'sidecar',
        '--service', service,
        '--app', `127.0.0.1:${appPort}`,
        '--inbound', `127.0.0.1:${inbound}`,
        '--outbound', `127.0.0.1:${outbound}`,
        '--admin', `127.0.0.1:${admin}`,
        '--control-plane', `127.0.0.1:${cp.listen}`,
        '--root-cert', path.join(cp.caDir, 'root-cert.pem'),
        '--access-log', o.accessLog ?? 'off',
        '--namespace', namespace,
        '--service-account', serviceAccount,
        '--token', token,
        ...(o.args ?? []),
      ];
      if (Object.keys(labels).length) args.push('--labels', Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','));
      const proc = start(args, { env: o.env });
      // ours: the sidecar whose inbound address is the one given here
      const ours = async () => (await json<{ node?: { inbound?: string } }>(admin, '/config_dump')).node?.inbound === `127.0.0.1:${inbound}`;
      await waitReady(`sidecar ${service} ready`, proc, admin, ours).catch(async (err) => {
        await proc.stop('SIGKILL');
        throw err;
      });
      return { proc };
    },
  );
  return { proc, service, ...ports };
}

export async function json<T = unknown>(port: number, p: string): Promise<T> {
  const r = await request(port, { path: p });
  if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

/** Runs the built `tandem` CLI to completion (for one-shot commands such as `status`). */
export function runTandem(args: string[], opts: { timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TANDEM, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    child.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The value of an unlabelled (or first matching) sample in Prometheus text, or undefined. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

/** Runs `n` calls of `fn` with at most `concurrency` in flight; results in call order. */
export async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, concurrency) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/** A DestinationRule defining reviews' subsets v1 and v2 by their version label, for suites that route between them. */
export const REVIEWS_SUBSETS = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`;
