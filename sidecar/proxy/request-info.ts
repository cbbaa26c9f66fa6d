// What the proxy needs to know about a downstream request, whichever protocol it came in.
import { randomUUID } from 'node:crypto';
import { MAX_HEADERS_COUNT, connectionOf, type DownstreamRequest } from './downstream';
import { first } from './headers';
import { BadRequestError, TooManyHeadersError } from './errors';

export interface RequestInfo {
  method: string;
  authority: string;
  /** path and query */
  path: string;
  protocol: 'HTTP/1.1' | 'HTTP/2' | 'HTTP/1.0';
  header(name: string): string | undefined;
  requestId: string;
  clientIp: string;
  /** the address the request arrived on (Istio's destination.ip) */
  localIp: string;
  hasBody: boolean;
}

/** Over the header-count limit: 431; two Host headers on HTTP/1.1: 400 (RFC 9112 3.2). */
function checkHeaderLines(raw: string[], h2: boolean, max: number): void {
  let count = 0;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i];
    if (k.charCodeAt(0) === 58 /* ':' */) continue;
    count++;
    if (k.length === 4 && k.toLowerCase() === 'host') hosts++;
  }
  if (count > max) throw new TooManyHeadersError(`more than ${max} request headers`);
  if (hosts > 1 && !h2) throw new BadRequestError('more than one Host header');
}

/** `maxHeaders`: the listener's header-count limit (downstream.ts) */
export function requestInfo(req: DownstreamRequest, maxHeaders = MAX_HEADERS_COUNT): RequestInfo {
  const h = req.headers;
  const h2 = req.httpVersionMajor === 2;
  checkHeaderLines(req.rawHeaders, h2, maxHeaders);
  let authority = first(h2 ? (h[':authority'] ?? h.host) : h.host) ?? '';
  let path = req.url ?? '/';
  // absolute form, as an HTTP_PROXY client sends it
  if (!h2 && /^https?:\/\//i.test(path)) {
    let u: URL;
    try {
      u = new URL(path);
    } catch {
      throw new BadRequestError(`bad request target ${path}`);
    }
    authority = u.host;
    path = `${u.pathname}${u.search}`;
  }
  if (!authority) throw new BadRequestError('missing Host header');
  if (!path.startsWith('/')) throw new BadRequestError(`bad request target ${path}`);
  const cl = first(h['content-length']);
  const method = req.method ?? 'GET';
  // Routes match the method as Envoy does, on the :method pseudo-header, which an
  // HTTP/1.1 request does not carry: answer the pseudo-headers from the request line.
  const pseudo: Record<string, string> = { ':method': method, ':authority': authority, ':path': path, ':scheme': 'http' };
  return {
    method,
    authority,
    path,
    protocol: h2 ? 'HTTP/2' : req.httpVersion === '1.0' ? 'HTTP/1.0' : 'HTTP/1.1',
    header: (name) => (name.startsWith(':') ? pseudo[name] : first(h[name])),
    requestId: first(h['x-request-id']) || randomUUID(),
    clientIp: ((h2 && connectionOf(req).addresses?.remote) || (req.socket?.remoteAddress ?? '')).replace(/^::ffff:/, ''),
    localIp: ((h2 && connectionOf(req).addresses?.local) || (req.socket?.localAddress ?? '')).replace(/^::ffff:/, ''),
    // HTTP/2 requests may stream a body with no length; HTTP/1.1 says so in its headers
    hasBody: h2 ? !(req as { stream?: { readableEnded?: boolean; endAfterHeaders?: boolean } }).stream?.endAfterHeaders : (cl !== undefined && cl !== '0') || h['transfer-encoding'] !== undefined,
  };
}
