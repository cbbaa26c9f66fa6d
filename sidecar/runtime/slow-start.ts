// Slow start (Envoy's slow_start_config, Istio's warmupDurationSecs): an endpoint that
// joins a cluster after its first endpoints gets a weight that ramps from
// minWeightPercent up to its full share over the window,
//   weight = max(minWeightPercent/100, (max(age, 1s) / window) ^ (1 / aggression)),
// so a cold instance is not handed its full share at once. The endpoints a cluster
// starts with are not ramped (Envoy neither): they are all equally new.
//
// While some endpoint ramps, picks are weighted (smooth weighted round robin over the
// current weights, so shares are exact over every few requests rather than on average;
// LEAST_REQUEST divides each weight by active requests + 1, as Envoy's weighted least
// request does); otherwise the cluster's balancer runs unchanged.
import type { SlowStartModel } from '../../proto/decode/model';
import type { Balanced } from './pickers';

export interface Ramped extends Balanced {
  /** since: when this sidecar first saw the endpoint in the cluster */
  stats: { since: number };
}

/** The share of its weight an endpoint `ageMs` into the window gets: 0..1. */
export function slowStartWeight(s: SlowStartModel, ageMs: number): number {
  if (ageMs >= s.windowMs) return 1;
  const timeFactor = Math.min(1, Math.max(ageMs, 1000) / s.windowMs);
  return Math.min(1, Math.max(s.minWeightPercent / 100, Math.pow(timeFactor, 1 / s.aggression)));
}

export function slowStartBalancer<T extends Ramped>(
  s: SlowStartModel,
  policy: 'ROUND_ROBIN' | 'LEAST_REQUEST',
  plain: (eps: T[]) => T | undefined,
  now: () => number,
  /** the cluster's first endpoints arrived then; they are not ramped */
  startedAt: () => number | undefined,
): (eps: T[]) => T | undefined {
  const credit = new Map<T, number>();
  return (eps) => {
    if (eps.length < 2) return eps[0];
    const t = now();
    const start = startedAt();
    const weight = (e: T) => (start === undefined || e.stats.since <= start ? 1 : slowStartWeight(s, t - e.stats.since));
    const weights = eps.map(weight);
    if (weights.every((w) => w === 1)) {
      credit.clear();
      return plain(eps);
    }
    let total = 0;
    let best = -1;
    let bestCredit = -Infinity;
    eps.forEach((e, i) => {
      const w = policy === 'LEAST_REQUEST' ? weights[i] / (e.active() + 1) : weights[i];
      const c = (credit.get(e) ?? 0) + w;
      credit.set(e, c);
      total += w;
      if (c > bestCredit) {
        best = i;
        bestCredit = c;
      }
    });
    credit.set(eps[best], bestCredit - total);
    return eps[best];
  };
}
