// Outlier: each attempt's outcome counts toward its endpoint's consecutive errors; past
// the cluster's threshold the endpoint is ejected (see runtime/outlier.ts), and the
// balancer passes it over until its ejection ends.
import { ConnectFailureError, OverflowError, PerTryTimeoutError, UpstreamTimeoutError } from '../errors';
import type { Exchange, Handler, Layer } from '../exchange';
import type { OutlierModel } from '../../../proto/decode/model';
import { recordOutcome } from '../../runtime/outlier';

export function outlierLayer(now: () => number): Layer {
  const observed = async (o: OutlierModel, x: Exchange, next: Handler) => {
    const ep = x.endpoint!;
    const all = x.cluster!.endpoints;
    try {
      const r = await next(x);
      if (recordOutcome(o, ep, all, { status: r.status }, now())) x.cluster!.stats.ejections++;
      return r;
    } catch (err) {
      // the client going away or the route timing out says nothing about the endpoint, nor
      // does a circuit breaker's overflow (the request never left this proxy)
      if ((!x.signal.aborted || err instanceof PerTryTimeoutError) && !(err instanceof OverflowError)) {
        const local = err instanceof ConnectFailureError ? 'connect' : err instanceof UpstreamTimeoutError || err instanceof PerTryTimeoutError ? 'timeout' : 'reset';
        if (recordOutcome(o, ep, all, { localFailure: local }, now())) x.cluster!.stats.ejections++;
      }
      throw err;
    }
  };
  // no outlier detection on the cluster (the usual case): no promise of this layer's own
  return (next) => (x) => {
    const o = x.cluster?.model.outlier;
    return o ? observed(o, x, next) : next(x);
  };
}
