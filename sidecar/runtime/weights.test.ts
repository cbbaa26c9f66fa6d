// Endpoint weights (a ServiceEntry endpoint's `weight`, EDS load_balancing_weight) in
// every balancer.
import { describe, expect, it } from 'vitest';
import { makeBalancer } from './pickers';
import { HashRing, hash32 } from './hash-ring';

interface Ep {
  name: string;
  weight: number;
  load: number;
  active(): number;
}
const ep = (name: string, weight: number, load = 0): Ep => ({ name, weight, load, active() { return this.load; } });

/** a fixed sequence standing in for Math.random */
function sequence(): () => number {
  let i = 0;
  return () => ((i++ * 0.6180339887) % 1);
}

const count = (picks: (Ep | undefined)[]) => picks.reduce<Record<string, number>>((m, e) => ((m[e!.name] = (m[e!.name] ?? 0) + 1), m), {});

describe('weighted balancers', () => {
  const eps = [ep('a', 1), ep('b', 3)];

  it('round robin: exactly 1:3 in every round of 4, smoothly', () => {
    const pick = makeBalancer<Ep>('ROUND_ROBIN', sequence(), true);
    const picks = Array.from({ length: 40 }, () => pick(eps)!.name);
    for (let i = 0; i < 40; i += 4) expect(picks.slice(i, i + 4).sort().join('')).toBe('abbb');
  });

  it('round robin keeps the shares among the endpoints still offered (one ejected)', () => {
    const three = [ep('a', 1), ep('b', 3), ep('c', 2)];
    const pick = makeBalancer<Ep>('ROUND_ROBIN', sequence(), true);
    expect(count(Array.from({ length: 30 }, () => pick([three[0], three[2]])))).toEqual({ a: 10, c: 20 });
  });

  it('random: in proportion to the weights', () => {
    const pick = makeBalancer<Ep>('RANDOM', sequence(), true);
    const c = count(Array.from({ length: 4000 }, () => pick(eps)));
    expect(c.b / c.a).toBeGreaterThan(2.7);
    expect(c.b / c.a).toBeLessThan(3.3);
  });

  it('least request: weight / (active + 1)', () => {
    const pick = makeBalancer<Ep>('LEAST_REQUEST', sequence(), true);
    const busy = [ep('a', 1, 0), ep('b', 3, 5)];
    // b's share is 3/6 = 0.5 against a's 1: a gets two of every three
    expect(count(Array.from({ length: 30 }, () => pick(busy)))).toEqual({ a: 20, b: 10 });
    expect(count(Array.from({ length: 40 }, () => pick(eps)))).toEqual({ a: 10, b: 30 });
  });

  it('unweighted balancers are as before: plain round robin', () => {
    const pick = makeBalancer<Ep>('ROUND_ROBIN', sequence());
    expect(Array.from({ length: 4 }, () => pick(eps)!.name).join('')).toBe('abab');
  });

  it('the hash ring gives a heavier endpoint a larger share of keys', () => {
    const ring = new HashRing(eps, (e) => e.name, (e) => e.weight);
    const c = count(Array.from({ length: 8000 }, (_, i) => ring.pick(hash32(`user-${i}`))));
    expect(c.b / c.a).toBeGreaterThan(2.2);
    expect(c.b / c.a).toBeLessThan(4);
  });
});
