// Small helpers for the benchmark: free ports, readiness polling (common/wait), tracked child
// processes (killed at the end, on error and on SIGINT), temp dirs, and per-process
// CPU time read from /proc/<pid>/stat.
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

export { freePort } from '../common/free-port';
import { waitFor as poll } from '../common/wait';

/** Polls until `fn` says yes; 20 s unless told. */
export const waitFor = (what: string, fn: () => Promise<boolean>, timeoutMs = 20_000, everyMs = 50): Promise<boolean> => poll(what, fn, timeoutMs, everyMs);

/** One GET on a fresh connection; resolves with the status code and body. */
export function httpGet(port: number, p = '/', host?: string, timeoutMs = 2000, more: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...more };
    if (host) headers.host = host;
    const req = http.request({ host: '127.0.0.1', port, path: p, method: 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${p} on :${port}: timeout`)));
    req.once('error', reject);
    req.end();
  });
}

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

const running = new Set<Proc>();

function track(name: string, child: ChildProcess): Proc {
  if (child.pid === undefined) throw new Error(`${name}: failed to start`);
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 1 << 18) out = out.slice(-(1 << 17));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (err) => keep(Buffer.from(`\n[${name}] ${err.message}\n`)));
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once('exit', () => r());
  });
  const p: Proc = {
    name,
    child,
    pid: child.pid,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 6000);
      await exited;
      clearTimeout(t);
      running.delete(p);
    },
  };
  running.add(p);
  return p;
}

/** Spawn an executable with piped output (and more environment), tracked for cleanup. */
export function startProc(name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Proc {
  return track(name, spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env && { ...process.env, ...env } }));
}

/** Fork a Node module with an IPC channel, tracked for cleanup. */
export function forkProc(name: string, modulePath: string, args: string[] = []): Proc {
  return track(name, fork(modulePath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }));
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/** Synchronous last resort (process 'exit'): SIGKILL whatever is still running. */
export function killAllSync(): void {
  for (const p of running) {
    try {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

let interrupted = false;

/** After SIGINT/SIGTERM: a run starts nothing new. */
export function isInterrupted(): boolean {
  return interrupted;
}

let cleaning: Promise<void> | undefined;

/** Stops every process started here and removes the temporary directories, once. */
export function cleanup(): Promise<void> {
  cleaning ??= stopAll().finally(removeTmpDirs);
  return cleaning;
}

/**
 * Cleanup on every way out: SIGINT and SIGTERM mark the run interrupted, stop everything and
 * exit 130 / 143; any exit SIGKILLs what is still running and removes the temporary directories.
 */
export function cleanupOnEveryExit(name: string): void {
  const interrupt = (signal: string, code: number) => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${name}: ${signal}, stopping everything`);
    void cleanup().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => interrupt('interrupted', 130));
  process.on('SIGTERM', () => interrupt('terminated', 143));
  process.on('exit', () => {
    killAllSync();
    removeTmpDirs();
  });
}

const tmpDirs = new Set<string>();

export function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.add(d);
  return d;
}

export function removeTmpDirs(): void {
  for (const d of tmpDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  tmpDirs.clear();
}

let clkTck: number | undefined;

/** Kernel clock ticks per second, the unit of utime/stime in /proc/<pid>/stat. */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** Fields of /proc/<pid>/stat after the `(comm)`, so index 0 is field 3 (state). */
function statFields(pid: number): string[] | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The pid and all its live descendants (scans /proc). */
export function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const f = statFields(Number(e));
    if (f) parent.set(Number(e), Number(f[1]));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

/** CPU seconds (user + system) used so far by the given processes. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const f = statFields(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]); // utime (14), stime (15)
  }
  return ticks / clockTicks();
}

/** The path if it is an executable file. */
export function executable(p: string): string | undefined {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile() ? p : undefined;
  } catch {
    return undefined;
  }
}

/** Like `which`: the first executable `cmd` on PATH, then in the extra directories. */
export function which(cmd: string, extra: string[] = []): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':').filter(Boolean), ...extra]) {
    const p = executable(path.join(dir, cmd));
    if (p) return p;
  }
  return undefined;
}
