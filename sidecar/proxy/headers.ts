// Header hygiene between hops: hop-by-hop headers never cross, HTTP/2 pseudo-headers
// never leak into HTTP/1.1, and header operations from routes are applied in order.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { HeaderOps } from '../runtime/config';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
]);

/** Copy end-to-end headers: drops hop-by-hop ones (and any named in Connection) and pseudo-headers. */
export function endToEnd(h: IncomingHttpHeaders | OutgoingHttpHeaders): OutgoingHttpHeaders {
  // headers a Connection header names are hop-by-hop too (rare: most requests name none)
  const conn = h.connection;
  const named = conn === undefined ? undefined : new Set(String(conn).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
  const out: OutgoingHttpHeaders = {};
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(k) || named?.has(k)) continue;
    out[k] = v;
  }
  // "TE: trailers" is the one TE value that is end to end (gRPC needs it)
  if (typeof h.te === 'string' && /(^|,)\s*trailers\s*(,|$)/i.test(h.te)) out.te = 'trailers';
  return out;
}

export function applyOps(h: OutgoingHttpHeaders, ops: HeaderOps | undefined): void {
  if (!ops) return;
  for (const [name, value, overwrite] of ops.add) {
    const cur = h[name];
    if (overwrite || cur === undefined) h[name] = value;
    else h[name] = [...(Array.isArray(cur) ? cur : [String(cur)]), value];
  }
  for (const name of ops.remove) delete h[name];
}

/** gRPC says so by its content-type (application/grpc, application/grpc+proto, …). */
export const isGrpcContentType = (contentType: string | undefined): boolean => contentType !== undefined && contentType.startsWith('application/grpc');

export function first(v: string | string[] | number | undefined): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : String(v);
}

/**
 * Ends a response with its headers alone when the downstream is HTTP/2 (one HEADERS frame
 * with END_STREAM: what gRPC calls trailers-only, where grpc-status rides in the headers);
 * Node's compatibility API would send an empty DATA frame after them instead.
 */
export function endWithHeaders(
  res: { stream?: { respond(h: OutgoingHttpHeaders, o: { endStream: boolean }): void; destroyed: boolean; closed: boolean }; writeHead(s: number, h: OutgoingHttpHeaders): void; end(): void; headersSent: boolean },
  status: number,
  headers: OutgoingHttpHeaders,
): void {
  if (res.stream) {
    // the client may have reset the stream meanwhile: nothing to answer then
    if (res.stream.destroyed || res.stream.closed) return;
    if (!res.headersSent) return res.stream.respond({ ...headers, ':status': status }, { endStream: true });
  }
  res.writeHead(status, headers);
  res.end();
}
