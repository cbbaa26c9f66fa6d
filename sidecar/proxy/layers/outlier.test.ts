import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { outlierLayer } from './outlier';
import { ConnectFailureError, OverflowError } from '../errors';
import type { Exchange, Handler } from '../exchange';
import type { OutlierModel } from '../../../proto/decode/model';
import { ClusterStats, EndpointStats, type Endpoint } from '../../runtime/config';
import { isEjected } from '../../runtime/outlier';
import { Cancel } from '../cancel';

const OUTLIER: OutlierModel = { consecutive5xx: 1, consecutiveGatewayFailure: 0, intervalMs: 1000, baseEjectionMs: 180_000, maxEjectionPercent: 100 };

function endpoint(name: string): Endpoint {
  const stats = new EndpointStats(name);
  return { address: name, port: 1, labels: {}, target: { host: name, port: 1 }, stats, active: () => stats.activeRequests } as Endpoint;
}

function exchange(ep: Endpoint, all: Endpoint[]): Exchange {
  const ctl = new Cancel();
  return {
    info: {} as Exchange['info'],
    conn: { mtls: true },
    started: 0,
    rt: {} as Exchange['rt'],
    request: { method: 'GET', path: '/', authority: 'a', headers: {} },
    body: null,
    signal: ctl,
    abort: (r) => ctl.abort(r),
    attempt: 1,
    cluster: { endpoints: all, stats: new ClusterStats('c'), model: { outlier: OUTLIER, limits: {} } } as unknown as Exchange['cluster'],
    endpoint: ep,
    responseOps: [],
    facts: { route: null, cluster: 'c', host: null, flags: [], attempts: 0 },
    cleanup: [],
  };
}

const failing = (err: Error): Handler => () => Promise.reject(err);
const answering = (status: number): Handler => () => Promise.resolve({ status, headers: {}, body: new PassThrough(), trailers: Promise.resolve(undefined) });

describe('outlier layer', () => {
  const now = () => 1_000;

  it('ejects an endpoint that answers 5xx past the threshold, and one it cannot connect to', async () => {
    const [a, b] = [endpoint('a'), endpoint('b')];
    await outlierLayer(now)(answering(500))(exchange(a, [a, b]));
    expect(isEjected(a.stats, now())).toBe(true);
    await expect(outlierLayer(now)(failing(new ConnectFailureError('refused')))(exchange(b, [a, b]))).rejects.toBeInstanceOf(ConnectFailureError);
    expect(isEjected(b.stats, now())).toBe(true);
  });

  it("never counts a circuit breaker's overflow against the endpoint: the request never left the proxy", async () => {
    const [a, b] = [endpoint('a'), endpoint('b')];
    for (let i = 0; i < 3; i++) {
      await expect(outlierLayer(now)(failing(new OverflowError('upstream overflow')))(exchange(a, [a, b]))).rejects.toBeInstanceOf(OverflowError);
    }
    expect(isEjected(a.stats, now())).toBe(false);
    expect(a.stats.outlier.consecutive5xx).toBe(0);
  });
});
