// The first layer of the inbound path: the port's transport policy (PeerAuthentication,
// re-checked per request since policy can change under a live connection) and the
// AuthorizationPolicy verdict. A request this layer refuses never reaches the app.
import type { InboundRuntime } from '../runtime/config';
import type { ConnectionInfo, DownstreamRequest } from './downstream';
import type { RequestInfo } from './request-info';
import { AccessDeniedError, NoHealthyUpstreamError, type ProxyError } from './errors';

export interface AuthorizeContext {
  /** the application's port: Istio's destination.port and `to.operation.ports` */
  appPort: number;
}

export function authorize(req: DownstreamRequest, info: RequestInfo, conn: ConnectionInfo, inbound: InboundRuntime | undefined, ctx: AuthorizeContext): ProxyError | undefined {
  if (!inbound) return new NoHealthyUpstreamError('the inbound listener has not been configured yet');
  if (!conn.mtls && !inbound.plaintextAllowed) return new AccessDeniedError('mTLS required: this workload is STRICT');
  if (inbound.authorizer.empty) return undefined;
  const decision = inbound.authorizer.check({
    method: info.method,
    path: info.path,
    authority: info.authority,
    header: info.header,
    sourceIp: info.clientIp,
    remoteIp: info.clientIp,
    destinationIp: (req.socket?.localAddress ?? '').replace(/^::ffff:/, ''),
    destinationPort: ctx.appPort,
    peerPrincipal: conn.peerPrincipal,
    sni: conn.sni,
  });
  return decision.allowed ? undefined : new AccessDeniedError('RBAC: access denied');
}
