// Which HTTP version an upstream request goes out in. Between sidecars, an HTTP/1.1 caller's
// request to an HTTP port crosses as HTTP/1.1 over mTLS, on keep-alive pools (Istio's
// default, DO_NOT_UPGRADE: the benchmark measured it cheaper than the h2 session, see the
// README), where the control plane allows it (`http/1.1` in the cluster's ALPN); HTTP/2 and
// gRPC ports, `h2UpgradePolicy: UPGRADE` and HTTP/2 callers go over one multiplexed h2
// session per peer. Other endpoints as a DestinationRule's h2UpgradePolicy (http2) or
// useClientProtocol (downstream) says, else as the port's protocol names it. The dispatcher
// choice and the spans' network.protocol.version both read it, so they cannot disagree.
import type { ClusterRuntime } from '../runtime/config';
import { meshAllowsH1 } from '../runtime/tls-targets';

export function upstreamHttpVersion(c: ClusterRuntime, callerProtocol?: string): '1.1' | '2' {
  const m = c.model;
  const p = m.protocol;
  const h2Port = p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB';
  if (m.mesh) {
    const h1Allowed = m.tls ? meshAllowsH1(m.tls) : true;
    if (!h1Allowed || h2Port || m.upstreamProtocol === 'http2') return '2';
    if (m.upstreamProtocol === 'http1') return '1.1';
    return callerProtocol === 'HTTP/2' ? '2' : '1.1';
  }
  const up = m.upstreamProtocol;
  if (up === 'http2') return '2';
  if (up === 'http1') return '1.1';
  if (up === 'downstream') return callerProtocol === 'HTTP/2' ? '2' : '1.1';
  return h2Port ? '2' : '1.1';
}
