// Deterministic choosers. Weighted splits use smooth weighted round-robin (as nginx
// does), so a 90/10 split is exact over every 10 requests rather than on average.

export class SmoothWeighted<T> {
  private readonly current: number[];
  private readonly total: number;
  constructor(private readonly items: { item: T; weight: number }[]) {
    this.current = items.map(() => 0);
    this.total = items.reduce((s, i) => s + i.weight, 0);
  }
  next(): T {
    let best = -1;
    for (let i = 0; i < this.items.length; i++) {
      this.current[i] += this.items[i].weight;
      if (this.items[i].weight > 0 && (best < 0 || this.current[i] > this.current[best])) best = i;
    }
    this.current[best] -= this.total;
    return this.items[best].item;
  }
}

export interface Balanced {
  active(): number;
}

export type Random = () => number;

/** Endpoint load balancers, as Envoy names them. */
export function makeBalancer<T extends Balanced>(policy: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV', random: Random): (eps: T[]) => T | undefined {
  if (policy === 'RANDOM') return (eps) => eps[Math.floor(random() * eps.length)];
  if (policy === 'LEAST_REQUEST') {
    // power of two choices, Envoy's default for LEAST_REQUEST
    return (eps) => {
      if (eps.length < 2) return eps[0];
      const a = eps[Math.floor(random() * eps.length)];
      const b = eps[Math.floor(random() * eps.length)];
      return b.active() < a.active() ? b : a;
    };
  }
  let i = 0;
  return (eps) => (eps.length ? eps[i++ % eps.length] : undefined);
}
