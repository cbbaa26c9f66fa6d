// Pool: the cluster's circuit breakers. max_requests is a hard cap on requests in flight;
// max_connections caps them the way a pool of one-request connections would, with up to
// max_pending_requests waiting for a slot; anything beyond is refused at once with 503 UO.
// A request holds its slot until its response is over, not just until its headers. A cluster
// whose DestinationRule sets no connection pool gets Envoy's default circuit breakers (1,024
// requests in flight, 1,024 more waiting), so that no upstream takes unbounded work.
import { OverflowError } from '../errors';
import type { PoolLimits } from '../../../proto/decode/model';
import type { Exchange, Handler, Layer } from '../exchange';
import type { UpstreamResponse } from '../dispatch';
import type { ClusterStats } from '../../runtime/config';

function waitForSlot(st: ClusterStats, x: Exchange): Promise<void> {
  return new Promise((resolve, reject) => {
    const wake = () => {
      off();
      resolve();
    };
    st.queue.push(wake);
    const off = x.signal.on(() => {
      const i = st.queue.indexOf(wake);
      if (i >= 0) st.queue.splice(i, 1);
      reject(x.signal.reason);
    });
  });
}

/** Envoy's cluster circuit-breaker defaults (max_connections, max_pending_requests) */
export const DEFAULT_UPSTREAM_REQUESTS = 1024;

/** The pool layer, with `defaults` requests in flight (and as many waiting) where a cluster sets no limit of its own. */
export function poolLayer(defaults = DEFAULT_UPSTREAM_REQUESTS): Layer {
  // per cluster model, so that a request allocates nothing to learn its limits
  const effective = new WeakMap<PoolLimits, PoolLimits>();
  const limitsOf = (m: PoolLimits): PoolLimits => {
    if (m.maxRequests !== undefined || m.maxConnections !== undefined) return m;
    let l = effective.get(m);
    if (!l) effective.set(m, (l = { maxConnections: defaults, maxPendingRequests: m.maxPendingRequests ?? defaults }));
    return l;
  };
  return (next) => (x) => limited(x, next, limitsOf(x.cluster!.model.limits));
}

async function limited(x: Exchange, next: Handler, l: PoolLimits): Promise<UpstreamResponse> {
  const c = x.cluster!;
  const st = c.stats;
  const overflow = (why: string) => {
    st.overflows++;
    return new OverflowError(`upstream overflow: ${why} for ${c.model.name}`);
  };
  if (l.maxRequests !== undefined && st.active >= l.maxRequests) throw overflow(`${l.maxRequests} requests in flight`);
  if (l.maxConnections !== undefined && st.active >= l.maxConnections) {
    if (st.pending >= (l.maxPendingRequests ?? Infinity)) throw overflow(`${l.maxConnections} connections busy and ${st.pending} requests pending`);
    st.pending++;
    try {
      await waitForSlot(st, x);
    } finally {
      st.pending--;
    }
  }
  st.active++;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    st.active--;
    // the next in line takes the slot this request leaves
    if (st.queue.length && (l.maxConnections === undefined || st.active < l.maxConnections)) st.queue.shift()!();
  };
  try {
    const r = await next(x);
    // a response body emits 'close' once it is over, ended or cut
    r.body.once('close', release);
    return r;
  } catch (err) {
    release();
    throw err;
  }
}
