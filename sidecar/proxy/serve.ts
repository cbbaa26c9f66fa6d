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

export interface ServeOptions {
  direction: 'inbound' | 'outbound';
  chain: Handler;
  runtime: () => RuntimeConfig;
  log: AccessLog;
  /** the upstream_host / upstream_cluster the log shows when the chain does not say (inbound: the app) */
  defaults?: { host: string; cluster: string };
}

export function serve(o: ServeOptions) {
  return (req: DownstreamRequest, res: DownstreamResponse): void => {
    const started = Date.now();
    let info: RequestInfo | undefined;
    const conn = connectionOf(req);
    const facts: ExchangeFacts = { route: null, cluster: o.defaults?.cluster ?? null, host: o.defaults?.host ?? null, flags: [], attempts: 0 };
    const cleanup: (() => void)[] = [];
    const log = (status: number, flag: string | null, bytes: number, upMs: number | null) => {
      for (const c of cleanup.splice(0)) c();
      if (!o.log) return;
      const flags = [flag, ...facts.flags].filter((f): f is string => !!f && f !== '-');
      o.log(logEntry(o.direction, req, info, started, status, flags.join(',') || '-', bytes, upMs, facts.host, facts.cluster, facts.route, conn.peerPrincipal ?? null, facts.trace?.traceId));
    };
    const fail = (err: unknown) => {
      const e = err instanceof ProxyError ? err : new UpstreamResetError(String(err), { cause: err });
      if (e instanceof DownstreamGoneError) return log(0, e.flag, 0, null);
      if (e instanceof TransportRefusedError) {
        // the whole connection is no longer acceptable: close it, every stream on it included
        const session = (req as { stream?: { session?: { destroy(): void } } }).stream?.session;
        if (session) session.destroy();
        else req.socket?.destroy();
        return log(0, e.flag, 0, null);
      }
      let sent = 0;
      try {
        sent = sendLocalReply(res, e, info?.requestId, !!info && isGrpcContentType(info.header('content-type')));
      } catch {
        // the downstream went away as we answered: the log says so
      }
      log(sent, e.flag, 0, null);
    };
    try {
      info = requestInfo(req);
      const ctl = new Cancel();
      const x: Exchange = {
        info,
        conn,
        started,
        rt: o.runtime(),
        request: { method: info.method, path: info.path, authority: info.authority, headers: endToEnd(req.headers) },
        body: info.hasBody ? new RequestBody(req) : null,
        signal: ctl,
        abort: (reason) => ctl.abort(reason),
        attempt: 1,
        responseOps: [],
        facts,
        cleanup,
      };
      // closed before we ended it: the client went away (an HTTP/2 reset reports writableFinished, not writableEnded)
      res.once('close', () => {
        if (!res.writableEnded) ctl.abort(new DownstreamGoneError('the client went away'));
      });
      // a layer that throws before its first await lands in the catch below, like a rejection
      o.chain(x)
        .then((up) => respond(res, up, x))
        .then((r) => log(r.status, null, r.bytesSent, r.upstreamMs), fail);
    } catch (err) {
      fail(err);
    }
  };
}
