// What a dispatcher is: it sends one request to one endpoint (a target: address, TLS, the
// cluster's connection settings) and hands back the response as it comes. dispatch-h2.ts
// keeps multiplexed HTTP/2 sessions per peer (the sidecar-to-sidecar hop); dispatch-h1.ts
// keeps keep-alive pools (applications and HTTP/1.1 endpoints outside the mesh).
import type * as http from 'node:http';
import type * as tls from 'node:tls';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';

/** How to reach a TLS endpoint; `key` names what sessions may be shared under (address and expected identity). */
export interface TlsTarget {
  key: string;
  options(): tls.ConnectionOptions;
}

/**
 * How connections to a target are kept (a cluster's DestinationRule connection pool);
 * `key` names the settings, so targets that differ in them never share a connection.
 */
export interface ConnectionOptions {
  key: string;
  /** no request for this long closes the connection; 0: never */
  idleTimeoutMs?: number;
  maxRequestsPerConnection?: number;
  maxConnectionDurationMs?: number;
  /** SO_KEEPALIVE after timeMs idle (absent: the OS's delay) */
  tcpKeepalive?: { timeMs?: number };
  /** HTTP/2: streams per connection before another one is opened */
  maxConcurrentStreams?: number;
  /** HTTP/2: a PING every intervalMs; no answer within timeoutMs closes the connection */
  h2Keepalive?: { intervalMs: number; timeoutMs: number };
}

export interface Target {
  host: string;
  port: number;
  /** absent: plaintext */
  tls?: TlsTarget;
  /** absent: the defaults (one h2 session per peer, never closed for idleness; H1 kept alive 60 s) */
  conn?: ConnectionOptions;
  /**
   * The same endpoint as HTTP/1.1 keep-alive pools reach it, where that differs: a mesh peer
   * over mTLS offers ALPN `http/1.1` instead of `h2` (upstream-protocol.ts says when).
   */
  h1?: Target;
}

/** SO_KEEPALIVE as a cluster asks (Node sets the idle time; interval and probes are libuv's). */
export function keepalive(socket: Socket, conn: ConnectionOptions | undefined): void {
  if (conn?.tcpKeepalive) socket.setKeepAlive(true, conn.tcpKeepalive.timeMs ?? 0);
}

export interface UpstreamRequest {
  method: string;
  path: string;
  authority: string;
  headers: http.OutgoingHttpHeaders;
  /** null: no body */
  body: Readable | null;
  connectTimeoutMs: number;
}

export interface UpstreamResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** the answer was headers alone (HTTP/2 END_STREAM on HEADERS: a gRPC trailers-only answer) */
  endStream?: boolean;
  body: Readable;
  trailers: Promise<http.IncomingHttpHeaders | undefined>;
  /** made by the proxy itself (a redirect, a direct response, a CORS preflight): no upstream was asked */
  local?: boolean;
}

export interface InFlight {
  response: Promise<UpstreamResponse>;
  abort(reason?: Error): void;
}

export interface Dispatcher {
  dispatch(t: Target, req: UpstreamRequest): InFlight;
  close(): void;
}
