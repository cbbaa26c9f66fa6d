import { describe, expect, it } from 'vitest';
import { Warming, WARMING_GRACE_MS, type WarmingState } from './warming';
import type { ClusterModel, RouteConfigModel } from '../../proto/decode/model';
import { noHeaderOps } from '../../proto/decode/model';

const cluster = (name: string): ClusterModel => ({ name, lbPolicy: 'ROUND_ROBIN', connectTimeoutMs: 1000, mesh: true, protocol: 'HTTP', limits: {} });
const rc = (...clusters: string[]): RouteConfigModel => ({
  name: 'outbound',
  virtualHosts: [
    {
      name: 'reviews',
      domains: ['reviews'],
      requestHeaders: noHeaderOps(),
      responseHeaders: noHeaderOps(),
      routes: [
        {
          name: 'r',
          path: { kind: 'prefix', value: '/' },
          headers: [],
          query: [],
          clusters: clusters.map((name) => ({ name, weight: 1, requestHeaders: noHeaderOps(), responseHeaders: noHeaderOps() })),
          timeoutMs: 0,
          mirrors: [],
          hashPolicies: [],
          requestHeaders: noHeaderOps(),
          responseHeaders: noHeaderOps(),
        },
      ],
    },
  ],
});

function state(...warm: string[]): WarmingState {
  const s: WarmingState = { clusters: new Map(), endpoints: new Map(), routes: new Map() };
  for (const c of warm) {
    s.clusters.set(c, cluster(c));
    s.endpoints.set(c, { clusterName: c, endpoints: [] });
  }
  return s;
}

describe('make before break', () => {
  it('puts a route in force only once its clusters have their endpoints', () => {
    let now = 0;
    const w = new Warming(() => now);
    const s = state('v1');
    w.offer(s, rc('v1'));
    expect(s.routes.get('outbound')).toEqual(rc('v1'));
    w.offer(s, rc('v1', 'v2'));
    expect(s.routes.get('outbound')).toEqual(rc('v1')); // v2 is not known yet
    s.clusters.set('v2', cluster('v2'));
    w.promote(s);
    expect(s.routes.get('outbound')).toEqual(rc('v1')); // known, but no endpoints yet
    s.endpoints.set('v2', { clusterName: 'v2', endpoints: [] });
    w.promote(s);
    expect(s.routes.get('outbound')).toEqual(rc('v1', 'v2'));
    expect(w.waiting).toBeUndefined();
  });

  it('gives up waiting after the grace period, so a cluster that never warms cannot freeze routing', () => {
    let now = 0;
    const w = new Warming(() => now);
    const s = state('v1');
    w.offer(s, rc('v1', 'ghost'));
    expect(s.routes.size).toBe(0);
    expect(w.waiting).toBe(WARMING_GRACE_MS);
    now = WARMING_GRACE_MS;
    expect(w.promote(s)).toBe(true);
    expect(s.routes.get('outbound')).toEqual(rc('v1', 'ghost'));
  });

  it('keeps a removed cluster while a route in force still uses it, and lets it go after', () => {
    const w = new Warming(() => 0);
    const s = state('v1', 'v2');
    w.offer(s, rc('v1', 'v2'));
    const v2 = s.clusters.get('v2')!;
    s.clusters.delete('v2');
    w.clustersReplaced(s, new Map([['v2', v2]]));
    expect(s.clusters.has('v2')).toBe(true);
    w.offer(s, rc('v1'));
    expect(s.clusters.has('v2')).toBe(false);
  });
});
