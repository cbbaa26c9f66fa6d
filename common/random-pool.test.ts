import { describe, expect, it } from 'vitest';
import { randomPool } from './random-pool';

describe('randomPool', () => {
  it('hands out consecutive bytes of one fill, and refills only when they run out', () => {
    let fills = 0;
    const take = randomPool(16, (b) => {
      fills++;
      for (let i = 0; i < b.length; i++) b[i] = fills * 100 + i;
    });
    expect([...take(8)]).toEqual([100, 101, 102, 103, 104, 105, 106, 107]);
    expect([...take(8)]).toEqual([108, 109, 110, 111, 112, 113, 114, 115]);
    expect(fills).toBe(1);
    // 8 more do not fit: a new fill, from its start, no byte handed out twice
    expect([...take(8)]).toEqual([200, 201, 202, 203, 204, 205, 206, 207]);
    expect(fills).toBe(2);
  });

  it('serves a request larger than the pool from a fill of its own', () => {
    const sizes: number[] = [];
    const take = randomPool(4, (b) => sizes.push(b.length));
    expect(take(10).length).toBe(10);
    expect(sizes).toEqual([10]);
  });

  it('gives distinct ids from the real generator', () => {
    const take = randomPool();
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) seen.add(take(16).toString('hex'));
    expect(seen.size).toBe(2000);
  });
});
