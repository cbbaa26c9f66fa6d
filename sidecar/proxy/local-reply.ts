// Responses the proxy makes itself, and the access-log entry every request gets.
import type { DownstreamRequest, DownstreamResponse } from './downstream';
import { FaultAbortError, type ProxyError } from './errors';
import type { AccessEntry } from './access-log';
import type { RequestInfo } from './request-info';
import { endWithHeaders, first } from './headers';

function grpcStatusOf(e: ProxyError): number {
  if (e instanceof FaultAbortError && e.grpcStatus !== undefined) return e.grpcStatus;
  return grpcStatusForHttp(e.status);
}

/** Envoy's mapping of the HTTP status it answers with to a gRPC status, for gRPC callers. */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

/** The HTTP status sent, or 0 when nothing could be (the client is gone, or headers were out and the response is cut). */
export function sendLocalReply(res: DownstreamResponse, e: ProxyError, requestId?: string, grpc = false): number {
  // the client is gone: there is nobody to answer
  if (res.destroyed || (res as { stream?: { destroyed: boolean } }).stream?.destroyed) return 0;
  if (res.headersSent) {
    (res as { destroy(e?: Error): void }).destroy();
    return 0;
  }
  if (grpc) {
    // a trailers-only gRPC answer: what a gRPC client reads as a status, not an HTTP error
    const h: Record<string, string | number> = { 'content-type': 'application/grpc', 'grpc-status': grpcStatusOf(e), 'grpc-message': encodeURIComponent(e.message), 'x-tandem-response-flags': e.flag };
    if (requestId) h['x-request-id'] = requestId;
    endWithHeaders(res as unknown as Parameters<typeof endWithHeaders>[0], 200, h);
    return 200;
  }
  // a gRPC abort for a caller that is not gRPC: the closest HTTP answer
  const status = e instanceof FaultAbortError && e.grpcStatus !== undefined ? 503 : e.status;
  const body = `${e.message}\n`;
  const headers: Record<string, string | number> = { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-tandem-response-flags': e.flag };
  if (requestId) headers['x-request-id'] = requestId;
  // what is left of the request on the connection can no longer be read as a request
  if ((status === 400 || status === 408) && 'shouldKeepAlive' in res) headers.connection = 'close';
  (res as { writeHead(s: number, h: object): void }).writeHead(status, headers);
  res.end(body);
  return status;
}

export function logEntry(
  direction: 'inbound' | 'outbound',
  req: DownstreamRequest,
  info: RequestInfo | undefined,
  start: number,
  status: number,
  flags: string,
  bytesSent: number,
  upstreamMs: number | null,
  upstreamHost: string | null,
  upstreamCluster: string | null,
  routeName: string | null,
  peerPrincipal: string | null = null,
  traceId?: string,
  /** the body bytes read from the client (a chunked or HTTP/2 body has no Content-Length to say it) */
  bytesReceived?: number,
): AccessEntry {
  const tp = first(req.headers.traceparent);
  return {
    start_time: new Date(start).toISOString(),
    method: req.method ?? '',
    path: info?.path ?? req.url ?? '',
    protocol: info?.protocol ?? `HTTP/${req.httpVersion}`,
    response_code: status,
    response_flags: flags,
    bytes_received: bytesReceived ?? (Number(first(req.headers['content-length']) ?? 0) || 0),
    bytes_sent: bytesSent,
    duration_ms: Date.now() - start,
    upstream_service_time_ms: upstreamMs,
    upstream_host: upstreamHost,
    upstream_cluster: upstreamCluster,
    route_name: routeName,
    request_id: info?.requestId ?? null,
    // this hop's trace (the trace layer's), else what the caller sent, for a request refused before it
    trace_id: traceId ?? (tp ? (tp.split('-')[1] ?? null) : null),
    authority: info?.authority ?? null,
    x_forwarded_for: first(req.headers['x-forwarded-for']) ?? null,
    user_agent: first(req.headers['user-agent']) ?? null,
    peer_principal: peerPrincipal,
    direction,
  };
}
