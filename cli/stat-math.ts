// What `tandem stat` computes from two scrapes of each sidecar: counter increases over the
// interval, and latency quantiles from the increase of each histogram bucket, interpolated
// as Prometheus' histogram_quantile does. Pure functions; the scrapes carry their time.
import type { Sample } from './prom-text';

export interface Scrape {
  /** when it was taken, ms */
  at: number;
  samples: Sample[];
}

export interface Bucket {
  /** upper bound (`le`) */
  le: number;
  /** cumulative count */
  count: number;
}

/**
 * Prometheus' histogram_quantile (promql/quantile.go bucketQuantile): the bucket the rank
 * falls in, linear interpolation inside it, the first bucket starting at 0, a rank in the
 * +Inf bucket answered with the highest finite bound. NaN without observations.
 */
export function histogramQuantile(q: number, input: Bucket[]): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = [...input].sort((a, b) => a.le - b.le);
  // the same bound seen twice (several series summed): one bucket
  const buckets: Bucket[] = [];
  for (const b of sorted) {
    const last = buckets[buckets.length - 1];
    if (last && last.le === b.le) last.count += b.count;
    else buckets.push({ ...b });
  }
  if (buckets.length < 2 || buckets[buckets.length - 1].le !== Infinity) return NaN;
  // counts that went down (a scrape racing an observation) are raised, as Prometheus does
  let max = -Infinity;
  for (const b of buckets) {
    if (b.count < max) b.count = max;
    else max = b.count;
  }
  const observations = buckets[buckets.length - 1].count;
  if (!(observations > 0)) return NaN;
  let rank = q * observations;
  let b = buckets.findIndex((x, i) => i < buckets.length - 1 && x.count >= rank);
  if (b === -1) b = buckets.length - 1;
  if (b === buckets.length - 1) return buckets[buckets.length - 2].le;
  if (b === 0 && buckets[0].le <= 0) return buckets[0].le;
  let start = 0;
  let count = buckets[b].count;
  if (b > 0) {
    start = buckets[b - 1].le;
    count -= buckets[b - 1].count;
    rank -= buckets[b - 1].count;
  }
  return start + (buckets[b].le - start) * (rank / count);
}

/** A counter's increase; one that went down was reset (the sidecar restarted), so it counts from 0. */
export function increase(before: number | undefined, after: number): number {
  if (before === undefined || after < before) return after;
  return after - before;
}

const seriesKey = (s: Sample) => `${s.name}{${Object.entries(s.labels).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;

/** Each series of `after` with its increase since `before` (a series new in `after` counts from 0). */
export function increases(before: Scrape, after: Scrape, keep: (s: Sample) => boolean): Sample[] {
  const prev = new Map<string, number>();
  for (const s of before.samples) if (keep(s)) prev.set(seriesKey(s), s.value);
  return after.samples.filter(keep).map((s) => ({ ...s, value: increase(prev.get(seriesKey(s)), s.value) }));
}

/** One row: a service and version, as its own sidecars saw what came in (reporter="destination"). */
export interface StatRow {
  name: string;
  namespace: string;
  version: string;
  /** requests over the interval */
  requests: number;
  /** non-5xx share; undefined without requests */
  success?: number;
  rps: number;
  p50?: number;
  p95?: number;
  p99?: number;
  /** inbound connections open at the second scrape */
  tcpConnections: number;
  /** share of requests that came over mTLS; undefined without requests */
  mtls?: number;
}

export interface Pair {
  before: Scrape;
  after: Scrape;
}

const REQUESTS = 'istio_requests_total';
const DURATION = 'istio_request_duration_milliseconds_bucket';
const OPENED = 'istio_tcp_connections_opened_total';
const CLOSED = 'istio_tcp_connections_closed_total';

const rowKey = (l: Record<string, string>) =>
  `${l.destination_service_name ?? 'unknown'}\0${l.destination_service_namespace ?? 'unknown'}\0${l.destination_version ?? 'unknown'}`;

interface Acc {
  requests: number;
  ok: number;
  mtls: number;
  rps: number;
  buckets: Map<number, number>;
  tcp: number;
}

/**
 * The rows for a set of sidecars, each scraped twice: per service and version, summed over
 * its sidecars. `known` adds rows (service, namespace, version) that saw nothing yet.
 */
export function statRows(pairs: Pair[], known: { name: string; namespace: string; version: string }[] = []): StatRow[] {
  const acc = new Map<string, Acc>();
  const get = (key: string) => {
    let a = acc.get(key);
    if (!a) acc.set(key, (a = { requests: 0, ok: 0, mtls: 0, rps: 0, buckets: new Map(), tcp: 0 }));
    return a;
  };
  for (const k of known) get(`${k.name}\0${k.namespace}\0${k.version}`);
  const inbound = (s: Sample) => s.labels.reporter === 'destination';
  for (const { before, after } of pairs) {
    const seconds = (after.at - before.at) / 1000;
    for (const s of increases(before, after, (x) => inbound(x) && (x.name === REQUESTS || x.name === DURATION))) {
      const a = get(rowKey(s.labels));
      if (s.name === REQUESTS) {
        a.requests += s.value;
        if (!/^5/.test(s.labels.response_code ?? '')) a.ok += s.value;
        if (s.labels.connection_security_policy === 'mutual_tls') a.mtls += s.value;
        if (seconds > 0) a.rps += s.value / seconds;
      } else {
        const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
        if (!Number.isNaN(le)) a.buckets.set(le, (a.buckets.get(le) ?? 0) + s.value);
      }
    }
    for (const s of after.samples) {
      if (!inbound(s) || (s.name !== OPENED && s.name !== CLOSED)) continue;
      get(rowKey(s.labels)).tcp += s.name === OPENED ? s.value : -s.value;
    }
  }
  const rows: StatRow[] = [];
  for (const [key, a] of acc) {
    const [name, namespace, version] = key.split('\0');
    const buckets = [...a.buckets].map(([le, count]) => ({ le, count }));
    const q = (x: number) => {
      const v = histogramQuantile(x, buckets);
      return Number.isFinite(v) ? v : undefined;
    };
    rows.push({
      name,
      namespace,
      version,
      requests: a.requests,
      rps: a.rps,
      tcpConnections: Math.max(0, a.tcp),
      ...(a.requests > 0 ? { success: a.ok / a.requests, mtls: a.mtls / a.requests, p50: q(0.5), p95: q(0.95), p99: q(0.99) } : {}),
    });
  }
  return rows.sort((x, y) => (x.namespace + '\0' + x.name + '\0' + x.version).localeCompare(y.namespace + '\0' + y.name + '\0' + y.version));
}
