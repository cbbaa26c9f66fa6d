// What an http route does besides forwarding: answer with a redirect or a fixed response
// (redirect, directResponse), and the CORS policy of its responses. Istio's validation
// (pkg/config/validation/virtualservice.go) decides what is refused, and why.

import type { CorsPolicy, HTTPDirectResponse, HTTPMatchRequest, HTTPRedirect, StringMatch } from '../model/types';
import { stringMatch } from './common';
import { bool, duration, fields, int, list, oneOf, str, type Fields, type Node, type Read } from './reader';

/** What a route does with a request: exactly one of these. */
export type RouteKind = 'route' | 'redirect' | 'directResponse' | 'delegate';

/**
 * Istio's validateHTTPRouteConflict: one of route, redirect, directResponse (or delegate);
 * a redirect or a direct response forwards nothing, so a fault or a rewrite has nothing to act on.
 */
export function routeKind(n: Node, f: Fields): RouteKind {
  const routes = n.at('route').value;
  const hasRoute = Array.isArray(routes) ? routes.length > 0 : f.has('route');
  const together = (field: string, other: string, why = ''): never => n.at(field).fail(`cannot be used together with ${other}${why}`);
  if (f.has('delegate')) {
    if (f.has('redirect')) together('redirect', 'delegate');
    if (hasRoute) together('route', 'delegate');
    return 'delegate';
  }
  for (const kind of ['redirect', 'directResponse'] as const) {
    if (!f.has(kind)) continue;
    if (hasRoute) together('route', kind, ` (a ${kind} answers without forwarding)`);
    if (kind === 'redirect' && f.has('directResponse')) together('directResponse', 'redirect');
    if (f.has('fault')) together('fault', kind, ' (nothing is forwarded to inject a fault into)');
    if (f.has('rewrite')) together('rewrite', kind, ' (nothing is forwarded to rewrite)');
    return kind;
  }
  if (!hasRoute) n.at('route').fail('is required unless the route has a redirect or a directResponse');
  return 'route';
}

// Envoy's RedirectAction has these codes; Istio drops the action for any other 3xx, which
// Envoy then refuses, so no other code can work in Istio either.
export const REDIRECT_CODES = [301, 302, 303, 307, 308];

export const redirect: Read<HTTPRedirect> = (n) => {
  // prefix_rewrite: the protobuf field name, which Istio's reader takes too and istio/api's
  // own example of this field uses
  const f = fields(n, ['uri', 'authority', 'port', 'derivePort', 'scheme', 'redirectCode', 'prefixRewrite', 'prefix_rewrite']);
  if (f.has('prefixRewrite') && f.has('prefix_rewrite')) n.at('prefix_rewrite').fail('is prefixRewrite again; keep one');
  const rewriteKey = f.has('prefix_rewrite') ? 'prefix_rewrite' : 'prefixRewrite';
  const uri = f.opt('uri', str) || undefined;
  const prefixRewrite = f.opt(rewriteKey, str) || undefined;
  if (uri !== undefined && prefixRewrite !== undefined) n.at(rewriteKey).fail('cannot be used together with uri (one or the other)');
  if (f.has('port') && f.has('derivePort')) n.at('derivePort').fail('cannot be used together with port (one or the other)');
  const out: HTTPRedirect = { redirectCode: 301 };
  if (uri !== undefined) out.uri = uri;
  if (prefixRewrite !== undefined) out.prefixRewrite = prefixRewrite;
  const authority = f.opt('authority', str);
  if (authority) out.authority = authority;
  const port = f.opt('port', int(0, 65535));
  if (port !== undefined) out.port = port;
  const derivePort = f.opt('derivePort', oneOf('FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'));
  if (derivePort) out.derivePort = derivePort;
  const scheme = f.opt('scheme', str);
  if (scheme) out.scheme = scheme === 'http' || scheme === 'https' ? scheme : n.at('scheme').fail(`must be "http" or "https", got ${JSON.stringify(scheme)}`);
  const code = f.opt('redirectCode', int(0));
  if (code !== undefined && code !== 0) {
    if (code < 300 || code > 399) n.at('redirectCode').fail(`must be a 3xx status, got ${code}`);
    if (!REDIRECT_CODES.includes(code)) n.at('redirectCode').fail(`${code} is not supported by Tandem (nor by Istio, whose Envoy redirects with ${REDIRECT_CODES.join(', ')})`);
    out.redirectCode = code;
  }
  if (!out.uri && !out.prefixRewrite && !out.authority && out.port === undefined && !out.derivePort && !out.scheme) {
    n.fail('must set at least one of uri, prefixRewrite, authority, port, derivePort, scheme');
  }
  return out;
};

/** Istio: a redirect's prefixRewrite replaces a matched prefix, so every uri match must be one. */
export function prefixRewriteMatches(n: Node, rd: HTTPRedirect, matches: HTTPMatchRequest[]): void {
  if (rd.prefixRewrite === undefined) return;
  const at = n.at(n.at('prefix_rewrite').value !== undefined ? 'prefix_rewrite' : 'prefixRewrite');
  matches.forEach((m, i) => {
    if (m.uri && !('prefix' in m.uri)) at.fail(`needs every uri match to be a prefix match; match[${i}].uri is not`);
  });
}

// Istio refuses bodies over 1 MiB and raises Envoy's 4 KiB default to the same 1 MiB in
// every RouteConfiguration it writes (max_direct_response_body_size_bytes); so does Tandem.
export const MAX_DIRECT_RESPONSE_BODY = 1024 * 1024;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// `body: {}` is Istio's empty body (its schema allows neither string nor bytes)
const body: Read<HTTPDirectResponse['body']> = (n) => {
  const f = fields(n, ['string', 'bytes']);
  if (f.has('string') && f.has('bytes')) n.fail('must have one of string, bytes, not both');
  if (!f.has('string') && !f.has('bytes')) return undefined;
  let out: NonNullable<HTTPDirectResponse['body']>;
  let size: number;
  if (f.has('string')) {
    out = { string: f.req('string', str) };
    size = Buffer.byteLength(out.string);
  } else {
    const b = f.req('bytes', str);
    if (!BASE64.test(b)) n.at('bytes').fail('must be base64');
    out = { bytes: b };
    size = Buffer.from(b, 'base64').length;
  }
  if (size > MAX_DIRECT_RESPONSE_BODY) n.at(f.has('string') ? 'string' : 'bytes').fail(`is ${size} bytes; a direct response body may be at most 1 MiB (${MAX_DIRECT_RESPONSE_BODY} bytes), as in Istio`);
  return out;
};

export const directResponse: Read<HTTPDirectResponse> = (n) => {
  const f = fields(n, ['status', 'body']);
  // Envoy's DirectResponseAction takes 200..599
  const out: HTTPDirectResponse = { status: f.req('status', int(200, 599)) };
  const b = f.opt('body', body);
  if (b) out.body = b;
  return out;
};

// Istio's supportedCORSMethods (Go's net/http method names) and "*"
const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*'];
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const corsHeaderName: Read<string> = (n) => {
  const s = str(n);
  return s === '*' || TOKEN.test(s) ? s : n.fail(`invalid header name ${JSON.stringify(s)}`);
};

const origin: Read<StringMatch> = (n) => {
  const m = stringMatch(n);
  if (Object.values(m)[0] === '') n.fail('must not match the empty string (Istio: not a valid origin match)');
  return m;
};

export const corsPolicy: Read<CorsPolicy> = (n) => {
  const f = fields(n, ['allowOrigins', 'allowOrigin', 'allowMethods', 'allowHeaders', 'exposeHeaders', 'maxAge', 'allowCredentials', 'unmatchedPreflights']);
  if (f.has('allowOrigins') && f.has('allowOrigin')) n.at('allowOrigin').fail('has both allowOrigins and the deprecated allowOrigin; keep allowOrigins');
  const allowOrigins = f.opt('allowOrigins', list(origin)) ?? (f.opt('allowOrigin', list(str)) ?? []).map((exact) => ({ exact }));
  const out: CorsPolicy = {
    allowOrigins,
    allowMethods: f.opt('allowMethods', list((m) => (CORS_METHODS.includes(str(m)) ? str(m) : m.fail(`${JSON.stringify(m.value)} is not an HTTP method (one of ${CORS_METHODS.join(', ')})`)))) ?? [],
    allowHeaders: f.opt('allowHeaders', list(corsHeaderName)) ?? [],
    exposeHeaders: f.opt('exposeHeaders', list(corsHeaderName)) ?? [],
    unmatchedPreflights: f.opt('unmatchedPreflights', oneOf('UNSPECIFIED', 'FORWARD', 'IGNORE')) === 'IGNORE' ? 'IGNORE' : 'FORWARD',
  };
  const maxAge = f.opt('maxAge', duration({ positive: true }));
  if (maxAge !== undefined) {
    if (maxAge % 1000 !== 0) n.at('maxAge').fail('must be whole seconds (Access-Control-Max-Age counts seconds)');
    out.maxAgeSeconds = maxAge / 1000;
  }
  const credentials = f.opt('allowCredentials', bool);
  if (credentials !== undefined) out.allowCredentials = credentials;
  return out;
};
