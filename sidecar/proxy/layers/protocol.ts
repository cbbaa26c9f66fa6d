// Protocol: the caller's protocol is kept end to end (as Linkerd's orig-proto does). The
// hop between sidecars is HTTP/2 whatever the application spoke, so the outbound side
// notes an HTTP/1.x request in x-tandem-orig-proto, and the inbound side hands the
// request to its application in that protocol: HTTP/1.1 as HTTP/1.1, HTTP/2 and gRPC as
// h2c — unless --app-protocol says the application speaks only one.
import type { Layer } from '../exchange';

export const ORIG_PROTO = 'x-tandem-orig-proto';

export type AppProtocol = 'auto' | 'http1' | 'http2';

/** Outbound: what the application spoke, for the peer's inbound side; never the app's own say. */
export const markProtocolLayer: Layer = (next) => (x) => {
  const h = x.request.headers;
  delete h[ORIG_PROTO];
  if (x.info.protocol !== 'HTTP/2') h[ORIG_PROTO] = x.info.protocol;
  return next(x);
};

/** Inbound: the protocol to speak to the application for this request. */
export function appProtocolOf(mode: AppProtocol, spoken: string, marked: string | undefined): 'http1' | 'http2' {
  if (mode !== 'auto') return mode;
  if (spoken !== 'HTTP/2') return 'http1';
  return marked && /^HTTP\/1\.[01]$/.test(marked) ? 'http1' : 'http2';
}
