// OpenTelemetry spans of a hop, as the request path sees them: made whole once the hop's
// outcome is known (explicit start and end times), with the ids trace-context.ts put on
// the wire, and handed to a sink (span-sink.ts: the SDK). The request path does no SDK
// work while a request is in flight, and none at all when spans are off.
import type { Attributes } from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from './semconv';
import type { ExchangeFacts } from './exchange';
import type { TraceIds } from './trace-context';

/** A span as the proxy knows it once it is over. */
export interface FinishedSpan {
  kind: 'server' | 'client';
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  /** epoch milliseconds, fractions allowed */
  startMs: number;
  endMs: number;
  attributes: Attributes;
  /** set when the span failed: its status message */
  error?: string;
}

export interface SpanSink {
  record(s: FinishedSpan): void;
  /** exports what is queued and stops */
  shutdown(): Promise<void>;
}

/** What the span layer and the span observer share: the sink, ids for retries, the clock, who we are. */
export interface Spans {
  sink: SpanSink;
  ids: TraceIds;
  /** epoch milliseconds with sub-millisecond precision */
  now: () => number;
  /** this workload's SPIFFE ID */
  principal: () => string | undefined;
  /** exchanges that recorded at least one attempt span (the rest get one span for the proxy's own answer) */
  readonly attempted: WeakSet<ExchangeFacts>;
}

export function hrNow(): number {
  return performance.timeOrigin + performance.now();
}

// Tandem's own attributes, beside the HTTP semantic conventions
export const ATTR_PEER_PRINCIPAL = 'tandem.peer.principal';
export const ATTR_LOCAL_PRINCIPAL = 'tandem.local.principal';
export const ATTR_UPSTREAM_CLUSTER = 'tandem.upstream.cluster';
export const ATTR_RESPONSE_FLAGS = 'tandem.response_flags';
export const ATTR_ROUTE_NAME = 'tandem.route.name';
export const ATTR_REQUEST_ID = 'tandem.request_id';

const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

/** http.request.method as the conventions bound it: a method they do not know is _OTHER, with the original beside. */
export function methodAttributes(method: string): Attributes {
  return KNOWN_METHODS.has(method) ? { [ATTR_HTTP_REQUEST_METHOD]: method } : { [ATTR_HTTP_REQUEST_METHOD]: '_OTHER', [ATTR_HTTP_REQUEST_METHOD_ORIGINAL]: method };
}

/** url.path and url.query of a request target. */
export function urlAttributes(target: string): Attributes {
  const q = target.indexOf('?');
  return q < 0 ? { [ATTR_URL_PATH]: target } : { [ATTR_URL_PATH]: target.slice(0, q), [ATTR_URL_QUERY]: target.slice(q + 1) };
}

/** server.address and server.port of an authority (`host`, `host:port`, `[v6]:port`). */
export function authorityAttributes(authority: string): Attributes {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(authority);
  if (!m) return { [ATTR_SERVER_ADDRESS]: authority };
  const host = m[1]!.replace(/^\[|\]$/g, '');
  return m[2] ? { [ATTR_SERVER_ADDRESS]: host, [ATTR_SERVER_PORT]: Number(m[2]) } : { [ATTR_SERVER_ADDRESS]: host };
}

export interface Outcome {
  /** 0 when no response was sent */
  status: number;
  /** Envoy response flags, comma-separated; '-' for none */
  flags: string;
  /** the proxy's own error, when it answered or failed by itself */
  errorFlag?: string;
  errorMessage?: string;
}

/**
 * The outcome's attributes and error. error.type is the response flag when the proxy
 * failed the request (low cardinality, what Envoy users know), else the status code when
 * the conventions call it an error: 4xx and 5xx on a client span, 5xx on a server span.
 */
export function outcomeAttributes(kind: 'server' | 'client', o: Outcome): { attributes: Attributes; error?: string } {
  const a: Attributes = { [ATTR_RESPONSE_FLAGS]: o.flags };
  if (o.status > 0) a[ATTR_HTTP_RESPONSE_STATUS_CODE] = o.status;
  let error: string | undefined;
  if (o.errorFlag) {
    a[ATTR_ERROR_TYPE] = o.errorFlag;
    error = o.errorMessage ?? o.errorFlag;
  } else if (o.status >= (kind === 'client' ? 400 : 500)) {
    a[ATTR_ERROR_TYPE] = String(o.status);
    error = '';
  }
  return { attributes: a, error };
}

export {
  ATTR_CLIENT_ADDRESS,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_URL_FULL,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
};
