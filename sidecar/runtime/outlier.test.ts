// Outlier detection with local-origin errors split off (Istio's
// splitExternalLocalOriginErrors): connect failures, resets and timeouts count toward
// consecutiveLocalOriginFailures only, answers toward the 5xx thresholds only.
import { describe, expect, it } from 'vitest';
import type { OutlierModel } from '../../proto/decode/model';
import { EndpointStats, type Endpoint } from './config';
import { isEjected, recordOutcome } from './outlier';

const ep = (port: number): Endpoint => {
  const stats = new EndpointStats(`c|127.0.0.1:${port}`, 0);
  return { address: '127.0.0.1', port, labels: {}, weight: 1, target: { host: '127.0.0.1', port }, stats, active: () => stats.activeRequests };
};

describe('split local-origin errors', () => {
  const o: OutlierModel = { consecutive5xx: 3, consecutiveGatewayFailure: 0, intervalMs: 1000, baseEjectionMs: 1000, maxEjectionPercent: 100, splitLocalOrigin: true, consecutiveLocalOriginFailure: 2 };

  it('ejects after N local-origin failures in a row, which do not count as 5xx', () => {
    const a = ep(1);
    const all = [a, ep(2)];
    recordOutcome(o, a, all, { status: 503 }, 0);
    recordOutcome(o, a, all, { status: 503 }, 0);
    // two 5xx so far; a connect failure is not the third
    expect(recordOutcome(o, a, all, { localFailure: 'connect' }, 0)).toBe(false);
    expect(a.stats.outlier.consecutive5xx).toBe(2);
    expect(recordOutcome(o, a, all, { localFailure: 'reset' }, 0)).toBe(true);
    expect(isEjected(a.stats, 500)).toBe(true);
  });

  it('an answer, even a 5xx, resets the local-origin count', () => {
    const a = ep(1);
    const all = [a, ep(2)];
    recordOutcome(o, a, all, { localFailure: 'timeout' }, 0);
    recordOutcome(o, a, all, { status: 500 }, 0);
    expect(recordOutcome(o, a, all, { localFailure: 'timeout' }, 0)).toBe(false);
    expect(a.stats.outlier.consecutiveLocal).toBe(1);
  });

  it('with the local-origin threshold off, local failures eject nothing', () => {
    const a = ep(1);
    const all = [a, ep(2)];
    for (let i = 0; i < 10; i++) recordOutcome({ ...o, consecutiveLocalOriginFailure: 0 }, a, all, { localFailure: 'connect' }, 0);
    expect(isEjected(a.stats, 0)).toBe(false);
  });

  it('not split: a connect failure counts as a 5xx, as before', () => {
    const a = ep(1);
    const all = [a, ep(2)];
    const merged: OutlierModel = { ...o, splitLocalOrigin: undefined, consecutiveLocalOriginFailure: undefined };
    recordOutcome(merged, a, all, { status: 503 }, 0);
    recordOutcome(merged, a, all, { status: 503 }, 0);
    expect(recordOutcome(merged, a, all, { localFailure: 'connect' }, 0)).toBe(true);
  });
});
