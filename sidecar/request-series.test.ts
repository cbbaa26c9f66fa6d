import * as client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BYTE_BUCKETS, DURATION_BUCKETS_MS, REQUEST_LABELS, type RequestLabels } from './istio-labels';
import { RequestSeries } from './request-series';

const labels = (code: string, flags = '-'): RequestLabels =>
  Object.fromEntries(REQUEST_LABELS.map((l) => [l, l === 'response_code' ? code : l === 'response_flags' ? flags : `${l}-v`])) as RequestLabels;

/** the same metrics as prom-client keeps them itself: what the exposition must equal */
function reference(r: client.Registry) {
  const labelNames = [...REQUEST_LABELS];
  return {
    requests: new client.Counter({ name: 'istio_requests_total', help: 'requests handled by this proxy', labelNames, registers: [r] }),
    duration: new client.Histogram({
      name: 'istio_request_duration_milliseconds',
      help: 'duration of requests, from the first byte received to the response complete',
      labelNames,
      buckets: DURATION_BUCKETS_MS,
      registers: [r],
    }),
    reqBytes: new client.Histogram({ name: 'istio_request_bytes', help: 'request body sizes', labelNames, buckets: BYTE_BUCKETS, registers: [r] }),
    resBytes: new client.Histogram({ name: 'istio_response_bytes', help: 'response body sizes', labelNames, buckets: BYTE_BUCKETS, registers: [r] }),
  };
}

const REQUESTS: [string, number, number, number][] = [
  ['200', 0.2, 0, 11],
  ['200', 3, 100, 11],
  ['200', 7200000, 20000000, 0],
  ['503', 12, 5, 95],
  ['200', 1, 1, 1],
];

describe('RequestSeries', () => {
  it('exposes exactly what prom-client would for the same requests, text and JSON (summed across workers)', async () => {
    const ours = new client.Registry();
    const series = new RequestSeries([ours]);
    const theirs = new client.Registry();
    const ref = reference(theirs);
    for (const [code, ms, inB, outB] of REQUESTS) {
      const l = labels(code);
      series.record(`k|${code}`, () => l, ms, inB, outB);
      ref.requests.inc(l);
      ref.duration.observe(l, ms);
      ref.reqBytes.observe(l, inB);
      ref.resBytes.observe(l, outB);
    }
    expect(series.size).toBe(2);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // --concurrency: the primary sums what each worker's get() returns
    const summed = async (r: client.Registry) => (await client.AggregatorRegistry.aggregate([await r.getMetricsAsJSON(), await r.getMetricsAsJSON()]).metrics());
    expect(await summed(ours)).toBe(await summed(theirs));
  });

  it('builds the labels once per key', () => {
    const series = new RequestSeries([new client.Registry()]);
    let built = 0;
    for (let i = 0; i < 5; i++) series.record('same', () => (built++, labels('200')), 1, 1, 1);
    expect(built).toBe(1);
    expect(series.size).toBe(1);
  });
});
