// VirtualService http routes -> Envoy v3 Route objects (plain protobufjs snake_case).
import type { Destination, HeaderOperations, HTTPMatchRequest, HTTPRetry, HTTPRoute, HTTPRouteDestination, PresenceMatch, StringMatch, TrafficPolicy, VirtualService } from '../model/types';
import { toStruct } from '../../proto/struct';
import type { Service } from '../model/services';
import { clusterName } from './names';
import { TypeUrl } from '../../proto/type-urls';
import { pack } from '../../proto/any';
import { corsPerFilterConfig, directResponseAction, redirectAction } from './translate-route-actions';

type Obj = Record<string, unknown>;

export function duration(ms: number): Obj {
  return { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) };
}

export function destinationPort(d: Destination, services: Map<string, Service>): number {
  return d.port ?? services.get(d.host)?.defaultPort ?? 80;
}

export function destinationCluster(d: Destination, services: Map<string, Service>): string {
  return clusterName(d.host, destinationPort(d, services), d.subset ?? '');
}

function stringMatcher(m: StringMatch): Obj {
  if ('exact' in m) return { exact: m.exact };
  if ('prefix' in m) return { prefix: m.prefix };
  return { safe_regex: { regex: m.regex } };
}

/** A header or query parameter condition: Istio's empty StringMatch is Envoy's present_match. */
function presenceMatcher(name: string, m: PresenceMatch): Obj {
  return 'present' in m ? { name, present_match: true } : { name, string_match: stringMatcher(m) };
}

// Istio's TranslateRouteMatch: headers and withoutHeaders sorted by name, then the
// pseudo-headers :method, :authority and :scheme.
function routeMatch(m: HTTPMatchRequest | undefined): Obj {
  const out: Obj = {};
  const uri = m?.uri;
  if (!uri) out.prefix = '/';
  else if ('exact' in uri) out.path = uri.exact;
  else if ('prefix' in uri) out.prefix = uri.prefix;
  else out.safe_regex = { regex: uri.regex };
  // Envoy ignores case_sensitive for a regex path, as Istio's ignoreUriCase says
  if (m?.ignoreUriCase) out.case_sensitive = { value: false };
  const headers: Obj[] = Object.entries(m?.headers ?? {}).map(([name, sm]) => presenceMatcher(name, sm));
  for (const [name, sm] of Object.entries(m?.withoutHeaders ?? {})) {
    // an absent header is one that does not match, so inverted it matches (Envoy leaves it out otherwise)
    headers.push({ ...presenceMatcher(name, sm), invert_match: true, ...('present' in sm ? {} : { treat_missing_header_as_empty: true }) });
  }
  headers.sort((a, b) => (a.name === b.name ? 0 : (a.name as string) < (b.name as string) ? -1 : 1));
  if (m?.method) headers.push(presenceMatcher(':method', m.method));
  if (m?.authority) headers.push(presenceMatcher(':authority', m.authority));
  if (m?.scheme) headers.push(presenceMatcher(':scheme', m.scheme));
  if (headers.length) out.headers = headers;
  const qp = Object.entries(m?.queryParams ?? {}).map(([name, sm]) => presenceMatcher(name, sm));
  if (qp.length) out.query_parameters = qp;
  return out;
}

// Istio: the Host (authority) is no header to add or remove but a host rewrite; the
// other pseudo-headers cannot be changed at all.
const isAuthority = (name: string): boolean => name === 'host' || name === ':authority';
const isInternal = (name: string): boolean => isAuthority(name) || name.startsWith(':');
const external = (m: Record<string, string> | undefined) => Object.entries(m ?? {}).filter(([k]) => !isInternal(k));

/** The authority that request header operations set (`set` over `add`), as Istio reads it. */
function authorityOf(ops: HeaderOperations | undefined): string | undefined {
  const of = (m: Record<string, string> | undefined) => Object.entries(m ?? {}).find(([k]) => isAuthority(k))?.[1];
  return of(ops?.set) ?? of(ops?.add);
}

function headerOps(ops: HeaderOperations | undefined, dir: 'request' | 'response'): Obj {
  if (!ops) return {};
  const add = [
    ...external(ops.set).map(([key, value]) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...external(ops.add).map(([key, value]) => ({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
  const remove = (ops.remove ?? []).filter((k) => !isInternal(k));
  const out: Obj = {};
  if (add.length) out[`${dir}_headers_to_add`] = add;
  if (remove.length) out[`${dir}_headers_to_remove`] = remove;
  return out;
}

function percent(p: number): Obj {
  return { numerator: Math.round(p * 10000), denominator: 'MILLION' };
}

/** The route's authority rewrite: `rewrite.authority`, else a Host its request headers set. */
const routeAuthority = (r: HTTPRoute): string | undefined => r.rewrite?.authority ?? authorityOf(r.headers?.request);

/** A destination's own Host: Istio lets a lone destination's give way to the route's, a weighted one's win. */
function destinationAuthority(r: HTTPRoute, d: HTTPRouteDestination): Obj {
  const authority = authorityOf(d.headers?.request);
  return authority !== undefined && (r.route.length > 1 || routeAuthority(r) === undefined) ? { host_rewrite_literal: authority } : {};
}

/** What gets traffic: a lone destination whatever its weight, else those weighted above 0 (as Istio). */
const weightedDestinations = (r: HTTPRoute) => (r.route.length === 1 ? r.route : r.route.filter((d) => d.weight > 0));

function routeAction(r: HTTPRoute, services: Map<string, Service>): Obj {
  const action: Obj = {};
  if (r.route.length === 1 && !r.route[0].headers) {
    action.cluster = destinationCluster(r.route[0].destination, services);
  } else {
    // relative weights: Envoy splits by each weight over their sum (total_weight is deprecated)
    action.weighted_clusters = {
      clusters: weightedDestinations(r).map((d) => ({
        name: destinationCluster(d.destination, services),
        weight: { value: d.weight },
        ...headerOps(d.headers?.request, 'request'),
        ...headerOps(d.headers?.response, 'response'),
        ...destinationAuthority(r, d),
      })),
    };
  }
  if (r.timeoutMs !== undefined) {
    action.timeout = duration(r.timeoutMs);
    // proxyless gRPC clients read the deadline from here, not from timeout
    action.max_stream_duration = { max_stream_duration: duration(r.timeoutMs) };
  }
  const retry = retryPolicy(r.retries);
  if (retry) action.retry_policy = retry;
  if (r.mirrors.length) {
    action.request_mirror_policies = r.mirrors.map((m) => ({
      cluster: destinationCluster(m.destination, services),
      runtime_fraction: { default_value: percent(m.percentage) },
    }));
  }
  if (r.rewrite?.uri !== undefined) action.prefix_rewrite = r.rewrite.uri;
  const rx = r.rewrite?.uriRegexRewrite;
  if (rx) action.regex_rewrite = { pattern: { regex: rx.match }, substitution: rx.rewrite };
  const authority = routeAuthority(r);
  if (authority !== undefined) action.host_rewrite_literal = authority;
  return action;
}

// Istio's default for a route without `retries`: two retries of what cannot have reached
// the application (connect failures, refused streams, gRPC unavailable/cancelled) or was
// answered 503. `attempts: 0` turns retries off.
const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
const DEFAULT_RETRIABLE_CODES = [503];

function retryPolicy(rt: HTTPRetry | undefined): Obj | undefined {
  if (rt?.attempts === 0) return undefined;
  const parts = (rt?.retryOn ?? DEFAULT_RETRY_ON).split(',').map((p) => p.trim()).filter(Boolean);
  // Istio's retryOn takes bare status codes; Envoy wants them apart, under retriable-status-codes
  const codes = rt?.retryOn === undefined ? DEFAULT_RETRIABLE_CODES : parts.filter((p) => /^\d{3}$/.test(p)).map(Number);
  const conditions = parts.filter((p) => !/^\d{3}$/.test(p));
  if (codes.length && !conditions.includes('retriable-status-codes')) conditions.push('retriable-status-codes');
  return {
    retry_on: conditions.join(','),
    num_retries: { value: rt?.attempts ?? 2 },
    ...(rt?.perTryTimeoutMs !== undefined ? { per_try_timeout: duration(rt.perTryTimeoutMs) } : {}),
    ...(codes.length ? { retriable_status_codes: codes } : {}),
  };
}

function faultConfig(r: HTTPRoute): Obj | undefined {
  if (!r.fault) return undefined;
  const f: Obj = {};
  if (r.fault.delay) f.delay = { fixed_delay: duration(r.fault.delay.fixedDelayMs), percentage: percent(r.fault.delay.percentage) };
  const a = r.fault.abort;
  if (a) f.abort = { ...(a.grpcStatus !== undefined ? { grpc_status: a.grpcStatus } : { http_status: a.httpStatus }), percentage: percent(a.percentage) };
  return { 'envoy.filters.http.fault': pack(TypeUrl.HTTPFault, f) };
}

/** The traffic policy that applies to a destination (its DestinationRule, subset settings on top). */
export type PolicyOf = (d: Destination) => TrafficPolicy | undefined;

// Istio hashes on what the first destination's DestinationRule says
function hashPolicy(r: HTTPRoute, policyOf: PolicyOf): Obj[] | undefined {
  const h = r.route.length ? policyOf(r.route[0].destination)?.loadBalancer?.consistentHash : undefined;
  if (!h) return undefined;
  if (h.httpHeaderName) return [{ header: { header_name: h.httpHeaderName } }];
  if (h.httpCookie) {
    const c = h.httpCookie;
    const attributes = c.attributes?.map((a) => (a.value === undefined ? { name: a.name } : { name: a.name, value: a.value }));
    return [{ cookie: { name: c.name, ...(c.ttlMs !== undefined ? { ttl: duration(c.ttlMs) } : {}), ...(c.path ? { path: c.path } : {}), ...(attributes ? { attributes } : {}) } }];
  }
  if (h.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  if (h.httpQueryParameterName) return [{ query_parameter: { name: h.httpQueryParameterName } }];
  return undefined;
}

/** Forward (route), or answer by itself (redirect, direct_response): Envoy's Route.action. */
function actionOf(r: HTTPRoute, services: Map<string, Service>, policyOf: PolicyOf, requestPort: number): Obj {
  if (r.redirect) return { redirect: redirectAction(r.redirect, requestPort) };
  if (r.directResponse) return { direct_response: directResponseAction(r.directResponse) };
  const action = routeAction(r, services);
  const hp = hashPolicy(r, policyOf);
  if (hp) action.hash_policy = hp;
  return { route: action };
}

/**
 * The route's own metadata, for what Envoy has no route field for: the split key
 * (tandem.io/split-key), and the port a match names (Istio builds a listener per port; the
 * sidecar's one outbound port takes the port the application addressed).
 */
function tandemMetadata(vs: VirtualService, r: HTTPRoute, m: HTTPMatchRequest | undefined): Obj {
  const meta: Record<string, string | number> = {};
  if (vs.splitKey && weightedDestinations(r).length > 1) meta.split_key = `${vs.splitKey.kind}:${vs.splitKey.name}`;
  if (m?.port !== undefined) meta.port = m.port;
  return Object.keys(meta).length ? { metadata: { filter_metadata: { tandem: toStruct(meta) } } } : {};
}

/**
 * One Envoy route per match clause (Istio ORs the clauses of one http entry), named
 * `<route>.<match>` when the match has a name, as Istio does. `requestPort` is the port of
 * the service the route is served for (a redirect's FROM_REQUEST_PORT). With `listenPort` (a
 * proxyless client's listener, whose port is known) a match for another port is left out,
 * as Istio does per listener; without it, the port goes along for the sidecar to check.
 */
export function translateHttpRoute(
  vs: VirtualService,
  r: HTTPRoute,
  index: number,
  services: Map<string, Service>,
  policyOf: PolicyOf = () => undefined,
  requestPort = 80,
  listenPort?: number,
): Obj[] {
  let matches: (HTTPMatchRequest | undefined)[] = r.match.length ? r.match : [undefined];
  if (listenPort !== undefined) matches = matches.filter((m) => m?.port === undefined || m.port === listenPort).map((m) => (m ? { ...m, port: undefined } : m));
  if (matches.length === 0) return [];
  const action = actionOf(r, services, policyOf, requestPort);
  const perFilter = { ...faultConfig(r), ...(r.corsPolicy ? corsPerFilterConfig(r.corsPolicy) : {}) };
  const name = r.name ?? `${vs.namespace}/${vs.name}/${index}`;
  return matches.map((m) => ({
    name: m?.name ? `${name}.${m.name}` : name,
    match: routeMatch(m),
    ...action,
    ...tandemMetadata(vs, r, m),
    ...headerOps(r.headers?.request, 'request'),
    ...headerOps(r.headers?.response, 'response'),
    ...(Object.keys(perFilter).length ? { typed_per_filter_config: perFilter } : {}),
  }));
}

/** A service without a VirtualService: all of it to the service, with Istio's default retries. */
export function defaultRoute(service: Service): Obj {
  return {
    name: 'default',
    match: { prefix: '/' },
    route: { cluster: clusterName(service.fqdn, service.defaultPort), retry_policy: retryPolicy(undefined) },
  };
}
