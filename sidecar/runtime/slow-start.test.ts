// Slow start with an injected clock: an endpoint that joins after the cluster's first
// ones gets a share that ramps up over the window; the first ones never ramp.
import { describe, expect, it } from 'vitest';
import type { ClusterModel, EndpointModel, SlowStartModel } from '../../proto/decode/model';
import type { InForce } from '../xds/client';
import { ClusterStats, EndpointStats, RuntimeConfig } from './config';
import { slowStartWeight } from './slow-start';

const CL = 'outbound|80||reviews.default.svc.cluster.local';
const RAMP: SlowStartModel = { windowMs: 60_000, aggression: 1, minWeightPercent: 10 };

describe('the ramp', () => {
  it('is linear by default, from the minimum weight, full after the window', () => {
    expect(slowStartWeight(RAMP, 0)).toBe(0.1);
    expect(slowStartWeight(RAMP, 3000)).toBe(0.1);
    expect(slowStartWeight(RAMP, 15_000)).toBeCloseTo(0.25);
    expect(slowStartWeight(RAMP, 30_000)).toBeCloseTo(0.5);
    expect(slowStartWeight(RAMP, 60_000)).toBe(1);
  });

  it('ramps slower at first with a higher aggression', () => {
    expect(slowStartWeight({ ...RAMP, aggression: 2 }, 15_000)).toBeCloseTo(0.5);
    expect(slowStartWeight({ ...RAMP, aggression: 0.5 }, 30_000)).toBeCloseTo(0.25);
    expect(slowStartWeight({ ...RAMP, minWeightPercent: 0 }, 0)).toBeCloseTo(1 / 60);
  });
});

/** a sidecar's view of one cluster as endpoints come and go, on a clock the test moves */
function sidecar(lbPolicy: 'ROUND_ROBIN' | 'LEAST_REQUEST', slowStart: SlowStartModel | undefined) {
  let t = 1_000_000;
  const stats = new Map<string, EndpointStats>();
  const statsFor = (k: string) => {
    let s = stats.get(k);
    if (!s) stats.set(k, (s = new EndpointStats(k, t)));
    return s;
  };
  const cstats = new ClusterStats(CL);
  const model: ClusterModel = { name: CL, lbPolicy, connectTimeoutMs: 1000, mesh: true, protocol: 'HTTP', limits: {}, ...(slowStart ? { slowStart } : {}) };
  const ep = (port: number): EndpointModel => ({ address: '127.0.0.1', port, healthy: true, labels: {} });
  const runtime = (ports: number[]) => {
    const res: InForce = {
      clusters: new Map([[CL, model]]),
      endpoints: new Map([[CL, { clusterName: CL, endpoints: ports.map(ep) }]]),
      listeners: new Map(),
      routes: new Map(),
    };
    // P2C draws alternate between the two endpoints: 0, 0 then 0.5, 0.5
    let draws = 0;
    const random = () => [0, 0, 0.5, 0.5][draws++ % 4];
    return new RuntimeConfig(1, res, statsFor, random, { now: () => t, clusterStats: () => cstats }).clusters.get(CL)!;
  };
  /** how many of `n` picks each port gets */
  const shares = (c: ReturnType<typeof runtime>, n: number) => {
    const out = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const p = c.pick()!.port;
      out.set(p, (out.get(p) ?? 0) + 1);
    }
    return out;
  };
  return { runtime, shares, advance: (ms: number) => (t += ms) };
}

describe('slow start in the balancer', () => {
  it('gives an endpoint that joins a ramping share of round robin picks', () => {
    const s = sidecar('ROUND_ROBIN', RAMP);
    // the cluster starts with two endpoints: they are not ramped
    expect(s.shares(s.runtime([1, 2]), 100)).toEqual(new Map([[1, 50], [2, 50]]));
    s.advance(5000);
    const c = s.runtime([1, 2, 3]);
    // just joined: 10% of a full weight, so 0.1 / 2.1 of the picks
    expect(s.shares(c, 210).get(3)).toBe(10);
    s.advance(30_000); // 30 s into the window: half a weight
    expect(s.shares(c, 250).get(3)).toBe(50);
    s.advance(30_000); // past the window: a full share
    expect(s.shares(c, 300)).toEqual(new Map([[1, 100], [2, 100], [3, 100]]));
  });

  it('weights least request by load as well', () => {
    const s = sidecar('LEAST_REQUEST', RAMP);
    s.runtime([1]);
    s.advance(1000);
    const c = s.runtime([1, 2]);
    // an idle newcomer at 10% still gets far fewer picks than the old endpoint
    const early = s.shares(c, 110);
    expect(early.get(2)).toBe(10);
    s.advance(60_000);
    expect(s.shares(c, 100)).toEqual(new Map([[1, 50], [2, 50]]));
  });

  it('without slow start, a newcomer gets its full share at once', () => {
    const s = sidecar('ROUND_ROBIN', undefined);
    s.runtime([1, 2]);
    s.advance(1000);
    expect(s.shares(s.runtime([1, 2, 3]), 300).get(3)).toBe(100);
  });

  it('the first endpoints of a cluster do not ramp, even when they arrive one config after it', () => {
    const s = sidecar('ROUND_ROBIN', RAMP);
    s.runtime([]);
    s.advance(1000);
    expect(s.shares(s.runtime([1, 2]), 100)).toEqual(new Map([[1, 50], [2, 50]]));
  });
});
