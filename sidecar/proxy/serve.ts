// Where a downstream request enters a chain: its facts are read once, an Exchange is
// made, the chain's answer is sent back (or the proxy's own, for a ProxyError), and the
// access log gets one line, whatever happened.
import type { DownstreamRequest, DownstreamResponse } from './downstream';
import { connectionOf } from './downstream';
import type { AccessLog } from './access-log';
import type { RuntimeConfig } from '../runtime/config';
import { requestInfo, type RequestInfo } from './request-info';
import { endToEnd, isGrpcContentType } from './headers';
import { RequestBody } from './body';
import { DownstreamGoneError, ProxyError, TransportRefusedError, UpstreamResetError } from './errors';
import { logEntry, sendLocalReply } from './local-reply';
import { respond } from './respond';
import { Cancel } from './cancel';
import type { Exchange, ExchangeFacts, Handler } from './exchange';
import type { Observer } from './observe-metrics';
import { defaultLimits, type ListenerLimits } from './limits';
import { StreamWatch } from './stream-watch';

export interface ServeOptions {
  direction: 'inbound' | 'outbound';
  chain: Handler;
  runtime: () => RuntimeConfig;
  log: AccessLog;
  /** the upstream_host / upstream_cluster the log shows when the chain does not say (inbound: the app) */
  defaults?: { host: string; cluster: string };
  /** told of every request once it is over (metrics) */
  observe?: Observer;
  /** the listener's limits (defaultLimits() unless told): header count, stream timeouts */
  limits?: ListenerLimits;
}

export function serve(o: ServeOptions) {
  const limits = o.limits ?? defaultLimits();
  const watch = new StreamWatch(limits);
  return (req: DownstreamRequest, res: DownstreamResponse): void => {
    const started = Date.now();
    let info: RequestInfo | undefined;
    const conn = connectionOf(req);
    const facts: ExchangeFacts = { route: null, cluster: o.defaults?.cluster ?? null, host: o.defaults?.host ?? null, flags: [], attempts: 0 };
    const cleanup: (() => void)[] = [];
    let x: Exchange | undefined;
    const log = (status: number, flag: string | null, bytes: number, upMs: number | null, error?: ProxyError, grpcStatus?: string) => {
      for (const c of cleanup.splice(0)) c();
      if (!o.log && !o.observe) return;
      const flags = [flag, ...facts.flags].filter((f): f is string => !!f && f !== '-').join(',') || '-';
      if (o.observe) {
        try {
          o.observe({ direction: o.direction, req, info, conn, x, status, flags, bytesSent: bytes, durationMs: Date.now() - started, grpcStatus, error });
        } catch {
          // a metrics bug never costs a request its answer or its log line
        }
      }
      if (o.log) o.log(logEntry(o.direction, req, info, started, status, flags, bytes, upMs, facts.host, facts.cluster, facts.route, conn.peerPrincipal ?? null, facts.trace?.traceId, x?.body?.received));
    };
    const fail = (err: unknown) => {
      const e = err instanceof ProxyError ? err : new UpstreamResetError(String(err), { cause: err });
      if (e instanceof DownstreamGoneError) return log(0, e.flag, 0, null, e);
      if (e instanceof TransportRefusedError) {
        // the whole connection is no longer acceptable: close it, every stream on it included
        const session = (req as { stream?: { session?: { destroy(): void } } }).stream?.session;
        if (session) session.destroy();
        else req.socket?.destroy();
        return log(0, e.flag, 0, null, e);
      }
      let sent = 0;
      try {
        sent = sendLocalReply(res, e, info?.requestId, !!info && isGrpcContentType(info.header('content-type')));
      } catch {
        // the downstream went away as we answered: the log says so
      }
      log(sent, e.flag, 0, null, e);
    };
    try {
      info = requestInfo(req, limits.maxHeadersCount);
      const ctl = new Cancel();
      const watched = watch.add((e) => ctl.abort(e), !info.hasBody);
      cleanup.push(watched.done);
      x = {
        info,
        conn,
        started,
        rt: o.runtime(),
        request: { method: info.method, path: info.path, authority: info.authority, headers: endToEnd(req.headers) },
        body: info.hasBody ? new RequestBody(req, undefined, watched) : null,
        signal: ctl,
        abort: (reason) => ctl.abort(reason),
        attempt: 1,
        responseOps: [],
        facts,
        cleanup,
        touch: watched.touch,
      };
      // closed before we ended it: the client went away (an HTTP/2 reset reports writableFinished, not writableEnded)
      res.once('close', () => {
        if (!res.writableEnded) ctl.abort(new DownstreamGoneError('the client went away'));
      });
      // a layer that throws before its first await lands in the catch below, like a rejection
      const ex = x;
      o.chain(ex)
        .then((up) => respond(res, up, ex))
        .then((r) => log(r.status, null, r.bytesSent, r.upstreamMs, undefined, r.grpcStatus), fail);
    } catch (err) {
      fail(err);
    }
  };
}
