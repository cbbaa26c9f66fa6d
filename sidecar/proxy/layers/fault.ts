// Fault: the route's injected delay and abort, each for its fraction of requests (the
// random source is injected so tests can count exactly). An abort answers at once with
// the configured HTTP status or gRPC status (flag FI); a delay marks the request DI.
import { FaultAbortError } from '../errors';
import { sleep, type Exchange, type Handler, type Layer } from '../exchange';
import type { FaultModel } from '../../../proto/decode/model';

export function faultLayer(random: () => number): Layer {
  const inject = async (f: FaultModel, x: Exchange, next: Handler) => {
    if (f.delay && f.delay.ms > 0 && random() < f.delay.fraction) {
      x.facts.flags.push('DI');
      await sleep(x, f.delay.ms);
    }
    if (f.abort && random() < f.abort.fraction) {
      throw new FaultAbortError('fault filter abort', f.abort.httpStatus ?? 200, f.abort.grpcStatus);
    }
    return next(x);
  };
  // no fault on the route (the usual case): no promise of this layer's own
  return (next) => (x) => {
    const f = x.route?.model.fault;
    return f ? inject(f, x, next) : next(x);
  };
}
