import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../config';
import { TypeUrl } from '../../proto/type-urls';
import { SnapshotCache, type Clock } from './cache';
import type { Snapshot } from './snapshot';

/** A clock whose time moves only when the test says. */
class FakeClock implements Clock {
  private t = 1_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}

const OPTS = { domain: 'cluster.local', trustDomain: 'cluster.local' };
const workload = (i: number) => ({
  id: `reviews-${i}`,
  service: 'reviews',
  namespace: 'default',
  serviceAccount: 'reviews',
  labels: {},
  inboundAddress: `127.0.0.1:${15000 + i}`,
  identity: 'spiffe://cluster.local/ns/default/sa/reviews',
});
const vs = (timeout: string) =>
  parseConfigText(
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - timeout: ${timeout}
    route:
    - destination: {host: reviews}
`,
    'mesh.yaml',
  );

function setup() {
  const clock = new FakeClock();
  const cache = new SnapshotCache(OPTS, { afterMs: 100, maxMs: 500 }, clock);
  const pushed: { snap: Snapshot; changedAt: number }[] = [];
  cache.on('snapshot', (snap: Snapshot, changedAt: number) => pushed.push({ snap, changedAt }));
  return { clock, cache, pushed };
}

const endpointCount = (snap: Snapshot) => {
  const cla = snap.served(TypeUrl.ClusterLoadAssignment, ['outbound|80||reviews.default.svc.cluster.local']).resources[0];
  return cla ? ((cla.obj.endpoints as { lb_endpoints: unknown[] }[] | undefined) ?? []).flatMap((l) => l.lb_endpoints).length : 0;
};

describe('SnapshotCache: debounced pushes', () => {
  it('pushes a burst of changes once, after the quiet time, built from the last of them', () => {
    const { clock, cache, pushed } = setup();
    for (let i = 1; i <= 5; i++) {
      cache.addWorkload(`s${i}`, workload(i));
      clock.advance(50);
    }
    expect(pushed).toHaveLength(0);
    clock.advance(50);
    expect(pushed).toHaveLength(1);
    expect(endpointCount(pushed[0].snap)).toBe(5);
    // timed from the first change of the burst
    expect(pushed[0].changedAt).toBe(1_000);
  });

  it('never loses the last change: one made after a push is pushed too, and a config set last wins', () => {
    const { clock, cache, pushed } = setup();
    cache.addWorkload('s1', workload(1));
    clock.advance(100);
    expect(pushed).toHaveLength(1);
    cache.setConfig(vs('1s'));
    cache.removeWorkload('s1');
    cache.setConfig(vs('7s'));
    clock.advance(99);
    expect(pushed).toHaveLength(1);
    clock.advance(1);
    expect(pushed).toHaveLength(2);
    const last = pushed[1].snap;
    expect(last).toBe(cache.snapshot);
    expect(endpointCount(last)).toBe(0);
    expect(JSON.stringify(last.served(TypeUrl.RouteConfiguration, ['outbound']).resources[0].obj)).toContain('"seconds":7');
    // nothing more is pending
    clock.advance(10_000);
    expect(pushed).toHaveLength(2);
  });

  it('pushes at least every maxMs while changes keep coming', () => {
    const { clock, cache, pushed } = setup();
    for (let i = 1; i <= 12; i++) {
      cache.addWorkload(`s${i}`, workload(i));
      clock.advance(60);
    }
    // 720 ms of changes 60 ms apart: the quiet time never comes, the limit does
    expect(pushed.length).toBeGreaterThanOrEqual(1);
    clock.advance(100);
    expect(endpointCount(pushed.at(-1)!.snap)).toBe(12);
  });
});

describe('SnapshotCache: a service outlives its last sidecar by the grace period', () => {
  const GRACE = 30_000;
  const ratings = (i: number) => ({ ...workload(i), id: `ratings-${i}`, service: 'ratings', serviceAccount: 'ratings' });
  const RATINGS = 'outbound|80||ratings.default.svc.cluster.local';
  const hasCluster = (snap: Snapshot) => snap.served(TypeUrl.Cluster, null).resources.some((r) => r.name === RATINGS);
  function graceSetup() {
    const clock = new FakeClock();
    const cache = new SnapshotCache(OPTS, { afterMs: 100, maxMs: 500 }, clock, { serviceMs: GRACE });
    return { clock, cache };
  }

  it('its last sidecar reconnecting within the grace changes no cluster; past the grace the service leaves', () => {
    const { clock, cache } = graceSetup();
    cache.addWorkload('r1', ratings(1));
    cache.addWorkload('r2', ratings(2));
    clock.advance(100);
    expect(hasCluster(cache.snapshot)).toBe(true);
    // one of two leaves: nothing departs
    cache.removeWorkload('r1');
    clock.advance(100);
    expect(cache.departedServices).toEqual([]);
    // the last leaves: the cluster stays, with no endpoints
    cache.removeWorkload('r2');
    clock.advance(100);
    expect(hasCluster(cache.snapshot)).toBe(true);
    expect(cache.departedServices).toEqual([{ service: 'ratings', namespace: 'default' }]);
    // back within the grace: not departed any more, and the grace timer does not take it away later
    cache.addWorkload('r2', ratings(2));
    expect(cache.departedServices).toEqual([]);
    clock.advance(GRACE * 2);
    expect(cache.departedServices).toEqual([]);
    expect(hasCluster(cache.snapshot)).toBe(true);
    // gone for good: it leaves once the grace is over, not before
    cache.removeWorkload('r2');
    clock.advance(GRACE - 1);
    expect(hasCluster(cache.snapshot)).toBe(true);
    clock.advance(1 + 100);
    expect(hasCluster(cache.snapshot)).toBe(false);
    expect(cache.departedServices).toEqual([]);
  });

  it('a stream replaced by one registering another service counts as its old service leaving', () => {
    const { clock, cache } = graceSetup();
    cache.addWorkload('s', ratings(1));
    cache.addWorkload('s', workload(1));
    clock.advance(100);
    expect(cache.departedServices).toEqual([{ service: 'ratings', namespace: 'default' }]);
    clock.advance(GRACE + 100);
    expect(hasCluster(cache.snapshot)).toBe(false);
  });

  it('without a grace a service leaves with its last sidecar', () => {
    const clock = new FakeClock();
    const cache = new SnapshotCache(OPTS, { afterMs: 100, maxMs: 500 }, clock);
    cache.addWorkload('r1', ratings(1));
    clock.advance(100);
    cache.removeWorkload('r1');
    clock.advance(100);
    expect(hasCluster(cache.snapshot)).toBe(false);
  });
});

describe('SnapshotCache: a sidecar whose stream broke stays an endpoint for the endpoint grace', () => {
  const GRACE = 5_000;
  function graceSetup() {
    const clock = new FakeClock();
    const cache = new SnapshotCache(OPTS, { afterMs: 100, maxMs: 500 }, clock, { endpointMs: GRACE });
    const pushed: Snapshot[] = [];
    cache.on('snapshot', (snap: Snapshot) => pushed.push(snap));
    return { clock, cache, pushed };
  }
  const ids = (snap: Snapshot) => snap.workloads.map((w) => w.id).sort();

  it('kept through the grace, then gone; one that said goodbye goes at once', () => {
    const { clock, cache } = graceSetup();
    cache.addWorkload('s1', workload(1));
    cache.addWorkload('s2', workload(2));
    clock.advance(100);
    cache.loseWorkload('s1');
    cache.removeWorkload('s2');
    clock.advance(100);
    expect(ids(cache.snapshot)).toEqual(['reviews-1']);
    expect(endpointCount(cache.snapshot)).toBe(1);
    clock.advance(GRACE);
    expect(ids(cache.snapshot)).toEqual([]);
  });

  it('back within the grace under a new stream (same id, or same address): takes its own place, never twice', () => {
    const { clock, cache } = graceSetup();
    cache.addWorkload('s1', workload(1));
    cache.addWorkload('s2', workload(2));
    clock.advance(100);
    cache.loseWorkload('s1');
    cache.loseWorkload('s2');
    clock.advance(50);
    cache.addWorkload('s3', workload(1));
    // a restarted sidecar: a new id, the same inbound address
    cache.addWorkload('s4', { ...workload(2), id: 'reviews-2-restarted' });
    clock.advance(100);
    expect(ids(cache.snapshot)).toEqual(['reviews-1', 'reviews-2-restarted']);
    expect(endpointCount(cache.snapshot)).toBe(2);
    // the old streams' grace running out takes nothing away
    clock.advance(GRACE * 2);
    expect(ids(cache.snapshot)).toEqual(['reviews-1', 'reviews-2-restarted']);
  });
});

describe('SnapshotCache: a newcomer takes the place of a lost endpoint of its own service only', () => {
  it('another service registering the same address leaves the lost endpoint to its grace', () => {
    const clock = new FakeClock();
    const cache = new SnapshotCache(OPTS, { afterMs: 100, maxMs: 500 }, clock, { endpointMs: 5_000 });
    cache.addWorkload('s1', workload(1));
    clock.advance(100);
    cache.loseWorkload('s1');
    cache.addWorkload('s2', { ...workload(1), id: 'other', service: 'ratings', serviceAccount: 'ratings' });
    clock.advance(100);
    expect(cache.snapshot.workloads.map((w) => w.id).sort()).toEqual(['other', 'reviews-1']);
    clock.advance(5_000);
    expect(cache.snapshot.workloads.map((w) => w.id)).toEqual(['other']);
  });
});
