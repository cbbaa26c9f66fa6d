// VirtualService http routes -> Envoy v3 Route objects (plain protobufjs snake_case).
import type { Destination, HeaderOperations, HTTPMatchRequest, HTTPRetry, HTTPRoute, StringMatch, TrafficPolicy, VirtualService } from '../model/types';
import { toStruct } from '../../proto/struct';
import type { Service } from '../model/services';
import { clusterName } from './names';
import { TypeUrl } from '../../proto/type-urls';
import { pack } from '../../proto/any';

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

function routeMatch(m: HTTPMatchRequest | undefined): Obj {
  const out: Obj = {};
  const uri = m?.uri;
  if (!uri) out.prefix = '/';
  else if ('exact' in uri) out.path = uri.exact;
  else if ('prefix' in uri) out.prefix = uri.prefix;
  else out.safe_regex = { regex: uri.regex };
  const headers: Obj[] = [];
  for (const [name, sm] of Object.entries(m?.headers ?? {})) headers.push({ name, string_match: stringMatcher(sm) });
  if (m?.method) headers.push({ name: ':method', string_match: stringMatcher(m.method) });
  if (headers.length) out.headers = headers;
  const qp = Object.entries(m?.queryParams ?? {}).map(([name, sm]) => ({ name, string_match: stringMatcher(sm) }));
  if (qp.length) out.query_parameters = qp;
  return out;
}

function headerOps(ops: HeaderOperations | undefined, dir: 'request' | 'response'): Obj {
  if (!ops) return {};
  const add = [
    ...Object.entries(ops.set ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...Object.entries(ops.add ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
  const out: Obj = {};
  if (add.length) out[`${dir}_headers_to_add`] = add;
  if (ops.remove?.length) out[`${dir}_headers_to_remove`] = ops.remove;
  return out;
}

function percent(p: number): Obj {
  return { numerator: Math.round(p * 10000), denominator: 'MILLION' };
}

function routeAction(r: HTTPRoute, services: Map<string, Service>): Obj {
  const action: Obj = {};
  if (r.route.length === 1 && !r.route[0].headers) {
    action.cluster = destinationCluster(r.route[0].destination, services);
  } else {
    action.weighted_clusters = {
      clusters: r.route.map((d) => ({
        name: destinationCluster(d.destination, services),
        weight: { value: d.weight },
        ...headerOps(d.headers?.request, 'request'),
        ...headerOps(d.headers?.response, 'response'),
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
  if (r.rewrite?.authority !== undefined) action.host_rewrite_literal = r.rewrite.authority;
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
  const h = policyOf(r.route[0].destination)?.loadBalancer?.consistentHash;
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

/** One Envoy route per match clause (Istio ORs the clauses of one http entry). */
export function translateHttpRoute(vs: VirtualService, r: HTTPRoute, index: number, services: Map<string, Service>, policyOf: PolicyOf = () => undefined): Obj[] {
  const matches = r.match.length ? r.match : [undefined];
  const action = routeAction(r, services);
  const hp = hashPolicy(r, policyOf);
  if (hp) action.hash_policy = hp;
  const fault = faultConfig(r);
  // the split key (tandem.io/split-key) rides in the route's metadata: Envoy has no field for it
  const meta = vs.splitKey && r.route.length > 1 ? { metadata: { filter_metadata: { tandem: toStruct({ split_key: `${vs.splitKey.kind}:${vs.splitKey.name}` }) } } } : {};
  return matches.map((m) => ({
    name: r.name ?? `${vs.namespace}/${vs.name}/${index}`,
    match: routeMatch(m),
    route: action,
    ...meta,
    ...headerOps(r.headers?.request, 'request'),
    ...headerOps(r.headers?.response, 'response'),
    ...(fault ? { typed_per_filter_config: fault } : {}),
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
