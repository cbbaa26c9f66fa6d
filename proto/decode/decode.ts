// One decode-and-validate function per resource type: bytes in, a checked model or a
// DecodeError naming the resource and the field out. A DecodeError becomes a NACK.
import { decode as decodeMsg, unpack, type AnyMessage } from '../any';
import { TypeUrl, typeNameOf } from '../type-urls';
import { fromStruct } from '../struct';
import type { ClusterModel, EndpointsModel, ListenerModel, RouteConfigModel, VirtualHostResourceModel } from './model';
import { DecodeError } from './decode-error';
import { decodeUpstreamTls, checkDownstreamTls } from './decode-tls';
import { decodeRbacFilter } from './decode-rbac';
import { decodeCircuitBreakers, decodeOutlierDetection } from './decode-cluster-policy';
import { decodeDiscovery, decodeLbEndpoints, type LoadAssignmentPb } from './decode-discovery';
import { decodeProtocolOptions, decodeSlowStart, decodeUpstreamConnectionOptions } from './decode-cluster-connection';
import { CORS_FILTER, decodeRouteConfig, decodeVirtualHost } from './decode-route';
import type { ClusterPb, DurationPb, FilterChainPb, HttpConnectionManagerPb, ListenerPb } from './envoy-pb';

export { DecodeError, decodeRouteConfig, decodeVirtualHost };

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


export const decoders = {
  [TypeUrl.Cluster]: decodeCluster,
  [TypeUrl.ClusterLoadAssignment]: decodeEndpoints,
  [TypeUrl.Listener]: decodeListener,
  [TypeUrl.RouteConfiguration]: decodeRouteConfig,
  [TypeUrl.VirtualHost]: (any: AnyMessage) => decodeVirtualHost(any),
};

/** The name a decoded resource goes by, for SotW bookkeeping. */
export function nameOf(m: ClusterModel | EndpointsModel | ListenerModel | RouteConfigModel | VirtualHostResourceModel): string {
  return 'clusterName' in m ? m.clusterName : m.name;
}
