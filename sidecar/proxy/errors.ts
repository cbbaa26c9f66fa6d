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
