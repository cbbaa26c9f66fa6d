// Trace: every hop through the proxy is a span of the caller's trace (a new one when the
// caller sent none, or sent one that is malformed). The upstream request carries the same
// trace id with this hop's span id, the caller's sampling decision, tracestate as it came,
// and B3 in the form the caller used; the access log learns the trace id.
import type { Layer } from '../exchange';
import { propagate, type Sampler, type TraceIds } from '../trace-context';

export interface TraceDeps {
  ids: TraceIds;
  sample: Sampler;
}

export function traceLayer(d: TraceDeps): Layer {
  return (next) => (x) => {
    x.facts.trace = propagate(x.request.headers, d.ids, d.sample).hop;
    return next(x);
  };
}
