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
  /** absent: 1 */
  weight?: number;
}

export type Random = () => number;

/**
 * Endpoint load balancers, as Envoy names them. `weighted`: the endpoints' weights differ,
 * so each gets its share: round robin by smooth weighted round robin (exact over every
 * round, as Envoy's weighted scheduler), random in proportion, least request by
 * weight / (active + 1) (Envoy's formula with its default bias of 1).
 */
export function makeBalancer<T extends Balanced>(
  policy: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV',
  random: Random,
  weighted = false,
): (eps: T[]) => T | undefined {
  if (weighted) return weightedBalancer(policy, random);
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

const weightOf = (e: Balanced): number => e.weight ?? 1;

function weightedBalancer<T extends Balanced>(policy: string, random: Random): (eps: T[]) => T | undefined {
  if (policy === 'RANDOM') {
    return (eps) => {
      let r = random() * eps.reduce((s, e) => s + weightOf(e), 0);
      for (const e of eps) if ((r -= weightOf(e)) < 0) return e;
      return eps[eps.length - 1];
    };
  }
  const share = policy === 'LEAST_REQUEST' ? (e: T) => weightOf(e) / (e.active() + 1) : weightOf;
  // smooth weighted round robin over whichever endpoints are offered (outlier ejection may hide some)
  const current = new Map<T, number>();
  return (eps) => {
    let best: T | undefined;
    let total = 0;
    for (const e of eps) {
      const w = share(e);
      total += w;
      const c = (current.get(e) ?? 0) + w;
      current.set(e, c);
      if (!best || c > current.get(best)!) best = e;
    }
    if (best) current.set(best, current.get(best)! - total);
    return best;
  };
}
