// Errors the proxy answers itself. Each class has a fixed code (a metric label) and
// the Envoy response flag the access log shows.
export abstract class ProxyError extends Error {
  abstract readonly code: string;
  abstract readonly flag: string;
  abstract readonly status: number;
}

export class NoRouteError extends ProxyError {
  readonly code = 'NO_ROUTE';
  readonly flag = 'NR';
  readonly status = 404;
}
export class NoHealthyUpstreamError extends ProxyError {
  readonly code = 'NO_HEALTHY_UPSTREAM';
  readonly flag = 'UH';
  readonly status = 503;
}
export class ConnectFailureError extends ProxyError {
  readonly code = 'CONNECT_FAILURE';
  readonly flag = 'UF';
  readonly status = 503;
}
export class UpstreamResetError extends ProxyError {
  readonly code = 'UPSTREAM_RESET';
  readonly flag = 'UR';
  readonly status = 503;
}
export class UpstreamTimeoutError extends ProxyError {
  readonly code = 'UPSTREAM_TIMEOUT';
  readonly flag = 'UT';
  readonly status = 504;
}
export class BadRequestError extends ProxyError {
  readonly code = 'BAD_REQUEST';
  readonly flag = 'DPE';
  readonly status = 400;
}
/** More request headers than a listener takes (Envoy's max_headers_count): 431, as Envoy. */
export class TooManyHeadersError extends ProxyError {
  readonly code = 'TOO_MANY_HEADERS';
  readonly flag = 'DPE';
  readonly status = 431;
}
/** The cluster's connection pool (circuit breakers) is full: 503 UO, as Envoy. */
export class OverflowError extends ProxyError {
  readonly code = 'UPSTREAM_OVERFLOW';
  readonly flag = 'UO';
  readonly status = 503;
}
/** The route's fault abort: the configured HTTP status, or a gRPC status (in a 200). */
export class FaultAbortError extends ProxyError {
  readonly code = 'FAULT_ABORT';
  readonly flag = 'FI';
  constructor(
    message: string,
    readonly status: number,
    readonly grpcStatus?: number,
  ) {
    super(message);
  }
}
/** The peer refused the stream (HTTP/2 REFUSED_STREAM): it never saw the request. */
export class RefusedStreamError extends ProxyError {
  readonly code = 'REFUSED_STREAM';
  readonly flag = 'UR';
  readonly status = 503;
}
/** A kept-alive connection the upstream closed just as it was reused: the request never reached it. */
export class ReusedConnectionResetError extends ProxyError {
  readonly code = 'REUSED_CONNECTION_RESET';
  readonly flag = 'UR';
  readonly status = 503;
}
/** One attempt ran past the route's perTryTimeout. */
export class PerTryTimeoutError extends ProxyError {
  readonly code = 'PER_TRY_TIMEOUT';
  readonly flag = 'UT';
  readonly status = 504;
}
/** The client went away: nothing is answered, the upstream request is cancelled. */
export class DownstreamGoneError extends ProxyError {
  readonly code = 'DOWNSTREAM_GONE';
  readonly flag = 'DC';
  readonly status = 499;
}
/**
 * A connection the port no longer accepts (plaintext that became STRICT): it is closed,
 * as Envoy drains a filter chain that went away, never answered as if policy denied it.
 */
export class TransportRefusedError extends ProxyError {
  readonly code = 'MTLS_REQUIRED';
  readonly flag = 'UPE';
  readonly status = 503;
}
/** Envoy's stream_idle_timeout: no byte moved on the request either way (a reset once the response started). */
export class StreamIdleTimeoutError extends ProxyError {
  readonly code = 'STREAM_IDLE_TIMEOUT';
  readonly flag = 'SI';
  readonly status = 408;
}
/** Envoy's request_timeout: the whole request (its body) did not arrive in time. */
export class RequestTimeoutError extends ProxyError {
  readonly code = 'REQUEST_TIMEOUT';
  readonly flag = 'DT';
  readonly status = 408;
}
/** Envoy's RBAC filter answers 403 "RBAC: access denied". */
export class AccessDeniedError extends ProxyError {
  readonly code = 'RBAC_DENIED';
  readonly flag = 'RBAC';
  readonly status = 403;
}

/** Classify a socket-level error from an upstream attempt. */
export function classifyUpstreamError(err: unknown, connected: boolean): ProxyError {
  if (err instanceof ProxyError) return err;
  const code = (err as NodeJS.ErrnoException)?.code ?? '';
  const msg = (err as Error)?.message ?? String(err);
  if (!connected || ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) {
    return new ConnectFailureError(`upstream connect error: ${msg}`, { cause: err });
  }
  return new UpstreamResetError(`upstream reset: ${msg}`, { cause: err });
}
