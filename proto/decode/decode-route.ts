// RouteConfiguration and VirtualHost (VHDS): virtual hosts and their routes, decoded and
// checked the same way whether they come inline in a route configuration or each as a
// resource of its own.
import { compileRe2, type Re2 } from '../../common/re2';
import { unpack, type AnyMessage } from '../any';
import { TypeUrl } from '../type-urls';
import { fromStruct } from '../struct';
import type { HeaderMatcher, HeaderOps, RouteConfigModel, RouteModel, StringMatcher, VirtualHostModel, VirtualHostResourceModel } from './model';
import { DecodeError } from './decode-error';
import { decodeFault, decodeRetryPolicy } from './decode-route-policy';
import { decodeHashPolicies } from './decode-cluster-policy';
import { decodeCors, decodeDirectResponse, decodeRedirect, ENVOY_MAX_DIRECT_RESPONSE_BODY } from './decode-route-action';
import type {
  DurationPb,
  HeaderMatcherPb,
  HeaderOpsPb,
  RegexMatchAndSubstitutePb,
  RegexMatcherPb,
  RouteConfigurationPb,
  RoutePb,
  StringMatcherPb,
  VirtualHostPb,
} from './envoy-pb';

const FAULT_FILTER = 'envoy.filters.http.fault';
export const CORS_FILTER = 'envoy.filters.http.cors';

function ms(d: DurationPb | undefined): number {
  if (!d) return 0;
  return Number(d.seconds ?? 0) * 1000 + Math.round(Number(d.nanos ?? 0) / 1e6);
}

function stringMatcher(m: StringMatcherPb | undefined, resource: string, at: string): StringMatcher {
  if (!m) throw new DecodeError(resource, at, 'must be set');
  if (m.ignore_case) throw new DecodeError(resource, `${at}.ignore_case`, 'not supported');
  if (m.exact !== undefined) return { kind: 'exact', value: m.exact };
  if (m.prefix !== undefined) return { kind: 'prefix', value: m.prefix };
  if (m.safe_regex) return regexMatcher(m.safe_regex, resource, `${at}.safe_regex`);
  throw new DecodeError(resource, at, 'one of exact, prefix, safe_regex is required');
}


/** Envoy's RegexMatcher: RE2, compiled here once, never per request. */
function compileRegex(r: RegexMatcherPb, resource: string, at: string): Re2 {
  const src = r.regex;
  if (typeof src !== 'string' || !src) throw new DecodeError(resource, `${at}.regex`, 'must be set');
  try {
    return compileRe2(src);
  } catch (err) {
    throw new DecodeError(resource, `${at}.regex`, (err as Error).message, { cause: err });
  }
}

function regexMatcher(r: RegexMatcherPb, resource: string, at: string): StringMatcher {
  const re = compileRegex(r, resource, at);
  return { kind: 'regex', value: re.source, re };
}

/** Envoy's RegexMatchAndSubstitute, checked whole at decode time. */
function regexRewrite(r: RegexMatchAndSubstitutePb, resource: string, at: string): NonNullable<RouteModel['regexRewrite']> {
  const re = compileRegex(r.pattern ?? {}, resource, `${at}.pattern`);
  try {
    return { re, substitution: re.substitution(r.substitution ?? '') };
  } catch (err) {
    throw new DecodeError(resource, `${at}.substitution`, (err as Error).message, { cause: err });
  }
}

function headerMatcher(h: HeaderMatcherPb, resource: string, at: string): HeaderMatcher {
  const name = String(h.name ?? '').toLowerCase();
  if (!name) throw new DecodeError(resource, `${at}.name`, 'must be set');
  let match: StringMatcher;
  if (h.string_match) match = stringMatcher(h.string_match, resource, `${at}.string_match`);
  else if (h.exact_match !== undefined) match = { kind: 'exact', value: h.exact_match };
  else if (h.prefix_match !== undefined) match = { kind: 'prefix', value: h.prefix_match };
  else if (h.safe_regex_match) match = regexMatcher(h.safe_regex_match, resource, `${at}.safe_regex_match`);
  else if (h.present_match) match = { kind: 'present' };
  else throw new DecodeError(resource, at, 'unsupported header match');
  const missingAsEmpty = h.treat_missing_header_as_empty === true;
  return { name, match, invert: h.invert_match === true, ...(missingAsEmpty ? { missingAsEmpty } : {}) };
}

/** The route's port condition (tandem metadata: Envoy has no route field for it). */
function routePort(v: unknown, resource: string, at: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw new DecodeError(resource, at, 'must be a port 1..65535');
  return v;
}

function headerOps(o: HeaderOpsPb, dir: 'request' | 'response'): HeaderOps {
  const add = (o[`${dir}_headers_to_add`] ?? []).map((h): [string, string, boolean] => [
    String(h.header?.key ?? '').toLowerCase(),
    String(h.header?.value ?? ''),
    h.append_action === 'OVERWRITE_IF_EXISTS_OR_ADD' || (h.append_action === undefined && h.append?.value === false),
  ]);
  return { add, remove: (o[`${dir}_headers_to_remove`] ?? []).map((s) => s.toLowerCase()) };
}

function decodeRoute(r: RoutePb, resource: string, at: string, maxDirectBody: number): RouteModel {
  const m = r.match ?? {};
  let path: StringMatcher;
  if (m.prefix !== undefined) path = { kind: 'prefix', value: m.prefix };
  else if (m.path !== undefined) path = { kind: 'exact', value: m.path };
  else if (m.safe_regex) path = regexMatcher(m.safe_regex, resource, `${at}.match.safe_regex`);
  else throw new DecodeError(resource, `${at}.match`, 'one of prefix, path, safe_regex is required');
  const ignoreCase = m.case_sensitive?.value === false;
  const headers = (m.headers ?? []).map((h, i) => headerMatcher(h, resource, `${at}.match.headers[${i}]`));
  const query = (m.query_parameters ?? []).map((q, i) => ({
    name: String(q.name ?? ''),
    match: q.present_match ? ({ kind: 'present' } as const) : stringMatcher(q.string_match, resource, `${at}.match.query_parameters[${i}].string_match`),
    invert: false,
  }));
  const perFilter: Record<string, AnyMessage> = r.typed_per_filter_config ?? {};
  for (const k of Object.keys(perFilter)) if (k !== FAULT_FILTER && k !== CORS_FILTER) throw new DecodeError(resource, `${at}.typed_per_filter_config.${k}`, 'not supported by this sidecar');
  const corsAt = `${at}.typed_per_filter_config.${CORS_FILTER}`;
  const cors = perFilter[CORS_FILTER] ? decodeCors(perFilter[CORS_FILTER], (m, mat) => stringMatcher(m as StringMatcherPb | undefined, resource, mat), resource, corsAt) : undefined;
  const fault = perFilter[FAULT_FILTER] ? decodeFault(perFilter[FAULT_FILTER], resource, `${at}.typed_per_filter_config.${FAULT_FILTER}`) : undefined;
  const tandemMeta = fromStruct(r.metadata?.filter_metadata?.tandem);
  const port = routePort(tandemMeta.port, resource, `${at}.metadata.filter_metadata.tandem.port`);
  const common = {
    name: String(r.name ?? ''),
    path,
    ...(ignoreCase ? { ignoreCase } : {}),
    ...(port !== undefined ? { port } : {}),
    headers,
    query,
    ...(fault ? { fault } : {}),
    ...(cors ? { cors } : {}),
    requestHeaders: headerOps(r, 'request'),
    responseHeaders: headerOps(r, 'response'),
  };
  // answered by the sidecar itself (after the fault and CORS filters, as Envoy's router does): no cluster, nothing of a RouteAction
  if (r.redirect || r.direct_response) {
    const answer = r.redirect
      ? decodeRedirect(r.redirect, resource, `${at}.redirect`)
      : decodeDirectResponse(r.direct_response!, maxDirectBody, resource, `${at}.direct_response`);
    return { ...common, clusters: [], answer, timeoutMs: 0, hashPolicies: [], mirrors: [] };
  }
  const a = r.route;
  if (!a) throw new DecodeError(resource, `${at}.route`, 'one of route, redirect, direct_response is required');
  const hashPolicies = decodeHashPolicies(a.hash_policy ?? [], resource, `${at}.route`);
  const splitMeta = tandemMeta.split_key;
  let splitKey: RouteModel['splitKey'];
  if (splitMeta !== undefined) {
    const m = typeof splitMeta === 'string' ? /^(header|cookie):(.+)$/.exec(splitMeta) : null;
    if (!m) throw new DecodeError(resource, `${at}.metadata.filter_metadata.tandem.split_key`, 'must be header:NAME or cookie:NAME');
    splitKey = { kind: m[1] as 'header' | 'cookie', name: m[1] === 'header' ? m[2].toLowerCase() : m[2] };
  }
  const retry = a.retry_policy ? decodeRetryPolicy(a.retry_policy, resource, `${at}.route.retry_policy`) : undefined;
  let clusters: RouteModel['clusters'];
  if (a.cluster) clusters = [{ name: a.cluster, weight: 1, requestHeaders: { add: [], remove: [] }, responseHeaders: { add: [], remove: [] } }];
  else if (a.weighted_clusters?.clusters?.length) {
    clusters = a.weighted_clusters.clusters.map((c, i) => {
      if (!c.name) throw new DecodeError(resource, `${at}.route.weighted_clusters.clusters[${i}].name`, 'must be set');
      const hostRewrite = c.host_rewrite_literal || undefined;
      return {
        name: c.name,
        weight: Number(c.weight?.value ?? 0),
        requestHeaders: headerOps(c, 'request'),
        responseHeaders: headerOps(c, 'response'),
        ...(hostRewrite ? { hostRewrite } : {}),
      };
    });
    if (clusters.every((c) => c.weight === 0)) throw new DecodeError(resource, `${at}.route.weighted_clusters`, 'total weight is 0');
    // Envoy sums the weights in a uint32
    if (clusters.reduce((s, c) => s + c.weight, 0) > 2 ** 32 - 1) throw new DecodeError(resource, `${at}.route.weighted_clusters`, 'the weights add up to more than 4294967295');
  } else throw new DecodeError(resource, `${at}.route`, 'cluster or weighted_clusters is required');
  const mirrors = (a.request_mirror_policies ?? []).map((p, i) => {
    if (!p.cluster) throw new DecodeError(resource, `${at}.route.request_mirror_policies[${i}].cluster`, 'must be set');
    const f = p.runtime_fraction?.default_value;
    const denom = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 }[String(f?.denominator ?? 'HUNDRED')] ?? 100;
    return { cluster: p.cluster, fraction: f ? Number(f.numerator ?? 0) / denom : 1 };
  });
  if (a.prefix_rewrite && a.regex_rewrite) throw new DecodeError(resource, `${at}.route.regex_rewrite`, 'cannot be set together with prefix_rewrite');
  return {
    ...common,
    clusters,
    timeoutMs: ms(a.timeout),
    ...(retry ? { retry } : {}),
    hashPolicies,
    ...(splitKey ? { splitKey } : {}),
    mirrors,
    prefixRewrite: a.prefix_rewrite || undefined,
    ...(a.regex_rewrite ? { regexRewrite: regexRewrite(a.regex_rewrite, resource, `${at}.route.regex_rewrite`) } : {}),
    hostRewrite: a.host_rewrite_literal || undefined,
  };
}

/** One virtual host, inline or a VHDS resource: `resource` is what a NACK names. */
function decodeVhost(vh: VirtualHostPb, resource: string, at: string, maxDirectBody: number, name = String(vh.name ?? '')): VirtualHostModel {
  const domains = (vh.domains ?? []).map((d) => d.toLowerCase());
  if (!domains.length) throw new DecodeError(resource, `${at}domains`, 'must not be empty');
  return {
    name,
    domains,
    routes: (vh.routes ?? []).map((r, j) => decodeRoute(r, resource, `${at}routes[${j}]`, maxDirectBody)),
    requestHeaders: headerOps(vh, 'request'),
    responseHeaders: headerOps(vh, 'response'),
  };
}

export function decodeRouteConfig(any: AnyMessage): RouteConfigModel {
  const rc = unpack<RouteConfigurationPb>(any, TypeUrl.RouteConfiguration);
  const name = String(rc.name ?? '');
  if (!name) throw new DecodeError('(route configuration)', 'name', 'must be set');
  const maxDirectBody = rc.max_direct_response_body_size_bytes ? Number(rc.max_direct_response_body_size_bytes.value ?? 0) : ENVOY_MAX_DIRECT_RESPONSE_BODY;
  const virtualHosts = (rc.virtual_hosts ?? []).map((vh, i) => decodeVhost(vh, name, `virtual_hosts[${i}].`, maxDirectBody));
  if (!rc.vhds) return { name, virtualHosts };
  // the rest of its virtual hosts come as VirtualHost resources on the same ADS stream
  const source = rc.vhds.config_source;
  if (!source?.ads) throw new DecodeError(name, 'vhds.config_source', 'only ads is supported');
  if (source.resource_api_version !== 'V3') throw new DecodeError(name, 'vhds.config_source.resource_api_version', 'must be V3');
  return { name, virtualHosts, vhds: { maxDirectBody } };
}

/**
 * A VirtualHost resource (VHDS), named `<route configuration>/<host>` as Envoy names them.
 * `maxDirectBody`: the max_direct_response_body_size_bytes of the route configuration it
 * belongs to, which bounds its direct responses as it does the inline ones (Envoy's default
 * when that route configuration is not known).
 */
export function decodeVirtualHost(any: AnyMessage, maxDirectBody: (routeConfigName: string) => number = () => ENVOY_MAX_DIRECT_RESPONSE_BODY): VirtualHostResourceModel {
  const vh = unpack<VirtualHostPb>(any, TypeUrl.VirtualHost);
  const name = String(vh.name ?? '');
  const slash = name.indexOf('/');
  if (!name) throw new DecodeError('(virtual host)', 'name', 'must be set');
  if (slash <= 0 || slash === name.length - 1) throw new DecodeError(name, 'name', 'must be <route configuration name>/<host>');
  const routeConfigName = name.slice(0, slash);
  // the route table knows it by its host, as it knows an inline one
  return { name, routeConfigName, vhost: decodeVhost(vh, name, '', maxDirectBody(routeConfigName), name.slice(slash + 1)) };
}
