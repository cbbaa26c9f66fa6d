// The targets measured, the rows measured for them, and the backend process that
// sits behind all of them (started here, and asked for its request counts over IPC).
import * as path from 'node:path';
import { forkProc, type Proc } from './util';

/** The rows' names, in one place: the report picks its ratios by them. */
export const NAMES = {
  direct: 'direct',
  nginx: 'nginx',
  sidecar: '1 sidecar',
  sidecarNoLog: '1 sidecar, access log off',
  sidecarC2: '1 sidecar, --concurrency 2',
  nginxPair: 'nginx pair (mTLS)',
  hop: 'mesh hop (mTLS)',
  hopNoLog: 'mesh hop, access log off',
  hopPlain: 'mesh hop plaintext, access log off',
  hopBare: 'mesh hop, obs off',
  hopSpans: 'mesh hop + spans',
} as const;

export interface Target {
  name: string;
  url: string;
  host?: string;
  /** Processes whose CPU counts as "proxy", grouped for the breakdown. */
  proxies: { label: string; pid: number }[];
  /** tandem: whether every request must reach the backend with a SPIFFE XFCC (mTLS) or none may */
  xfcc?: 'all' | 'none';
  /** nginx pair: every request must reach the backend marked TLSv1.3 with a verified client certificate (by Host) */
  nginxTls?: boolean;
  /** targets of one group are measured alternately with each other (see measureGroup) */
  group?: string;
}

export interface Row {
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
  /** requests that reached the backend through the nginx pair's verified TLS */
  nginxTls: number;
  /** the proxies' resident memory: before any load (set by run.ts), and the peak while measured, MB */
  rssIdleMb?: number;
  rssLoadMb?: number;
  /** per proxy process tree, the same order as breakdown; idleMb once settled (rss.ts settledRss), startedMb at once after start */
  rss: { label: string; idleMb?: number; idleEachMb?: number[]; startedMb?: number; loadMb: number; processes: number }[];
}

/** One open-loop run's row: latency at a fixed rate. */
export interface RateRow {
  target: string;
  rate: number;
  sent: number;
  ok: number;
  errors: number;
  queued: number;
  unanswered: number;
  /** requests the load generator sent more than 5 ms late (it was stalled), and the latest, ms */
  lateSends: number;
  maxLateMs: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  proxyUsPerReq?: number;
  firstError?: string;
}

export interface BackendStats {
  served: number;
  xfcc: number;
  lastXfcc: string;
  /** XFCC-carrying requests by the Host they came with */
  xfccByHost: Record<string, number>;
  tlsByHost: Record<string, number>;
  servedByHost: Record<string, number>;
}

let backendQueries = 0;
export function backendStats(proc: Proc): Promise<BackendStats> {
  const id = ++backendQueries;
  return new Promise((resolve, reject) => {
    const onMsg = (m: { id?: number } & Partial<BackendStats>) => {
      if (m.id !== id) return;
      proc.child.off('message', onMsg);
      resolve({ served: m.served ?? 0, xfcc: m.xfcc ?? 0, lastXfcc: m.lastXfcc ?? '', xfccByHost: m.xfccByHost ?? {}, tlsByHost: m.tlsByHost ?? {}, servedByHost: m.servedByHost ?? {} });
    };
    proc.child.on('message', onMsg);
    proc.child.send({ id }, (err) => {
      if (err) reject(err);
    });
  });
}

export async function startBackend(): Promise<{ proc: Proc; port: number }> {
  const proc = forkProc('backend', path.join(__dirname, 'backend.js'));
  const port = await new Promise<number>((resolve, reject) => {
    proc.child.once('message', (m: { port: number }) => resolve(m.port));
    proc.child.once('exit', () => reject(new Error(`backend exited: ${proc.output()}`)));
  });
  return { proc, port };
}
