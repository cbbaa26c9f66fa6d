import { describe, expect, it } from 'vitest';
import { HashRing, hash32 } from './hash-ring';
import { requestHash, cookieValue } from './request-hash';
import { recordOutcome, isEjected } from './outlier';
import { EndpointStats, type Endpoint } from './config';
import { byKey } from '../proxy/layers/split';
import type { OutlierModel, RouteModel } from '../../proto/decode/model';

const ep = (port: number): Endpoint => {
  const stats = new EndpointStats(`c|127.0.0.1:${port}`);
  return { address: '127.0.0.1', port, labels: {}, weight: 1, target: { host: '127.0.0.1', port }, stats, active: () => stats.activeRequests };
};

describe('the hash ring', () => {
  it('sends a key to the same endpoint every time, spreading keys over all of them', () => {
    const eps = [ep(1), ep(2), ep(3)];
    const ring = new HashRing(eps, (e) => String(e.port));
    const owner = new Map<string, number>();
    for (let i = 0; i < 3000; i++) owner.set(`user-${i}`, ring.pick(hash32(`user-${i}`))!.port);
    for (let i = 0; i < 3000; i++) expect(ring.pick(hash32(`user-${i}`))!.port).toBe(owner.get(`user-${i}`));
    const counts = [1, 2, 3].map((p) => [...owner.values()].filter((x) => x === p).length);
    for (const c of counts) expect(c).toBeGreaterThan(600);
  });

  it('moves only the removed endpoint\'s keys when one goes, and skips endpoints that may not take it', () => {
    const eps = [ep(1), ep(2), ep(3)];
    const before = new HashRing(eps, (e) => String(e.port));
    const after = new HashRing(eps.slice(0, 2), (e) => String(e.port));
    for (let i = 0; i < 2000; i++) {
      const h = hash32(`k${i}`);
      const b = before.pick(h)!.port;
      if (b !== 3) expect(after.pick(h)!.port).toBe(b);
      expect(before.pick(h, (e) => e.port !== 3)!.port).not.toBe(3);
    }
  });
});

describe('the request hash', () => {
  const input = (headers: Record<string, string>, path = '/') => ({ header: (n: string) => headers[n], path, clientIp: '10.0.0.1' });

  it('hashes on a header, a query parameter, the source IP or a cookie', () => {
    expect(requestHash([{ kind: 'header', name: 'x-user', terminal: false }], input({ 'x-user': 'a' })).hash).toBe(hash32('a'));
    expect(requestHash([{ kind: 'query', name: 'u', terminal: false }], input({}, '/p?u=b')).hash).toBe(hash32('b'));
    expect(requestHash([{ kind: 'sourceIp', terminal: false }], input({})).hash).toBe(hash32('10.0.0.1'));
    expect(requestHash([{ kind: 'cookie', name: 's', terminal: false }], input({ cookie: 'a=1; s="c"' })).hash).toBe(hash32('c'));
    expect(requestHash([{ kind: 'header', name: 'x-user', terminal: false }], input({})).hash).toBeUndefined();
  });

  it('makes the cookie when it is missing and a ttl is set, and asks for it to be set', () => {
    const r = requestHash([{ kind: 'cookie', name: 's', ttlMs: 60_000, path: '/', terminal: false }], input({}));
    expect(r.setCookie).toMatch(/^s="[0-9a-f]{16}"; Max-Age=60; Path=\/; HttpOnly$/);
    expect(r.hash).toBe(hash32(cookieValue(r.setCookie, 's')!));
    expect(requestHash([{ kind: 'cookie', name: 's', terminal: false }], input({})).setCookie).toBeUndefined();
  });
});

describe('outlier detection', () => {
  const o: OutlierModel = { consecutive5xx: 3, consecutiveGatewayFailure: 0, intervalMs: 1000, baseEjectionMs: 1000, maxEjectionPercent: 50 };

  it('ejects after N consecutive 5xx, for base × times ejected, and a success resets the count', () => {
    const [a, b] = [ep(1), ep(2)];
    const all = [a, b];
    recordOutcome(o, a, all, { status: 503 }, 0);
    recordOutcome(o, a, all, { status: 503 }, 0);
    recordOutcome(o, a, all, { status: 200 }, 0);
    recordOutcome(o, a, all, { status: 503 }, 0);
    recordOutcome(o, a, all, { status: 500 }, 0);
    expect(isEjected(a.stats, 0)).toBe(false);
    expect(recordOutcome(o, a, all, { localFailure: 'connect' }, 0)).toBe(true);
    expect(isEjected(a.stats, 999)).toBe(true);
    expect(isEjected(a.stats, 1000)).toBe(false);
    for (let i = 0; i < 3; i++) recordOutcome(o, a, all, { status: 503 }, 2000);
    expect(a.stats.outlier.ejectedUntil).toBe(4000); // second ejection: twice as long
  });

  it('never ejects more than maxEjectionPercent, but always may eject one', () => {
    const [a, b] = [ep(1), ep(2)];
    const all = [a, b];
    for (let i = 0; i < 3; i++) recordOutcome({ ...o, maxEjectionPercent: 0 }, a, all, { status: 503 }, 0);
    expect(isEjected(a.stats, 0)).toBe(true);
    for (let i = 0; i < 3; i++) recordOutcome(o, b, all, { status: 503 }, 0);
    expect(isEjected(b.stats, 0)).toBe(false);
  });
});

describe('sticky splits', () => {
  const route = (w1: number, w2: number) => ({ clusters: [{ name: 'v1', weight: w1 }, { name: 'v2', weight: w2 }] }) as unknown as RouteModel;

  it('keeps each key on one destination, in proportion to the weights, and moves keys only toward the destination that grew', () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `user-${i}`);
    const at10 = keys.map((k) => byKey(route(90, 10), k).name);
    const at20 = keys.map((k) => byKey(route(80, 20), k).name);
    expect(keys.map((k) => byKey(route(90, 10), k).name)).toEqual(at10);
    const share = (xs: string[]) => xs.filter((x) => x === 'v2').length / xs.length;
    expect(share(at10)).toBeGreaterThan(0.08);
    expect(share(at10)).toBeLessThan(0.12);
    expect(share(at20)).toBeGreaterThan(0.18);
    expect(share(at20)).toBeLessThan(0.22);
    at10.forEach((v, i) => {
      if (v === 'v2') expect(at20[i]).toBe('v2');
    });
  });
});
