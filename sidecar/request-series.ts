// Istio's four request metrics (istio_requests_total, istio_request_duration_milliseconds,
// istio_request_bytes, istio_response_bytes), kept per label set as plain numbers.
// prom-client checks and hashes all 25 labels on every inc and observe: four calls a
// request, about 15 µs, a tenth of a sidecar's whole cost per request on the benchmark.
// Here the observer names the label set with a key it builds anyway, one map lookup finds
// its series, and prom-client reads the figures only when scraped (and, with
// --concurrency, when the workers' figures are summed), through get().
import * as client from 'prom-client';
import { BYTE_BUCKETS, DURATION_BUCKETS_MS, REQUEST_LABELS, type RequestLabels } from './istio-labels';

type Label = (typeof REQUEST_LABELS)[number];

interface Series {
  labels: RequestLabels;
  requests: number;
  duration: Tally;
  requestBytes: Tally;
  responseBytes: Tally;
}

/** One histogram's figures for one label set: a count per bucket (not cumulative), the sum. */
interface Tally {
  buckets: Float64Array;
  sum: number;
  count: number;
}

const tally = (bounds: number[]): Tally => ({ buckets: new Float64Array(bounds.length), sum: 0, count: 0 });

function add(t: Tally, bounds: number[], v: number): void {
  t.sum += v;
  t.count++;
  for (let i = 0; i < bounds.length; i++) {
    if (v <= bounds[i]) {
      t.buckets[i]++;
      return;
    }
  }
}

// prom-client's typings declare a numeric enum; the registry writes the type as this string
const HISTOGRAM = 'histogram' as unknown as client.MetricType;

type Exposed = Awaited<ReturnType<client.Histogram<Label | 'le'>['get']>>;

/** A histogram whose figures are the series' (pick names which), in prom-client's exposition. */
class SeriesHistogram extends client.Histogram<Label | 'le'> {
  constructor(
    private readonly config: { name: string; help: string; buckets: number[]; registers: client.Registry[] },
    private readonly series: Map<string, Series>,
    private readonly pick: (s: Series) => Tally,
    private readonly bounds: number[],
  ) {
    super({ ...config, labelNames: [...REQUEST_LABELS] });
  }

  override async get(): Promise<Exposed> {
    return this.expose();
  }

  /** the registry writes the text exposition from this one when a metric has it (prom-client's own reads its empty series) */
  async getForPromString(): Promise<Exposed> {
    return this.expose();
  }

  private expose(): Exposed {
    const { name, help } = this.config;
    const values: Exposed['values'] = [];
    const bucket = `${name}_bucket`;
    for (const s of this.series.values()) {
      const t = this.pick(s);
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += t.buckets[i];
        // `le` first, as prom-client writes it
        values.push({ labels: { le: this.bounds[i], ...s.labels }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', ...s.labels }, value: t.count, metricName: bucket });
      values.push({ labels: { ...s.labels }, value: t.sum, metricName: `${name}_sum` });
      values.push({ labels: { ...s.labels }, value: t.count, metricName: `${name}_count` });
    }
    return { name, help, type: HISTOGRAM, values, aggregator: 'sum', collect: () => undefined };
  }

  override reset(): void {
    // (prom-client's constructor resets before this.series is set)
    this.series?.clear();
  }

  override observe(): void {
    throw new Error(`${this.config.name} is recorded through RequestSeries.record`);
  }
}

export class RequestSeries {
  private readonly series = new Map<string, Series>();
  private readonly counter: client.Counter<Label>;

  constructor(registers: client.Registry[]) {
    const series = this.series;
    this.counter = new client.Counter({
      name: 'istio_requests_total',
      help: 'requests handled by this proxy',
      labelNames: [...REQUEST_LABELS],
      registers,
      collect() {
        this.reset();
        for (const s of series.values()) this.inc(s.labels, s.requests);
      },
    });
    new SeriesHistogram(
      { name: 'istio_request_duration_milliseconds', help: 'duration of requests, from the first byte received to the response complete', buckets: DURATION_BUCKETS_MS, registers },
      series,
      (s) => s.duration,
      DURATION_BUCKETS_MS,
    );
    new SeriesHistogram({ name: 'istio_request_bytes', help: 'request body sizes', buckets: BYTE_BUCKETS, registers }, series, (s) => s.requestBytes, BYTE_BUCKETS);
    new SeriesHistogram({ name: 'istio_response_bytes', help: 'response body sizes', buckets: BYTE_BUCKETS, registers }, series, (s) => s.responseBytes, BYTE_BUCKETS);
  }

  /**
   * One request over. `key` must name the label set exactly (two label sets never share a
   * key); `labels` is called only the first time a key is seen.
   */
  record(key: string, labels: () => RequestLabels, durationMs: number, requestBytes: number, responseBytes: number): void {
    let s = this.series.get(key);
    if (!s) {
      s = { labels: labels(), requests: 0, duration: tally(DURATION_BUCKETS_MS), requestBytes: tally(BYTE_BUCKETS), responseBytes: tally(BYTE_BUCKETS) };
      this.series.set(key, s);
    }
    s.requests++;
    add(s.duration, DURATION_BUCKETS_MS, durationMs);
    add(s.requestBytes, BYTE_BUCKETS, requestBytes);
    add(s.responseBytes, BYTE_BUCKETS, responseBytes);
  }

  /** how many label sets are kept */
  get size(): number {
    return this.series.size;
  }
}
