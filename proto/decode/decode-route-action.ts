// The route actions that answer without an upstream (Envoy's Route.redirect and
// Route.direct_response) and the CORS filter's per-route CorsPolicy: typed, checked, and a
// DecodeError naming the field for anything the sidecar does not implement.
import { decode as decodeMsg, type AnyMessage } from '../any';
import { TypeUrl, typeNameOf } from '../type-urls';
import { DecodeError } from './decode-error';
import type { CorsModel, DirectResponseModel, RedirectModel, StringMatcher } from './model';

interface RedirectActionPb {
  scheme_redirect?: string;
  https_redirect?: boolean;
  host_redirect?: string;
  port_redirect?: number;
  path_redirect?: string;
  prefix_rewrite?: string;
  response_code?: 'MOVED_PERMANENTLY' | 'FOUND' | 'SEE_OTHER' | 'TEMPORARY_REDIRECT' | 'PERMANENT_REDIRECT';
  strip_query?: boolean;
  [other: string]: unknown;
}
interface DataSourcePb {
  inline_string?: string;
  inline_bytes?: Buffer;
  [other: string]: unknown;
}
interface DirectResponseActionPb {
  status?: number;
  body?: DataSourcePb;
  [other: string]: unknown;
}
interface FilterConfigPb {
  config?: AnyMessage;
  is_optional?: boolean;
  disabled?: boolean;
  [other: string]: unknown;
}
interface CorsPolicyPb {
  allow_origin_string_match?: unknown[];
  allow_methods?: string;
  allow_headers?: string;
  expose_headers?: string;
  max_age?: string;
  allow_credentials?: { value?: boolean };
  filter_enabled?: { default_value?: { numerator?: number; denominator?: string }; runtime_key?: string };
  forward_not_matching_preflights?: { value?: boolean };
  [other: string]: unknown;
}

/** Envoy's default; a RouteConfiguration may raise it (max_direct_response_body_size_bytes). */
export const ENVOY_MAX_DIRECT_RESPONSE_BODY = 4096;

function only(o: object, allowed: string[], resource: string, at: string): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    if (!allowed.includes(k)) throw new DecodeError(resource, `${at}.${k}`, 'not supported by this sidecar');
  }
}

const STATUS = { MOVED_PERMANENTLY: 301, FOUND: 302, SEE_OTHER: 303, TEMPORARY_REDIRECT: 307, PERMANENT_REDIRECT: 308 } as const;

export function decodeRedirect(r: RedirectActionPb, resource: string, at: string): RedirectModel {
  only(r, ['scheme_redirect', 'https_redirect', 'host_redirect', 'port_redirect', 'path_redirect', 'prefix_rewrite', 'response_code', 'strip_query'], resource, at);
  if (r.path_redirect && r.prefix_rewrite) throw new DecodeError(resource, `${at}.prefix_rewrite`, 'cannot be used together with path_redirect');
  if (r.scheme_redirect && r.https_redirect) throw new DecodeError(resource, `${at}.https_redirect`, 'cannot be used together with scheme_redirect');
  const port = r.port_redirect ?? 0;
  if (port > 65535) throw new DecodeError(resource, `${at}.port_redirect`, 'must be 0..65535');
  if (r.path_redirect !== undefined && r.path_redirect !== '' && !r.path_redirect.startsWith('/')) {
    throw new DecodeError(resource, `${at}.path_redirect`, 'must start with /');
  }
  const out: RedirectModel = { kind: 'redirect', stripQuery: r.strip_query === true, status: STATUS[r.response_code ?? 'MOVED_PERMANENTLY'] };
  const scheme = r.scheme_redirect || (r.https_redirect ? 'https' : undefined);
  if (scheme) out.scheme = scheme.toLowerCase();
  if (r.host_redirect) out.host = r.host_redirect;
  if (port) out.port = port;
  if (r.path_redirect) out.path = r.path_redirect;
  if (r.prefix_rewrite) out.prefixRewrite = r.prefix_rewrite;
  return out;
}

export function decodeDirectResponse(d: DirectResponseActionPb, maxBody: number, resource: string, at: string): DirectResponseModel {
  only(d, ['status', 'body'], resource, at);
  const status = d.status ?? 0;
  if (!(status >= 200 && status < 600)) throw new DecodeError(resource, `${at}.status`, 'must be 200..599');
  let body: Buffer = Buffer.alloc(0);
  if (d.body) {
    // a file or an environment variable names something on the control plane's side, not here
    only(d.body, ['inline_string', 'inline_bytes'], resource, `${at}.body`);
    body = d.body.inline_bytes ?? Buffer.from(d.body.inline_string ?? '');
  }
  if (body.length > maxBody) {
    throw new DecodeError(resource, `${at}.body`, `is ${body.length} bytes, over the route configuration's max_direct_response_body_size_bytes (${maxBody})`);
  }
  return { kind: 'direct', status, body };
}

/**
 * The CORS filter's per-route config: a CorsPolicy, or one wrapped in a FilterConfig (as the
 * control plane sends it, optional for proxyless gRPC clients).
 */
export function decodeCors(any: AnyMessage, matcher: (m: unknown, at: string) => StringMatcher, resource: string, at: string): CorsModel {
  let inner = any;
  let innerAt = at;
  if (any.type_url === TypeUrl.FilterConfig) {
    const fc = decodeMsg<FilterConfigPb>(typeNameOf(any.type_url), any.value);
    only(fc, ['config', 'is_optional'], resource, at);
    if (!fc.config) throw new DecodeError(resource, `${at}.config`, 'must be set');
    inner = fc.config;
    innerAt = `${at}.config`;
  }
  if (inner.type_url !== TypeUrl.CorsPolicy) throw new DecodeError(resource, `${innerAt}.type_url`, 'must be CorsPolicy');
  const c = decodeMsg<CorsPolicyPb>(typeNameOf(inner.type_url), inner.value);
  only(c, ['allow_origin_string_match', 'allow_methods', 'allow_headers', 'expose_headers', 'max_age', 'allow_credentials', 'filter_enabled', 'forward_not_matching_preflights'], resource, innerAt);
  const fe = c.filter_enabled;
  if (fe) {
    // no runtime here: the default value decides, and only all-or-nothing is implemented
    const n = fe.default_value?.numerator ?? 0;
    const d = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 }[fe.default_value?.denominator ?? 'HUNDRED'] ?? 100;
    if (n < d) throw new DecodeError(resource, `${innerAt}.filter_enabled`, 'only 100% is supported by this sidecar');
  }
  return {
    allowOrigins: (c.allow_origin_string_match ?? []).map((m, i) => matcher(m, `${innerAt}.allow_origin_string_match[${i}]`)),
    allowMethods: c.allow_methods ?? '',
    allowHeaders: c.allow_headers ?? '',
    exposeHeaders: c.expose_headers ?? '',
    maxAge: c.max_age ?? '',
    allowCredentials: c.allow_credentials?.value === true,
    forwardNotMatchingPreflights: c.forward_not_matching_preflights?.value ?? true,
  };
}
