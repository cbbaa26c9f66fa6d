// Pool: the cluster's circuit breakers. max_requests is a hard cap on requests in flight;
// max_connections caps them the way a pool of one-request connections would, with up to
// max_pending_requests waiting for a slot; anything beyond is refused at once with 503 UO.
// A request holds its slot until its response is over, not just until its headers.
import { OverflowError } from '../errors';
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

export const poolLayer: Layer = (next) => (x) => {
  const l = x.cluster!.model.limits;
  // no circuit breakers on this cluster: nothing to count (the usual case, kept cheap)
  if (l.maxRequests === undefined && l.maxConnections === undefined) return next(x);
  return limited(x, next);
};

async function limited(x: Exchange, next: Handler): Promise<UpstreamResponse> {
  const c = x.cluster!;
  const l = c.model.limits;
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
