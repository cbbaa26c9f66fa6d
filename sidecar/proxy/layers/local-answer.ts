// Local answer: a route that answers by itself (Envoy's redirect and direct_response, which
// its router sends as a local reply) never reaches an upstream. As in Envoy, the route's
// response header operations apply to the answer (and CORS, added just before), text/plain
// is the default content type of a body, and a gRPC caller gets the answer as a gRPC status.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Exchange, Layer } from '../exchange';
import type { UpstreamResponse } from '../dispatch';
import { applyOps, first, isGrpcContentType } from '../headers';
import { grpcStatusForHttp } from '../local-reply';
import type { RedirectModel, StringMatcher } from '../../../proto/decode/model';

const EMPTY = Buffer.alloc(0);

export const localAnswerLayer: Layer = (next) => (x) => {
  const a = x.route?.model.answer;
  if (!a) return next(x);
  if (a.kind === 'redirect') return Promise.resolve(answer(x, a.status, EMPTY, location(x, a)));
  // RFC 7231 7.1.2: a 201 or a 3xx says where; Envoy makes it the request's own URL
  const where = a.status === 201 || (a.status >= 300 && a.status < 400) ? location(x) : undefined;
  return Promise.resolve(answer(x, a.status, a.body, where));
};

function answer(x: Exchange, status: number, body: Buffer, where: string | undefined): UpstreamResponse {
  const h: OutgoingHttpHeaders = {};
  if (where) h.location = where;
  for (const ops of x.responseOps) applyOps(h, ops);
  // applied here, before the defaults below, as Envoy's modify_headers runs first
  x.responseOps.length = 0;
  if (isGrpcContentType(x.info.header('content-type'))) {
    h['content-type'] = 'application/grpc';
    // a grpc-status the route's header operations set wins, as in Envoy
    h['grpc-status'] ??= String(grpcStatusForHttp(status));
    const message = body.toString().replace(/\n$/, '');
    if (message) h['grpc-message'] = encodeURIComponent(message);
    delete h['content-length'];
    return reply(200, h, EMPTY, true);
  }
  if (body.length) h['content-type'] ??= 'text/plain';
  h['content-length'] = String(body.length);
  return reply(status, h, body, body.length === 0 || x.info.method === 'HEAD');
}

function reply(status: number, h: OutgoingHttpHeaders, body: Buffer, endStream: boolean): UpstreamResponse {
  return {
    status,
    headers: h as IncomingHttpHeaders,
    endStream,
    body: Readable.from(endStream ? [] : [body]),
    trailers: Promise.resolve(undefined),
    local: true,
  };
}

/** Envoy's Http::Utility::newUri: the redirect's parts, or the request's. */
export function location(x: Pick<Exchange, 'info' | 'request' | 'route'>, rd?: RedirectModel): string {
  const scheme = rd?.scheme ?? x.info.header(':scheme') ?? 'http';
  const port = rd?.port ? `:${rd.port}` : '';
  const host = rd?.host ?? requestHost(x.info.authority, first(x.request.headers['x-forwarded-proto']), scheme, port);
  let path = x.info.path;
  if (rd?.prefixRewrite !== undefined && x.route) path = rd.prefixRewrite + path.slice(matchedLength(x.route.model.path));
  if (rd?.path !== undefined) {
    // the redirect's own query wins; else the request's is kept
    const q = path.indexOf('?');
    path = rd.path.includes('?') || q < 0 ? rd.path : rd.path + path.slice(q);
  }
  if (!path.startsWith('/')) path = `/${path}`;
  if (rd?.stripQuery && !rd.path?.includes('?')) path = path.split('?')[0];
  return `${scheme}://${host}${port}${path}`;
}

// What of the path the route matched, which a prefix rewrite replaces.
function matchedLength(m: StringMatcher): number {
  return m.kind === 'prefix' || m.kind === 'exact' ? m.value.length : 0;
}

/**
 * The request's host, without its port when the redirect sets one, or when the scheme
 * changes and the port was the old scheme's default (Envoy's processRequestHost).
 */
function requestHost(authority: string, forwardedProto: string | undefined, scheme: string, newPort: string): string {
  const colon = authority.startsWith('[') ? authority.lastIndexOf(']:') : authority.lastIndexOf(':');
  const end = authority.startsWith('[') ? (colon < 0 ? -1 : colon + 1) : colon;
  if (end < 0) return authority;
  const oldPort = authority.slice(end);
  let strip = newPort !== '';
  if (scheme !== forwardedProto) strip ||= (forwardedProto === 'https' && oldPort === ':443') || (forwardedProto === 'http' && oldPort === ':80');
  return strip ? authority.slice(0, end) : authority;
}
