// The inbound path: requests from peer sidecars (and, until mTLS, anyone on the
// inbound port) are handed to the local application.
import type { Dispatcher, Target } from './dispatch';
import type { DownstreamRequest, DownstreamResponse } from './downstream';
import type { AccessLog } from './access-log';
import { requestInfo, type RequestInfo } from './request-info';
import { endToEnd } from './headers';
import { forward } from './forward';
import { ProxyError, UpstreamResetError } from './errors';
import { logEntry, sendLocalReply } from './local-reply';

export interface InboundDeps {
  app: Target;
  dispatcher: Dispatcher;
  log: AccessLog;
  connectTimeoutMs?: number;
}

export function inboundHandler(d: InboundDeps) {
  const appHost = `${d.app.host}:${d.app.port}`;
  return (req: DownstreamRequest, res: DownstreamResponse): void => {
    const start = Date.now();
    let info: RequestInfo | undefined;
    const done = (status: number, flags: string, bytes: number, upMs: number | null) =>
      d.log?.(logEntry('inbound', req, info, start, status, flags, bytes, upMs, appHost, 'inbound|app', null));
    try {
      info = requestInfo(req);
      const headers = endToEnd(req.headers);
      headers['x-request-id'] = info.requestId;
      forward(req, res, {
        dispatcher: d.dispatcher,
        target: d.app,
        request: { method: info.method, path: info.path, authority: info.authority, headers, body: info.hasBody ? req : null, connectTimeoutMs: d.connectTimeoutMs ?? 5000 },
        timeoutMs: 0,
        responseOps: [],
      })
        .then((r) => done(r.status, '-', r.bytesSent, r.upstreamMs))
        .catch((err) => {
          const e = err instanceof ProxyError ? err : new UpstreamResetError(String(err));
          done(sendLocalReply(res, e, info?.requestId) ? e.status : 0, e.flag, 0, null);
        });
    } catch (err) {
      const e = err instanceof ProxyError ? err : new UpstreamResetError(String(err));
      sendLocalReply(res, e, info?.requestId);
      done(e.status, e.flag, 0, null);
    }
  };
}
