// Fault: the route's injected delay and abort, each for its fraction of requests (the
// random source is injected so tests can count exactly). An abort answers at once with
// the configured HTTP status or gRPC status (flag FI); a delay marks the request DI.
import { FaultAbortError } from '../errors';
import { sleep, type Layer } from '../exchange';

export function faultLayer(random: () => number): Layer {
  return (next) => async (x) => {
    const f = x.route?.model.fault;
    if (!f) return next(x);
    if (f.delay && f.delay.ms > 0 && random() < f.delay.fraction) {
      x.facts.flags.push('DI');
      await sleep(x, f.delay.ms);
    }
    if (f.abort && random() < f.abort.fraction) {
      throw new FaultAbortError('fault filter abort', f.abort.httpStatus ?? 200, f.abort.grpcStatus);
    }
    return next(x);
  };
}
