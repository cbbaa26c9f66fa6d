// One decode-and-validate function per resource type: bytes in, a checked model or a
// DecodeError naming the resource and the field out. A DecodeError becomes a NACK.
import { compileRe2, type Re2 } from '../../common/re2';
import { unpack, type AnyMessage, decode as decodeMsg } from '../any';
import { TypeUrl, typeNameOf } from '../type-urls';
import { fromStruct } from '../struct';
import type {
  ClusterModel,
  EndpointsModel,
  HeaderMatcher,
  HeaderOps,
  ListenerModel,
  RouteConfigModel,
  RouteModel,
  StringMatcher,
  VirtualHostModel,
} from './model';
import { DecodeError } from './decode-error';
import { decodeUpstreamTls, checkDownstreamTls } from './decode-tls';
import { decodeRbacFilter } from './decode-rbac';
import { decodeFault, decodeRetryPolicy } from './decode-route-policy';
import { decodeCircuitBreakers, decodeHashPolicies, decodeOutlierDetection } from './decode-cluster-policy';
import { decodeCors, decodeDirectResponse, decodeRedirect, ENVOY_MAX_DIRECT_RESPONSE_BODY } from './decode-route-action';
import { decodeDiscovery, decodeLbEndpoints, type LoadAssignmentPb } from './decode-discovery';
import { decodeProtocolOptions, decodeSlowStart, decodeUpstreamConnectionOptions } from './decode-cluster-connection';
import type {
  ClusterPb,
  DurationPb,
  FilterChainPb,
  HeaderMatcherPb,
  HeaderOpsPb,
  HttpConnectionManagerPb,
  ListenerPb,
  RegexMatchAndSubstitutePb,
  RegexMatcherPb,
  RouteConfigurationPb,
  RoutePb,
  StringMatcherPb,
} from './envoy-pb';

const FAULT_FILTER = 'envoy.filters.http.fault';
const CORS_FILTER = 'envoy.filters.http.cors';

export { DecodeError };

function ms(d: DurationPb | undefined): number {
  if (!d) return 0;
  return Number(d.seconds ?? 0) * 1000 + Math.round(Number(d.nanos ?? 0) / 1e6);
}

/** Fields this sidecar does not implement yet: better a NACK than silently different behaviour. */
function refuse(resource: string, obj: object, fields: string[], at = ''): void {
  for (const f of fields) {
    const v = (obj as Record<string, unknown>)[f];
    if (v !== undefined && !(Array.isArray(v) && v.length === 0)) {
      throw new DecodeError(resource, at + f, 'not supported by this sidecar');
    }
  }
}

export function decodeCluster(any: AnyMessage): ClusterModel {
  const c = unpack<ClusterPb>(any, TypeUrl.Cluster);
  const name = String(c.name ?? '');
  if (!name) throw new DecodeError('(cluster)', 'name', 'must be set');
  const discovery = decodeDiscovery(c, name);
  const lb = c.lb_policy ?? 'ROUND_ROBIN';
  if (lb !== 'ROUND_ROBIN' && lb !== 'LEAST_REQUEST' && lb !== 'RANDOM' && lb !== 'RING_HASH' && lb !== 'MAGLEV' && lb !== 'CLUSTER_PROVIDED') {
    throw new DecodeError(name, 'lb_policy', `${lb} is not supported`);
  }
  refuse(name, c, ['transport_socket_matches', 'load_balancing_policy', 'max_requests_per_connection', 'common_http_protocol_options', 'http_protocol_options', 'http2_protocol_options', 'upstream_http_protocol_options', 'protocol_selection']);
  // slow start lives in the config of the cluster's own load balancer
  for (const [field, policy] of [['round_robin_lb_config', 'ROUND_ROBIN'], ['least_request_lb_config', 'LEAST_REQUEST']] as const) {
    if (c[field] && lb !== policy) throw new DecodeError(name, field, `only for lb_policy ${policy}`);
  }
  const lbConfig = c.round_robin_lb_config ?? c.least_request_lb_config;
  const slowStart = lbConfig ? decodeSlowStart(lbConfig, name, c.round_robin_lb_config ? 'round_robin_lb_config' : 'least_request_lb_config') : undefined;
  const protocolOptions = c.typed_extension_protocol_options ? decodeProtocolOptions(c.typed_extension_protocol_options, name) : undefined;
  const tcpKeepalive = c.upstream_connection_options ? decodeUpstreamConnectionOptions(c.upstream_connection_options, name) : undefined;
  const connection = protocolOptions || tcpKeepalive ? { ...protocolOptions?.connection, ...(tcpKeepalive ? { tcpKeepalive } : {}) } : undefined;
  if (c.common_lb_config) refuse(name, c.common_lb_config, ['zone_aware_lb_config', 'locality_weighted_lb_config', 'update_merge_window', 'ignore_new_hosts_until_first_hc', 'close_connections_on_host_set_change', 'consistent_hashing_lb_config', 'override_host_status'], 'common_lb_config.');
  const meta = fromStruct(c.metadata?.filter_metadata?.tandem);
  return {
    name,
    ...(discovery.kind !== 'eds' ? { discovery } : {}),
    lbPolicy: lb,
    connectTimeoutMs: ms(c.connect_timeout) || 10_000,
    mesh: meta.mesh !== false,
    protocol: typeof meta.protocol === 'string' ? meta.protocol : 'HTTP',
    ...(c.transport_socket ? { tls: decodeUpstreamTls(c.transport_socket, name) } : {}),
    limits: c.circuit_breakers ? decodeCircuitBreakers(c.circuit_breakers, name) : {},
    // Envoy's default panic threshold is 50%
    panicThresholdPercent: c.common_lb_config?.healthy_panic_threshold ? Number(c.common_lb_config.healthy_panic_threshold.value ?? 0) : 50,
    ...(c.outlier_detection ? { outlier: decodeOutlierDetection(c.outlier_detection, name) } : {}),
    ...(slowStart ? { slowStart } : {}),
    ...(connection ? { connection } : {}),
    ...(protocolOptions?.upstreamProtocol ? { upstreamProtocol: protocolOptions.upstreamProtocol } : {}),
  };
}

export function decodeEndpoints(any: AnyMessage): EndpointsModel {
  const cla = unpack<LoadAssignmentPb>(any, TypeUrl.ClusterLoadAssignment);
  const name = String(cla.cluster_name ?? '');
  if (!name) throw new DecodeError('(cluster load assignment)', 'cluster_name', 'must be set');
  // a host name here is a sidecar's --advertise HOST, dialled as it is (resolved per connection)
  return { clusterName: name, endpoints: decodeLbEndpoints(cla, name, '', true) };
}

const HCM_FILTER = 'envoy.filters.network.http_connection_manager';

export function decodeListener(any: AnyMessage): ListenerModel {
  const l = unpack<ListenerPb>(any, TypeUrl.Listener);
  const name = String(l.name ?? '');
  if (!name) throw new DecodeError('(listener)', 'name', 'must be set');
  if (l.traffic_direction === 'INBOUND') return decodeInboundListener(l, name);
  const chains = l.filter_chains ?? [];
  if (chains.length !== 1) throw new DecodeError(name, 'filter_chains', 'exactly one filter chain is supported');
  const at = 'filter_chains[0].filters[0].typed_config';
  const hcm = hcmOf(chains[0], name, 'filter_chains[0]');
  if (hcm.route_config) throw new DecodeError(name, `${at}.route_config`, 'inline routes are not supported; use rds');
  const routeConfigName = hcm.rds?.route_config_name;
  if (!routeConfigName) throw new DecodeError(name, `${at}.rds.route_config_name`, 'must be set');
  httpFilters(hcm, name, at, false);
  return { kind: 'outbound', name, routeConfigName, stripAnyHostPort: hcm.strip_any_host_port === true };
}

function hcmOf(chain: FilterChainPb, name: string, at: string): HttpConnectionManagerPb {
  const filters = chain.filters ?? [];
  const f = filters[0];
  if (filters.length !== 1 || (f.name !== HCM_FILTER && f.typed_config?.type_url !== TypeUrl.HttpConnectionManager)) {
    throw new DecodeError(name, `${at}.filters`, `exactly one ${HCM_FILTER} is supported`);
  }
  if (f.typed_config?.type_url !== TypeUrl.HttpConnectionManager) throw new DecodeError(name, `${at}.filters[0].typed_config.type_url`, 'must be HttpConnectionManager');
  return unpack<HttpConnectionManagerPb>(f.typed_config);
}

/** The HTTP filters: fault and CORS (empty: routes carry their settings), RBAC (inbound only), then the router last. */
function httpFilters(hcm: HttpConnectionManagerPb, name: string, at: string, inbound: boolean): ReturnType<typeof decodeRbacFilter>[] {
  const list = hcm.http_filters ?? [];
  const rbac: ReturnType<typeof decodeRbacFilter>[] = [];
  list.forEach((hf, i) => {
    const fat = `${at}.http_filters[${i}]`;
    if (hf.name === 'envoy.filters.http.router') {
      if (i !== list.length - 1) throw new DecodeError(name, fat, 'the router must be the last filter');
    } else if (hf.name === 'envoy.filters.http.fault') {
      if (hf.typed_config) {
        const fault = decodeMsg<object>(typeNameOf(hf.typed_config.type_url), hf.typed_config.value);
        refuse(name, fault, ['delay', 'abort'], `${fat}.typed_config.`);
      }
    } else if (hf.name === CORS_FILTER) {
      if (hf.typed_config && hf.typed_config.type_url !== TypeUrl.Cors) throw new DecodeError(name, `${fat}.typed_config.type_url`, 'must be Cors');
    } else if (hf.name === 'envoy.filters.http.rbac' && inbound) {
      if (!hf.typed_config) throw new DecodeError(name, `${fat}.typed_config`, 'must be set');
      rbac.push(decodeRbacFilter(hf.typed_config, name, `${fat}.typed_config`));
    } else throw new DecodeError(name, fat, `${hf.name} is not supported`);
  });
  return rbac;
}

// The inbound listener: an mTLS chain (always) and a plaintext one (PERMISSIVE), both
// with the same connection manager, routing everything to the local application.
function decodeInboundListener(l: ListenerPb, name: string): ListenerModel {
  const chains = l.filter_chains ?? [];
  let plaintext = false;
  let mtls = false;
  let hcm: HttpConnectionManagerPb | undefined;
  chains.forEach((chain, i) => {
    const at = `filter_chains[${i}]`;
    const tp = chain.filter_chain_match?.transport_protocol;
    refuse(name, chain.filter_chain_match ?? {}, ['destination_port', 'prefix_ranges', 'server_names', 'application_protocols', 'source_prefix_ranges', 'source_ports', 'direct_source_prefix_ranges', 'source_type'], `${at}.filter_chain_match.`);
    if (tp === 'tls') {
      if (!chain.transport_socket) throw new DecodeError(name, `${at}.transport_socket`, 'the tls chain needs the mesh DownstreamTlsContext');
      checkDownstreamTls(chain.transport_socket, name, `${at}.transport_socket`);
      mtls = true;
    } else if (tp === 'raw_buffer') {
      if (chain.transport_socket) throw new DecodeError(name, `${at}.transport_socket`, 'a raw_buffer chain has no transport socket');
      plaintext = true;
    } else throw new DecodeError(name, `${at}.filter_chain_match.transport_protocol`, 'must be "tls" or "raw_buffer"');
    const h = hcmOf(chain, name, at);
    // both chains must treat requests alike: one connection manager for the port
    if (hcm && JSON.stringify(h) !== JSON.stringify(hcm)) throw new DecodeError(name, `${at}.filters`, 'every chain must carry the same connection manager');
    hcm = h;
  });
  if (!mtls || !hcm) throw new DecodeError(name, 'filter_chains', 'an inbound listener needs its mTLS chain');
  const at = 'filter_chains[0].filters[0].typed_config';
  const routes = hcm.route_config?.virtual_hosts?.[0]?.routes ?? [];
  if (hcm.rds || hcm.route_config?.virtual_hosts?.length !== 1 || routes.length !== 1 || routes[0].match?.prefix !== '/' || !routes[0].route?.cluster) {
    throw new DecodeError(name, `${at}.route_config`, 'the inbound listener routes everything to the application: one virtual host with one prefix "/" route');
  }
  const rbac = httpFilters(hcm, name, at, true);
  const fcc = hcm.forward_client_cert_details ?? 'SANITIZE';
  if (fcc !== 'SANITIZE' && fcc !== 'SANITIZE_SET') throw new DecodeError(name, `${at}.forward_client_cert_details`, `${fcc} is not supported (SANITIZE or SANITIZE_SET)`);
  const set = hcm.set_current_client_cert_details;
  if (set) refuse(name, set, ['subject', 'cert', 'chain', 'dns'], `${at}.set_current_client_cert_details.`);
  return { kind: 'inbound', name, plaintext, rbac, setClientCert: fcc === 'SANITIZE_SET' && set?.uri === true };
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

export function decodeRouteConfig(any: AnyMessage): RouteConfigModel {
  const rc = unpack<RouteConfigurationPb>(any, TypeUrl.RouteConfiguration);
  const name = String(rc.name ?? '');
  if (!name) throw new DecodeError('(route configuration)', 'name', 'must be set');
  const maxDirectBody = rc.max_direct_response_body_size_bytes ? Number(rc.max_direct_response_body_size_bytes.value ?? 0) : ENVOY_MAX_DIRECT_RESPONSE_BODY;
  const virtualHosts: VirtualHostModel[] = (rc.virtual_hosts ?? []).map((vh, i) => {
    const at = `virtual_hosts[${i}]`;
    const domains = (vh.domains ?? []).map((d) => d.toLowerCase());
    if (!domains.length) throw new DecodeError(name, `${at}.domains`, 'must not be empty');
    return {
      name: String(vh.name ?? ''),
      domains,
      routes: (vh.routes ?? []).map((r, j) => decodeRoute(r, name, `${at}.routes[${j}]`, maxDirectBody)),
      requestHeaders: headerOps(vh, 'request'),
      responseHeaders: headerOps(vh, 'response'),
    };
  });
  return { name, virtualHosts };
}

export const decoders = {
  [TypeUrl.Cluster]: decodeCluster,
  [TypeUrl.ClusterLoadAssignment]: decodeEndpoints,
  [TypeUrl.Listener]: decodeListener,
  [TypeUrl.RouteConfiguration]: decodeRouteConfig,
};

/** The name a decoded resource goes by, for SotW bookkeeping. */
export function nameOf(m: ClusterModel | EndpointsModel | ListenerModel | RouteConfigModel): string {
  return 'clusterName' in m ? m.clusterName : m.name;
}
