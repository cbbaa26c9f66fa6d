// Protocol: the caller's protocol is kept end to end (as Linkerd's orig-proto does). The
// hop between sidecars is HTTP/2 whatever the application spoke, so the inbound side
// must learn what the caller spoke: gRPC says so itself (its content-type), other HTTP/2
// is marked x-tandem-orig-proto: HTTP/2 by the outbound side, and anything unmarked was
// HTTP/1.x (the common case pays no header). The application gets the request in that
// protocol — unless --app-protocol says it speaks only one.
import type { Layer } from '../exchange';
import { isGrpcContentType } from '../headers';

export const ORIG_PROTO = 'x-tandem-orig-proto';

export type AppProtocol = 'auto' | 'http1' | 'http2';

/** Outbound: what the application spoke, for the peer's inbound side; never the app's own say. */
export const markProtocolLayer: Layer = (next) => (x) => {
  const h = x.request.headers;
  if (h[ORIG_PROTO] !== undefined) delete h[ORIG_PROTO];
  if (x.info.protocol === 'HTTP/2' && !isGrpcContentType(x.info.header('content-type'))) h[ORIG_PROTO] = 'HTTP/2';
  return next(x);
};

/** Inbound: the protocol to speak to the application for this request. */
export function appProtocolOf(mode: AppProtocol, spoken: string, marked: string | undefined, contentType: string | undefined): 'http1' | 'http2' {
  if (mode !== 'auto') return mode;
  // from a peer sidecar (HTTP/2 hop): gRPC, or marked HTTP/2; a plaintext HTTP/1.1 caller is what it is
  if (spoken !== 'HTTP/2') return 'http1';
  return isGrpcContentType(contentType) || marked === 'HTTP/2' ? 'http2' : 'http1';
}
