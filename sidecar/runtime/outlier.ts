// Outlier detection: an endpoint that answers with N consecutive 5xx (or gateway errors:
// 502, 503, 504, connect failures, resets; or, with splitLocalOrigin, N connect failures,
// resets and timeouts counted on their own) is ejected for base ejection time × times
// ejected, as long as no more than maxEjectionPercent of the cluster is out (at least one
// may always be). Counters live on the endpoint's stats, so they outlive config swaps.
import type { OutlierModel } from '../../proto/decode/model';
import type { Endpoint, EndpointStats } from './config';

export interface OutlierState {
  consecutive5xx: number;
  consecutiveGateway: number;
  /** connect failures, resets and timeouts in a row, when counted apart (splitLocalOrigin) */
  consecutiveLocal: number;
  ejectedUntil: number;
  timesEjected: number;
}

export const freshOutlierState = (): OutlierState => ({ consecutive5xx: 0, consecutiveGateway: 0, consecutiveLocal: 0, ejectedUntil: 0, timesEjected: 0 });

export const isEjected = (s: EndpointStats, now: number): boolean => s.outlier.ejectedUntil > now;

export type Outcome = { status: number } | { localFailure: 'connect' | 'reset' | 'timeout' };

export function recordOutcome(o: OutlierModel, ep: Endpoint, all: Endpoint[], outcome: Outcome, now: number): boolean {
  const s = ep.stats.outlier;
  // an endpoint whose ejection ran out comes back with a clean slate
  if (s.ejectedUntil && s.ejectedUntil <= now) {
    s.ejectedUntil = 0;
    s.consecutive5xx = 0;
    s.consecutiveGateway = 0;
    s.consecutiveLocal = 0;
  }
  const local = 'localFailure' in outcome;
  let trip: boolean;
  if (o.splitLocalOrigin && local) {
    // split: a failure of our own making counts only toward its own threshold
    s.consecutiveLocal++;
    trip = !!o.consecutiveLocalOriginFailure && s.consecutiveLocal >= o.consecutiveLocalOriginFailure;
  } else {
    // an answer means the connection worked
    if (o.splitLocalOrigin) s.consecutiveLocal = 0;
    const status = 'status' in outcome ? outcome.status : 503;
    const gateway = local || status === 502 || status === 503 || status === 504;
    if (status < 500 && !local) {
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      return false;
    }
    s.consecutive5xx++;
    s.consecutiveGateway = gateway ? s.consecutiveGateway + 1 : 0;
    trip = (o.consecutive5xx > 0 && s.consecutive5xx >= o.consecutive5xx) || (o.consecutiveGatewayFailure > 0 && s.consecutiveGateway >= o.consecutiveGatewayFailure);
  }
  if (!trip || isEjected(ep.stats, now)) return false;
  const ejected = all.filter((e) => isEjected(e.stats, now)).length;
  if (ejected > 0 && ((ejected + 1) * 100) / all.length > o.maxEjectionPercent) return false;
  s.timesEjected++;
  s.ejectedUntil = now + o.baseEjectionMs * s.timesEjected;
  s.consecutive5xx = 0;
  s.consecutiveGateway = 0;
  s.consecutiveLocal = 0;
  return true;
}
