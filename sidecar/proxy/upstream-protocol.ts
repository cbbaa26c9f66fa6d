// Which HTTP version an upstream request goes out in: mesh peers always HTTP/2; other
// endpoints as a DestinationRule's h2UpgradePolicy (http2) or useClientProtocol
// (downstream) says, else as the port's protocol names it. The dispatcher choice and
// the spans' network.protocol.version both read it, so they cannot disagree.
import type { ClusterRuntime } from '../runtime/config';

export function upstreamHttpVersion(c: ClusterRuntime, callerProtocol?: string): '1.1' | '2' {
  if (c.model.mesh) return '2';
  const up = c.model.upstreamProtocol;
  if (up === 'http2') return '2';
  if (up === 'http1') return '1.1';
  if (up === 'downstream') return callerProtocol === 'HTTP/2' ? '2' : '1.1';
  const p = c.model.protocol;
  return p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB' ? '2' : '1.1';
}
