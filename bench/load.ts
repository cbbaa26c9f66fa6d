// The load generator, in its own process so its CPU never counts against a proxy.
// The parent sends {id, url, host?, connections, durationSec}; this runs autocannon
// (programmatic API) and answers with counts and latency percentiles (and, with raw set,
// every latency, so the parent can merge several runs of one target). Latencies are
// collected from every 2xx response with sub-millisecond precision (autocannon's own
// histogram is in whole milliseconds, too coarse on loopback).
// A request with `rate` set is an open-loop run at that fixed rate instead (open-loop.ts),
// answered with every latency.
import { runAtRate, type RateResult } from './open-loop';

// autocannon ships no types; the slice of its API used here.
interface Tracker {
  on(ev: 'response', fn: (client: unknown, statusCode: number, resBytes: number, responseTime: number) => void): void;
}
interface AcResult {
  requests: { total: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
}
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, res: AcResult) => void) => Tracker;
const autocannon = require('autocannon') as Autocannon;

export interface LoadRequest {
  id: number;
  url: string;
  host?: string;
  connections: number;
  durationSec: number;
  /** also send back every 2xx latency (ms) */
  raw?: boolean;
  /** an open-loop run at this many requests/s (open-loop.ts) instead of autocannon's closed loop */
  rate?: number;
}

export type RateReply = { id: number; error?: string } & RateResult;

export interface LoadResult {
  id: number;
  error?: string;
  elapsedSec: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  latencies?: number[];
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

function run(req: LoadRequest): Promise<LoadResult> {
  return new Promise((resolve) => {
    let lat = new Float64Array(1 << 16);
    let n = 0;
    const started = process.hrtime.bigint();
    const tracker = autocannon(
      {
        url: req.url,
        connections: req.connections,
        pipelining: 1,
        duration: req.durationSec,
        timeout: 10,
        headers: req.host ? { host: req.host } : {},
      },
      (err, res) => {
        const elapsedSec = Number(process.hrtime.bigint() - started) / 1e9;
        const sorted = lat.subarray(0, n).sort();
        const base = { id: req.id, elapsedSec, p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: n ? sorted[n - 1] : NaN };
        if (err) {
          resolve({ ...base, error: err.message, ok: 0, non2xx: 0, errors: 0, timeouts: 0, rps: 0 });
          return;
        }
        const ok = res['2xx'];
        const latencies = req.raw ? Array.from(sorted, (v) => Math.round(v * 1000) / 1000) : undefined;
        resolve({ ...base, ok, non2xx: res.non2xx, errors: res.errors, timeouts: res.timeouts, rps: ok / elapsedSec, latencies });
      },
    );
    tracker.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode < 200 || statusCode >= 300) return;
      if (n === lat.length) {
        const bigger = new Float64Array(lat.length * 2);
        bigger.set(lat);
        lat = bigger;
      }
      lat[n++] = responseTime;
    });
  });
}

process.on('message', (msg: LoadRequest) => {
  if (msg.rate) {
    const u = new URL(msg.url);
    runAtRate({ port: Number(u.port), host: u.hostname, hostHeader: msg.host, rate: msg.rate, connections: msg.connections, durationSec: msg.durationSec }).then(
      (r) => process.send!({ id: msg.id, ...r }),
      (err: Error) => process.send!({ id: msg.id, error: err.message }),
    );
    return;
  }
  run(msg).then(
    (r) => process.send!(r),
    (err: Error) => process.send!({ id: msg.id, error: err.message }),
  );
});
process.on('disconnect', () => process.exit(0));
