// What a listener holds its clients to: time, connections, streams, headers. The defaults
// are Envoy's documented edge-proxy ones where it has one, shortened where a longer wait
// would only let a silent or stalled peer hold what others need (the README's Limits
// table gives each, with its flag). Set once at start; the request path only reads them.
import * as fs from 'node:fs';
import { DEFAULT_UPSTREAM_REQUESTS } from './layers/pool';

export interface ListenerLimits {
  /** from the connection's first moment (or the previous response) to the end of the request headers: 408 */
  headersTimeoutMs: number;
  /** a connection with nothing in flight (HTTP/1.1 keep-alive, an HTTP/2 session without streams) is closed */
  idleTimeoutMs: number;
  /** a request on which no byte moves either way: 408 before the response, a reset after; 0 is none */
  streamIdleTimeoutMs: number;
  /** the whole request, headers and body, must be in within this: 408; 0 is none */
  requestTimeoutMs: number;
  /** connections open on the listener at once; one more is refused at once */
  maxConnections: number;
  /** request headers taken; one more gets 431 */
  maxHeadersCount: number;
  /** bytes of request headers (HTTP/1.1 head, HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE) */
  maxHeaderBytes: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS */
  maxConcurrentStreams: number;
  /**
   * Rapid reset (CVE-2023-44487): streams a client may reset within a second of opening them,
   * as a balance (h2-guard.ts ResetBudget: each new stream gives half a reset back); one more
   * and the connection is cut. Streams reset in the read that opened them have a small fixed
   * allowance of their own (SAME_READ_RESET_BURST).
   */
  prematureResetLimit: number;
  /** requests in flight to one upstream cluster whose DestinationRule sets no connection pool, and as many more waiting (Envoy's circuit-breaker defaults); past them, 503 UO */
  maxUpstreamRequests: number;
}

/** Envoy's max_headers_count */
export const MAX_HEADERS_COUNT = 100;
/** Envoy's max_request_headers_kb (60) */
export const MAX_HEADER_BYTES = 60 * 1024;
/**
 * The inbound listener takes the headers the caller's sidecar adds on the way (forwarded-*,
 * request id, trace context, attempt count, peer metadata): a request the outbound side
 * accepted is never refused by the peer for what the mesh itself added.
 */
export const MESH_ADDED_HEADERS = 20;
/**
 * A peer sidecar multiplexes all of its application's requests to this workload on one
 * HTTP/2 connection: the inbound listener takes this many times the streams (and early
 * resets) an application's connection may have.
 */
export const INBOUND_STREAMS_FACTOR = 10;
/** Envoy's overload manager's global_downstream_max_connections in its edge example */
const MAX_CONNECTIONS_CEILING = 50_000;
/** descriptors kept for everything but downstream connections: upstream pools, xDS, admin, logs */
const RESERVED_FDS = 256;

export function defaultLimits(maxConnections = defaultMaxConnections()): ListenerLimits {
  return {
    headersTimeoutMs: 10_000,
    idleTimeoutMs: 60_000,
    streamIdleTimeoutMs: 60_000,
    requestTimeoutMs: 300_000,
    maxConnections,
    maxHeadersCount: MAX_HEADERS_COUNT,
    maxHeaderBytes: MAX_HEADER_BYTES,
    maxConcurrentStreams: 100,
    prematureResetLimit: 200,
    maxUpstreamRequests: DEFAULT_UPSTREAM_REQUESTS,
  };
}

/** The inbound listener's limits, from those an application's connections get. */
export function inboundLimits(l: ListenerLimits): ListenerLimits {
  // a peer's connection carries all of its application's requests, cancellations included:
  // it gets the room that many connections would
  return { ...l, maxHeadersCount: l.maxHeadersCount + MESH_ADDED_HEADERS, maxConcurrentStreams: l.maxConcurrentStreams * INBOUND_STREAMS_FACTOR, prematureResetLimit: l.prematureResetLimit * INBOUND_STREAMS_FACTOR };
}

/**
 * Connections per listener that the descriptor limit can carry: each downstream connection may
 * need an upstream one, and there are two listeners. Past the descriptor limit nothing works,
 * the admin port included; under it, the overflow is refused and the rest carries on.
 */
export function defaultMaxConnections(limitsText = readProcLimits()): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limitsText ?? '');
  const soft = !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
  return Math.max(64, Math.min(MAX_CONNECTIONS_CEILING, Math.floor((soft - RESERVED_FDS) / 4)));
}

// read once: every listener (and the flags' usage) asks, and the limit is the process's
let procLimits: string | null | undefined;
function readProcLimits(): string | undefined {
  if (procLimits === undefined) {
    try {
      procLimits = fs.readFileSync('/proc/self/limits', 'utf8');
    } catch {
      procLimits = null;
    }
  }
  return procLimits ?? undefined;
}
