// Trace context on the wire: W3C Trace Context (traceparent, tracestate) and B3 (the
// single `b3` header and the x-b3-* headers), read strictly and written per hop. Every
// hop is a new span: the trace id is kept, the caller's span becomes the parent, and
// the sampling decision travels on. Nothing here is random by itself: ids come from an
// injected source so tests are deterministic.
import type { OutgoingHttpHeaders } from 'node:http';

export interface TraceContext {
  /** 32 lowercase hex digits (a 64-bit B3 id is kept as 16 and padded only for traceparent) */
  traceId: string;
  /** the caller's span, which becomes this hop's parent; undefined for a new trace */
  parentSpanId?: string;
  /** null: no decision was made upstream (B3 allows deferring it) */
  sampled: boolean | null;
  /** B3's debug flag (x-b3-flags: 1, or `d` in the single header) */
  debug: boolean;
  /** traceparent's trace-flags byte as received, so flags this proxy does not know pass on */
  flags?: number;
}

export interface TraceIds {
  /** 16 random bytes as 32 hex digits, never all zero */
  traceId(): string;
  /** 8 random bytes as 16 hex digits, never all zero */
  spanId(): string;
}

/** Ids from a byte source (a pool of crypto random bytes in production, common/random-pool.ts; a counter in tests), read at once. */
export function traceIds(bytes: (n: number) => Buffer): TraceIds {
  const hex = (n: number): string => {
    for (;;) {
      const h = bytes(n).toString('hex');
      if (!/^0+$/.test(h)) return h;
    }
  };
  return { traceId: () => hex(16), spanId: () => hex(8) };
}

const HEX = (n: number) => new RegExp(`^[0-9a-f]{${n}}$`);
const TRACE_ID = HEX(32);
const SPAN_ID = HEX(16);
const B3_TRACE_ID = /^(?:[0-9a-f]{16}|[0-9a-f]{32})$/;
const ZERO = /^0+$/;

/**
 * A traceparent as W3C Trace Context level 1 reads it: version 00 exactly four fields; a
 * later version (not ff) at least the four fields of 00, more after a dash allowed;
 * lowercase hex only; neither id all zeros. Anything else is undefined, so a new trace
 * is started, as the spec asks.
 */
export function parseTraceparent(v: string | undefined): TraceContext | undefined {
  if (v === undefined) return undefined;
  const s = v.trim();
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(s);
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === 'ff') return undefined;
  if (version === '00' && rest !== undefined) return undefined;
  if (ZERO.test(traceId!) || ZERO.test(spanId!)) return undefined;
  const f = parseInt(flags!, 16);
  // a future version may define more flags; only 00's are ours to keep
  return { traceId: traceId!, parentSpanId: spanId!, sampled: (f & 1) === 1, debug: false, flags: version === '00' ? f : f & 1 };
}

function b3Sampled(v: string | undefined): boolean | null | undefined {
  if (v === undefined) return null;
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  return undefined; // malformed
}

/** The single `b3` header: {trace}-{span}[-{sampled}[-{parent}]], or a bare decision (0, 1, d). */
export function parseB3Single(v: string | undefined): { ctx?: TraceContext; sampled: boolean | null; debug: boolean } | undefined {
  if (v === undefined) return undefined;
  const s = v.trim().toLowerCase();
  if (s === '0' || s === '1' || s === 'd') return { sampled: s !== '0', debug: s === 'd' };
  const parts = s.split('-');
  if (parts.length < 2 || parts.length > 4) return undefined;
  const [traceId, spanId, state, parent] = parts as [string, string, string | undefined, string | undefined];
  if (!B3_TRACE_ID.test(traceId) || !SPAN_ID.test(spanId) || ZERO.test(traceId) || ZERO.test(spanId)) return undefined;
  if (parent !== undefined && !SPAN_ID.test(parent)) return undefined;
  let sampled: boolean | null = null;
  let debug = false;
  if (state !== undefined) {
    if (state === 'd') (sampled = true), (debug = true);
    else if (state === '1' || state === '0') sampled = state === '1';
    else return undefined;
  }
  return { ctx: { traceId, parentSpanId: spanId, sampled, debug }, sampled, debug };
}

/** The x-b3-* headers; a trace id with no span id (or the reverse) is malformed. */
export function parseB3Multi(get: (name: string) => string | undefined): { ctx?: TraceContext; sampled: boolean | null; debug: boolean } | undefined {
  const traceId = get('x-b3-traceid')?.trim().toLowerCase();
  const spanId = get('x-b3-spanid')?.trim().toLowerCase();
  const sampledRaw = get('x-b3-sampled')?.trim().toLowerCase();
  const debug = get('x-b3-flags')?.trim() === '1';
  if (traceId === undefined && spanId === undefined && sampledRaw === undefined && !debug) return undefined;
  const sampled = b3Sampled(sampledRaw);
  if (sampled === undefined) return undefined;
  const decision = debug ? true : sampled;
  if (traceId === undefined && spanId === undefined) return { sampled: decision, debug };
  if (traceId === undefined || spanId === undefined) return undefined;
  if (!B3_TRACE_ID.test(traceId) || !SPAN_ID.test(spanId) || ZERO.test(traceId) || ZERO.test(spanId)) return undefined;
  return { ctx: { traceId, parentSpanId: spanId, sampled: decision, debug }, sampled: decision, debug };
}

export type Sampler = (traceId: string, parent: TraceContext | undefined) => boolean;

/** This hop's span: kept trace, new span id, and what goes on the wire. */
export interface HopContext {
  /** 32 hex digits, as traceparent and the access log show it */
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  sampled: boolean;
}

export interface Propagated {
  hop: HopContext;
}

/**
 * Reads the caller's context, makes this hop's span and rewrites the trace headers in
 * `h` (the upstream request's headers, lowercase names). traceparent is always sent; B3
 * goes on in the form(s) the caller used. When both are present and valid traceparent
 * wins and B3 is rewritten to match, so the two never disagree downstream.
 */
export function propagate(h: OutgoingHttpHeaders, ids: TraceIds, sample: Sampler): Propagated {
  const get = (n: string): string | undefined => {
    const v = h[n];
    if (v === undefined) return undefined;
    // a repeated header is not a context we can trust: treated as malformed
    if (Array.isArray(v)) return v.length === 1 ? v[0] : '\u0000';
    return String(v);
  };
  const w3c = parseTraceparent(get('traceparent'));
  const single = get('b3') !== undefined ? parseB3Single(get('b3')) : undefined;
  const multi = parseB3Multi(get);
  const hadSingle = get('b3') !== undefined;
  const hadMulti = ['x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags'].some((n) => h[n] !== undefined);

  const b3 = single?.ctx ?? multi?.ctx;
  const parent = w3c ?? b3;
  const b3Decision = single?.sampled ?? multi?.sampled ?? null;
  const debug = !!(single?.debug || multi?.debug);
  const traceId32 = (parent?.traceId ?? ids.traceId()).padStart(32, '0');
  let sampled: boolean;
  if (debug) sampled = true;
  // a B3 caller who decided without ids (`b3: 0`): a new trace, with that decision
  else if (!parent && b3Decision !== null) sampled = b3Decision;
  else sampled = sample(traceId32, parent);
  const hop: HopContext = { traceId: traceId32, spanId: ids.spanId(), parentSpanId: parent?.parentSpanId, sampled };

  const flags = ((w3c?.flags ?? 0) & ~1) | (sampled ? 1 : 0);
  h.traceparent = `00-${traceId32}-${hop.spanId}-${flags.toString(16).padStart(2, '0')}`;
  // tracestate is the vendors' and passes as is; without a valid traceparent it means nothing
  if (!w3c) delete h.tracestate;

  // a 64-bit B3 trace id stays 64-bit in B3 (padded only in traceparent)
  const b3TraceId = b3 && b3.traceId.padStart(32, '0') === traceId32 ? b3.traceId : traceId32;
  if (hadSingle) {
    const state = debug ? 'd' : sampled ? '1' : '0';
    h.b3 = `${b3TraceId}-${hop.spanId}-${state}${hop.parentSpanId ? `-${hop.parentSpanId}` : ''}`;
  }
  if (hadMulti) {
    h['x-b3-traceid'] = b3TraceId;
    h['x-b3-spanid'] = hop.spanId;
    if (hop.parentSpanId) h['x-b3-parentspanid'] = hop.parentSpanId;
    else delete h['x-b3-parentspanid'];
    // debug implies sampled, and B3 says not to send both
    if (debug) {
      h['x-b3-flags'] = '1';
      delete h['x-b3-sampled'];
    } else {
      h['x-b3-sampled'] = sampled ? '1' : '0';
      delete h['x-b3-flags'];
    }
  }
  return { hop };
}

/**
 * An attempt after the first is a span of its own: its copy of the upstream headers gets
 * its span id wherever propagate() wrote this hop's (traceparent, b3, x-b3-spanid), so
 * the peer's parent is the attempt that reached it.
 */
export function withSpanId(h: OutgoingHttpHeaders, spanId: string): void {
  const tp = h.traceparent;
  if (typeof tp === 'string' && tp.length >= 55) h.traceparent = `${tp.slice(0, 36)}${spanId}${tp.slice(52)}`;
  const b3 = h.b3;
  if (typeof b3 === 'string') {
    const parts = b3.split('-');
    if (parts.length >= 2) (parts[1] = spanId), (h.b3 = parts.join('-'));
  }
  if (h['x-b3-spanid'] !== undefined) h['x-b3-spanid'] = spanId;
}
