// Authorize: the first layer of the inbound chain. The port's transport policy
// (PeerAuthentication, re-checked per request since policy can change under a live
// connection) and the AuthorizationPolicy verdict; a refused request never reaches the
// application.
import type { InboundRuntime } from '../../runtime/config';
import type { ConnectionInfo } from '../downstream';
import type { RequestInfo } from '../request-info';
import { AccessDeniedError, NoHealthyUpstreamError, TransportRefusedError, type ProxyError } from '../errors';
import type { Layer } from '../exchange';

export interface AuthorizeContext {
  /** the application's port: Istio's destination.port and `to.operation.ports` */
  appPort: number;
}

export function authorize(info: RequestInfo, conn: ConnectionInfo, inbound: InboundRuntime | undefined, ctx: AuthorizeContext): ProxyError | undefined {
  if (!inbound) return new NoHealthyUpstreamError('the inbound listener has not been configured yet');
  if (!conn.mtls && !inbound.plaintextAllowed) return new TransportRefusedError('mTLS required: this workload is STRICT');
  if (inbound.authorizer.empty) return undefined;
  const decision = inbound.authorizer.check({
    method: info.method,
    path: info.path,
    authority: info.authority,
    header: info.header,
    sourceIp: info.clientIp,
    remoteIp: info.clientIp,
    destinationIp: info.localIp,
    destinationPort: ctx.appPort,
    peerPrincipal: conn.peerPrincipal,
    sni: conn.sni,
  });
  return decision.allowed ? undefined : new AccessDeniedError('RBAC: access denied');
}

export function authorizeLayer(ctx: AuthorizeContext): Layer {
  return (next) => (x) => {
    const refused = authorize(x.info, x.conn, x.rt.inbound, ctx);
    if (refused) throw refused;
    return next(x);
  };
}
