// Routes that answer by themselves (Envoy's Route.redirect, Route.direct_response) and the
// CORS filter's per-route policy, as Istio writes them (pilot/pkg/networking/core/route/route.go:
// ApplyRedirect, ApplyDirectResponse, TranslateCORSPolicy).
import type { CorsPolicy, HTTPDirectResponse, HTTPRedirect, StringMatch } from '../model/types';
import { MAX_DIRECT_RESPONSE_BODY } from '../config/route-actions';
import { TypeUrl } from '../../proto/type-urls';
import { pack, type AnyMessage } from '../../proto/any';

type Obj = Record<string, unknown>;

export const CORS_FILTER = 'envoy.filters.http.cors';

/** What every RouteConfiguration says, so that Envoy takes the direct responses Istio allows. */
export const MAX_DIRECT_RESPONSE_BODY_SIZE = { max_direct_response_body_size_bytes: { value: MAX_DIRECT_RESPONSE_BODY } };

const RESPONSE_CODE: Record<number, string> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

/**
 * Envoy's RedirectAction. Envoy cannot take the port from the request, so FROM_REQUEST_PORT
 * becomes the port the route is served for (Istio: the listener's port; Tandem: the
 * service's port), and a port that is the scheme's default is left out of the Location.
 */
export function redirectAction(rd: HTTPRedirect, requestPort: number): Obj {
  const out: Obj = {};
  if (rd.authority) out.host_redirect = rd.authority;
  if (rd.prefixRewrite) out.prefix_rewrite = rd.prefixRewrite;
  else if (rd.uri) out.path_redirect = rd.uri;
  if (rd.scheme) out.scheme_redirect = rd.scheme;
  if (rd.port !== undefined || rd.derivePort !== undefined) {
    const port = rd.port ?? (rd.derivePort === 'FROM_REQUEST_PORT' ? requestPort : 0);
    // the application's request to its sidecar is plaintext: its scheme is http
    const scheme = rd.scheme ?? 'http';
    const isDefault = (port === 80 && scheme === 'http') || (port === 443 && scheme === 'https');
    if (port && !isDefault) out.port_redirect = port;
  }
  out.response_code = RESPONSE_CODE[rd.redirectCode];
  return out;
}

export function directResponseAction(dr: HTTPDirectResponse): Obj {
  const out: Obj = { status: dr.status };
  if (dr.body && 'string' in dr.body) out.body = { inline_string: dr.body.string };
  else if (dr.body) out.body = { inline_bytes: Buffer.from(dr.body.bytes, 'base64') };
  return out;
}

function stringMatcher(m: StringMatch): Obj {
  if ('exact' in m) return { exact: m.exact };
  if ('prefix' in m) return { prefix: m.prefix };
  return { safe_regex: { regex: m.regex } };
}

/**
 * The per-route CorsPolicy, wrapped in an optional FilterConfig: a proxyless gRPC client
 * (which has no CORS filter, and no browser to protect) then skips it instead of refusing
 * the whole route configuration; Envoy and the sidecar apply it.
 */
export function corsPerFilterConfig(c: CorsPolicy): Record<string, AnyMessage> {
  const policy: Obj = {
    allow_origin_string_match: c.allowOrigins.map(stringMatcher),
    filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
    // Istio: FORWARD (or unset) keeps Envoy's pre-1.30 default of forwarding them
    forward_not_matching_preflights: { value: c.unmatchedPreflights !== 'IGNORE' },
  };
  if (c.allowMethods.length) policy.allow_methods = c.allowMethods.join(',');
  if (c.allowHeaders.length) policy.allow_headers = c.allowHeaders.join(',');
  if (c.exposeHeaders.length) policy.expose_headers = c.exposeHeaders.join(',');
  if (c.maxAgeSeconds !== undefined) policy.max_age = String(c.maxAgeSeconds);
  if (c.allowCredentials !== undefined) policy.allow_credentials = { value: c.allowCredentials };
  return { [CORS_FILTER]: pack(TypeUrl.FilterConfig, { config: pack(TypeUrl.CorsPolicy, policy), is_optional: true }) };
}
