// The benchmark's settings, from the environment (see run.ts for the list).

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

export const DURATION = envNumber('BENCH_DURATION', 8, 1);
export const WARMUP = envNumber('BENCH_WARMUP', 2, 0);
export const CONNECTIONS = Math.round(envNumber('BENCH_CONNECTIONS', 32, 1));
export const CA_OFF = process.env.BENCH_CA === 'off';
export const CA_REQUESTS = Math.round(envNumber('BENCH_CA_REQUESTS', 500, 1));
export const CA_CONCURRENCY = Math.round(envNumber('BENCH_CA_CONCURRENCY', 16, 1));
export const CA_WORKLOADS = Math.round(envNumber('BENCH_CA_WORKLOADS', 64, 1));
export const CA_SIGN_SECONDS = envNumber('BENCH_CA_SIGN_SECONDS', 2, 0.1);
/** the observability rows (everything off; spans exported over OTLP): on unless BENCH_OBS=off */
export const OBS = process.env.BENCH_OBS !== 'off';
/** the open-loop latency runs: requests/s, keep-alive connections, seconds per target (0 skips them) */
export const RATE = envNumber('BENCH_RATE', 1000, 1);
export const RATE_CONNECTIONS = Math.round(envNumber('BENCH_RATE_CONNECTIONS', 10, 1));
export const RATE_DURATION = envNumber('BENCH_RATE_DURATION', 20, 0);
/** the --concurrency of the multi-worker sidecar row (compared with the 1-worker row) */
export const WORKERS = Math.round(envNumber('BENCH_WORKERS', 2, 2));
