// Dispatch: the terminal handler. Sends the attempt to the chosen endpoint over the
// cluster's dispatcher, with the body opened afresh for this attempt, counts it on the
// endpoint, and cancels it when the exchange is aborted. A kept-alive connection the
// upstream closed just as it was reused, or a stream it refused, is tried once more on a
// new one (it never saw the request), never answered with a 503.
import type { Dispatcher, Target, UpstreamResponse } from '../dispatch';
import { RefusedStreamError, ReusedConnectionResetError } from '../errors';
import type { Exchange, Handler } from '../exchange';
import type { ClusterRuntime } from '../../runtime/config';

export interface Dispatchers {
  /**
   * the dispatcher for a cluster's endpoints (mesh HTTP/1.1 or h2, external h1 or h2; for some
   * clusters, as the caller spoke); `shadow`: a mirror's copy, which to a mesh peer always rides
   * the multiplexed h2 session (copies to a slow or hanging version would otherwise each hold
   * an HTTP/1.1 connection, and a TLS handshake, of their own)
   */
  for(cluster: ClusterRuntime, callerProtocol?: string, shadow?: boolean): Dispatcher;
}

function send(dispatcher: Dispatcher, target: Target, x: Exchange, connectTimeoutMs: number): Promise<UpstreamResponse> {
  if (x.signal.aborted) return Promise.reject(x.signal.reason);
  const r = x.request;
  // one object of one shape (a spread here showed in profiles)
  const inflight = dispatcher.dispatch(target, {
    method: r.method,
    path: r.path,
    authority: r.authority,
    headers: r.headers,
    body: x.body ? x.body.open() : null,
    connectTimeoutMs,
  });
  const off = x.signal.on(() => inflight.abort(x.signal.reason));
  return inflight.response.finally(off);
}

export function dispatchTerminal(d: Dispatchers): Handler {
  return async (x) => {
    const cluster = x.cluster!;
    const ep = x.endpoint!;
    const dispatcher = d.for(cluster, x.info.protocol);
    ep.stats.activeRequests++;
    ep.stats.totalRequests++;
    let done = false;
    // an endpoint is busy with a request until its response is over (least-request balancing counts this)
    const finish = () => {
      if (!done) ep.stats.activeRequests--;
      done = true;
    };
    try {
      let r: UpstreamResponse;
      try {
        r = await send(dispatcher, ep.target, x, cluster.model.connectTimeoutMs);
      } catch (err) {
        // never seen by the upstream: a reused connection it closed, or a stream it refused (HTTP/2
        // REFUSED_STREAM, e.g. past a draining peer's GOAWAY: RFC 9113 8.7); once more, on a new one
        if (!(err instanceof ReusedConnectionResetError || err instanceof RefusedStreamError) || (x.body && !x.body.replayable)) throw err;
        r = await send(dispatcher, ep.target, x, cluster.model.connectTimeoutMs);
      }
      // a response body emits 'close' once it is over, ended or cut
      r.body.once('close', finish);
      return r;
    } catch (err) {
      ep.stats.failures++;
      finish();
      throw err;
    }
  };
}

/** The inbound side's terminal: the local application, always, in the protocol `pick` says. */
export function appTerminal(pick: (x: Exchange) => Dispatcher, app: Target, connectTimeoutMs = 5000): Handler {
  return async (x) => {
    const dispatcher = pick(x);
    try {
      return await send(dispatcher, app, x, connectTimeoutMs);
    } catch (err) {
      if (err instanceof ReusedConnectionResetError && (!x.body || x.body.replayable)) return send(dispatcher, app, x, connectTimeoutMs);
      throw err;
    }
  };
}
