// The inbound path: requests from peer sidecars are authorized (the first layer) and
// handed to the local application, which learns who called from XFCC.
import type { Dispatcher, Target } from './dispatch';
import type { DownstreamRequest, DownstreamResponse } from './downstream';
import { connectionOf } from './downstream';
import type { AccessLog } from './access-log';
import type { InboundRuntime } from '../runtime/config';
import { requestInfo, type RequestInfo } from './request-info';
import { endToEnd } from './headers';
import { forward } from './forward';
import { ProxyError, UpstreamResetError } from './errors';
import { logEntry, sendLocalReply } from './local-reply';
import { authorize } from './authorize';

const XFCC = 'x-forwarded-client-cert';

export interface InboundDeps {
  app: Target;
  dispatcher: Dispatcher;
  log: AccessLog;
  /** the inbound policy in force (from the runtime config) */
  inbound: () => InboundRuntime | undefined;
  /** this workload's SPIFFE ID, for XFCC's By= */
  ownIdentity: () => string | undefined;
  connectTimeoutMs?: number;
}

export function inboundHandler(d: InboundDeps) {
  const appHost = `${d.app.host}:${d.app.port}`;
  return (req: DownstreamRequest, res: DownstreamResponse): void => {
    const start = Date.now();
    let info: RequestInfo | undefined;
    const conn = connectionOf(req);
    const peer = conn.peerPrincipal ?? null;
    const done = (status: number, flags: string, bytes: number, upMs: number | null) =>
      d.log?.(logEntry('inbound', req, info, start, status, flags, bytes, upMs, appHost, 'inbound|app', null, peer));
    try {
      info = requestInfo(req);
      const inbound = d.inbound();
      const refused = authorize(req, info, conn, inbound, { appPort: d.app.port });
      if (refused) throw refused;
      const headers = endToEnd(req.headers);
      headers['x-request-id'] = info.requestId;
      // a caller's own XFCC is never believed
      delete headers[XFCC];
      const own = d.ownIdentity();
      if (inbound?.setClientCert && conn.peerPrincipal && own) headers[XFCC] = `By=${own};URI=${conn.peerPrincipal}`;
      forward(req, res, {
        dispatcher: d.dispatcher,
        target: d.app,
        request: { method: info.method, path: info.path, authority: info.authority, headers, body: info.hasBody ? req : null, connectTimeoutMs: d.connectTimeoutMs ?? 5000 },
        timeoutMs: 0,
        responseOps: [],
      })
        .then((r) => done(r.status, '-', r.bytesSent, r.upstreamMs))
        .catch((err) => {
          const e = err instanceof ProxyError ? err : new UpstreamResetError(String(err), { cause: err });
          done(sendLocalReply(res, e, info?.requestId) ? e.status : 0, e.flag, 0, null);
        });
    } catch (err) {
      const e = err instanceof ProxyError ? err : new UpstreamResetError(String(err), { cause: err });
      sendLocalReply(res, e, info?.requestId);
      done(e.status, e.flag, 0, null);
    }
  };
}
