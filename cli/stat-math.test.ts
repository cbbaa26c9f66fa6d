import { describe, expect, it } from 'vitest';
import { histogramQuantile, increase, statRows, type Scrape } from './stat-math';
import { parsePrometheusText } from './prom-text';

const INF = Infinity;

describe('histogramQuantile (as Prometheus interpolates)', () => {
  const b = [{ le: 1, count: 10 }, { le: 5, count: 30 }, { le: 10, count: 40 }, { le: INF, count: 40 }];

  it('interpolates linearly inside the bucket the rank falls in', () => {
    expect(histogramQuantile(0.5, b)).toBeCloseTo(3); // rank 20: 1 + 4 * 10/20
    expect(histogramQuantile(0.95, b)).toBeCloseTo(9); // rank 38: 5 + 5 * 8/10
    expect(histogramQuantile(0.99, b)).toBeCloseTo(9.8);
    expect(histogramQuantile(0.25, b)).toBeCloseTo(1); // rank 10: the top of the first bucket
  });

  it('starts the first bucket at 0', () => {
    expect(histogramQuantile(0.5, [{ le: 0.5, count: 4 }, { le: 1, count: 4 }, { le: INF, count: 4 }])).toBeCloseTo(0.25);
  });

  it('answers a rank in the +Inf bucket with the highest finite bound', () => {
    expect(histogramQuantile(0.9, [{ le: 1, count: 10 }, { le: INF, count: 20 }])).toBe(1);
  });

  it('is NaN without observations or without a +Inf bucket; ±Inf outside 0..1', () => {
    expect(histogramQuantile(0.5, [{ le: 1, count: 0 }, { le: INF, count: 0 }])).toBeNaN();
    expect(histogramQuantile(0.5, [{ le: 1, count: 3 }, { le: 2, count: 3 }])).toBeNaN();
    expect(histogramQuantile(-1, b)).toBe(-INF);
    expect(histogramQuantile(2, b)).toBe(INF);
  });

  it('sums buckets of the same bound, in any order, and raises counts that went down', () => {
    const summed = [{ le: INF, count: 20 }, { le: 5, count: 15 }, { le: 1, count: 5 }, { le: 10, count: 20 }, { le: 5, count: 15 }, { le: 1, count: 5 }, { le: 10, count: 20 }];
    expect(histogramQuantile(0.5, summed)).toBeCloseTo(3);
    expect(histogramQuantile(0.5, [{ le: 1, count: 10 }, { le: 2, count: 5 }, { le: INF, count: 10 }])).toBeCloseTo(0.5);
  });
});

describe('increase', () => {
  it('is the difference, or the new value after a reset', () => {
    expect(increase(10, 50)).toBe(40);
    expect(increase(undefined, 7)).toBe(7);
    expect(increase(50, 3)).toBe(3);
  });
});

const dest = (ver: string, code: string, mtls = 'mutual_tls') =>
  `reporter="destination",destination_service_name="reviews",destination_service_namespace="default",destination_version="${ver}",response_code="${code}",connection_security_policy="${mtls}"`;
const scrape = (at: number, text: string): Scrape => ({ at, samples: parsePrometheusText(text) });

describe('statRows from two scrapes', () => {
  const before = scrape(
    0,
    `# TYPE istio_requests_total counter
istio_requests_total{${dest('v1', '200')}} 10
istio_requests_total{reporter="source",destination_service_name="reviews",destination_service_namespace="default",destination_version="v1",response_code="200"} 999
istio_request_duration_milliseconds_bucket{le="1",${dest('v1', '200')}} 10
istio_request_duration_milliseconds_bucket{le="5",${dest('v1', '200')}} 10
istio_request_duration_milliseconds_bucket{le="+Inf",${dest('v1', '200')}} 10
istio_tcp_connections_opened_total{reporter="destination",destination_service_name="reviews",destination_service_namespace="default",destination_version="v1"} 4
`,
  );
  const after = scrape(
    5000,
    `istio_requests_total{${dest('v1', '200')}} 50
istio_requests_total{${dest('v1', '503')}} 10
istio_requests_total{${dest('v2', '200', 'none')}} 5
istio_requests_total{reporter="source",destination_service_name="reviews",destination_service_namespace="default",destination_version="v1",response_code="200"} 5000
istio_request_duration_milliseconds_bucket{le="1",${dest('v1', '200')}} 30
istio_request_duration_milliseconds_bucket{le="5",${dest('v1', '200')}} 50
istio_request_duration_milliseconds_bucket{le="+Inf",${dest('v1', '200')}} 50
istio_request_duration_milliseconds_bucket{le="1",${dest('v1', '503')}} 0
istio_request_duration_milliseconds_bucket{le="5",${dest('v1', '503')}} 10
istio_request_duration_milliseconds_bucket{le="+Inf",${dest('v1', '503')}} 10
istio_tcp_connections_opened_total{reporter="destination",destination_service_name="reviews",destination_service_namespace="default",destination_version="v1"} 6
istio_tcp_connections_closed_total{reporter="destination",destination_service_name="reviews",destination_service_namespace="default",destination_version="v1"} 3
`,
  );

  it('counts what came in over the interval, per service and version, from the destination side only', () => {
    const rows = statRows([{ before, after }], [{ name: 'ratings', namespace: 'default', version: 'v1' }]);
    expect(rows.map((r) => `${r.name} ${r.version}`)).toEqual(['ratings v1', 'reviews v1', 'reviews v2']);
    const [ratings, v1, v2] = rows;
    expect(ratings).toMatchObject({ requests: 0, rps: 0, tcpConnections: 0 });
    expect(ratings.success).toBeUndefined();
    // 40 more 200s and 10 new 503s in 5 s
    expect(v1.requests).toBe(50);
    expect(v1.rps).toBeCloseTo(10);
    expect(v1.success).toBeCloseTo(0.8);
    expect(v1.mtls).toBe(1);
    expect(v1.tcpConnections).toBe(3);
    // bucket increases: le=1 20, le=5 50, +Inf 50 → p50 rank 25 in (1,5]: 1 + 4 * 5/30
    expect(v1.p50).toBeCloseTo(1 + (4 * 5) / 30);
    expect(v1.p99).toBeCloseTo(1 + (4 * 29.5) / 30);
    expect(v2).toMatchObject({ requests: 5, rps: 1, success: 1, mtls: 0 });
    expect(v2.p50).toBeUndefined();
  });

  it('sums the replicas of a version, each at its own rate', () => {
    const a = { before: scrape(0, `istio_requests_total{${dest('v1', '200')}} 0`), after: scrape(2000, `istio_requests_total{${dest('v1', '200')}} 20`) };
    const b = { before: scrape(0, `istio_requests_total{${dest('v1', '500')}} 0`), after: scrape(4000, `istio_requests_total{${dest('v1', '500')}} 20`) };
    const [row] = statRows([a, b]);
    expect(row.rps).toBeCloseTo(15);
    expect(row.success).toBeCloseTo(0.5);
  });
});

describe('parsePrometheusText', () => {
  it('reads names, escaped label values and special values', () => {
    const s = parsePrometheusText('# HELP x y\nx_total{a="q\\"uo\\\\te",b="n\\nl"} 3 1700000000\ny +Inf\nz{le="+Inf"} NaN\n');
    expect(s[0]).toEqual({ name: 'x_total', labels: { a: 'q"uo\\te', b: 'n\nl' }, value: 3 });
    expect(s[1].value).toBe(Infinity);
    expect(s[2].value).toBeNaN();
  });

  it('names the line it cannot read', () => {
    expect(() => parsePrometheusText('ok 1\nbad{a=1} 2\n')).toThrow(/line 2/);
    expect(() => parsePrometheusText('x{a="1"} notanumber')).toThrow(/line 1: not a number/);
  });
});
