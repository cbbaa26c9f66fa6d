// CORS: the route's CorsPolicy, as Envoy's CORS filter applies it. A preflight (OPTIONS with
// Origin and Access-Control-Request-Method) from an allowed origin is answered here, 200
// with the allow headers, and never reaches the upstream; one from another origin goes
// upstream untouched, or with unmatchedPreflights IGNORE is answered with no
// Access-Control-Allow-Origin. Any other request from an allowed origin gets
// Access-Control-Allow-Origin (the origin itself), -Allow-Credentials and -Expose-Headers on
// its response, the upstream's or the route's own (redirect, direct response).
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Exchange, Layer } from '../exchange';
import type { UpstreamResponse } from '../dispatch';
import { matchString, type HeaderOps } from '../../runtime/config';
import type { CorsModel } from '../../../proto/decode/model';

export function originAllowed(c: CorsModel, origin: string): boolean {
  // Envoy: a matcher that matches "*" itself allows every origin
  return c.allowOrigins.some((m) => matchString(m, '*') || matchString(m, origin));
}

export const corsLayer: Layer = (next) => (x) => {
  const c = x.route?.model.cors;
  const origin = c && x.info.header('origin');
  // no policy, or no Origin (not a CORS request): nothing to do
  if (!c || !origin) return next(x);
  const allowed = originAllowed(c, origin);
  const preflight = x.info.method === 'OPTIONS' && !!x.info.header('access-control-request-method');
  if (preflight && (allowed || !c.forwardNotMatchingPreflights)) return Promise.resolve(preflightAnswer(x, c, allowed ? origin : undefined));
  if (allowed) x.responseOps.push(responseOps(c, origin));
  return next(x);
};

function responseOps(c: CorsModel, origin: string): HeaderOps {
  const add: HeaderOps['add'] = [['access-control-allow-origin', origin, true]];
  if (c.allowCredentials) add.push(['access-control-allow-credentials', 'true', true]);
  if (c.exposeHeaders) add.push(['access-control-expose-headers', c.exposeHeaders, true]);
  return { add, remove: [] };
}

function preflightAnswer(x: Exchange, c: CorsModel, origin: string | undefined): UpstreamResponse {
  const h: IncomingHttpHeaders = {};
  if (origin) h['access-control-allow-origin'] = origin;
  if (c.allowCredentials) h['access-control-allow-credentials'] = 'true';
  // "*" echoes what the preflight asks for
  const methods = c.allowMethods === '*' ? x.info.header('access-control-request-method') : c.allowMethods;
  if (methods) h['access-control-allow-methods'] = methods;
  const headers = c.allowHeaders === '*' ? x.info.header('access-control-request-headers') : c.allowHeaders;
  if (headers) h['access-control-allow-headers'] = headers;
  if (c.maxAge) h['access-control-max-age'] = c.maxAge;
  // the CORS filter's own answer: the router, which applies the route's header operations, never sees it
  x.responseOps.length = 0;
  return { status: 200, headers: h, endStream: true, body: Readable.from([]), trailers: Promise.resolve(undefined), local: true };
}
