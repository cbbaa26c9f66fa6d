// Client cert: the application learns who called. Any x-forwarded-client-cert a caller
// sent is dropped; the verified peer's SPIFFE ID is set when the listener says so
// (Envoy's SANITIZE_SET with the URI).
import type { Layer } from '../exchange';

const XFCC = 'x-forwarded-client-cert';

export function clientCertLayer(ownIdentity: () => string | undefined): Layer {
  return (next) => (x) => {
    const h = x.request.headers;
    delete h[XFCC];
    h['x-request-id'] = x.info.requestId;
    const own = ownIdentity();
    if (x.rt.inbound?.setClientCert && x.conn.peerPrincipal && own) h[XFCC] = `By=${own};URI=${x.conn.peerPrincipal}`;
    return next(x);
  };
}
