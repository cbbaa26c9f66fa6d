// The type URLs xDS speaks, named once.
const prefix = 'type.googleapis.com/';

export const TypeUrl = {
  Listener: `${prefix}envoy.config.listener.v3.Listener`,
  RouteConfiguration: `${prefix}envoy.config.route.v3.RouteConfiguration`,
  /** a virtual host of a RouteConfiguration with `vhds`, as its own resource (VHDS, Delta xDS only) */
  VirtualHost: `${prefix}envoy.config.route.v3.VirtualHost`,
  Cluster: `${prefix}envoy.config.cluster.v3.Cluster`,
  ClusterLoadAssignment: `${prefix}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  HttpConnectionManager: `${prefix}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  Router: `${prefix}envoy.extensions.filters.http.router.v3.Router`,
  HTTPFault: `${prefix}envoy.extensions.filters.http.fault.v3.HTTPFault`,
  Cors: `${prefix}envoy.extensions.filters.http.cors.v3.Cors`,
  CorsPolicy: `${prefix}envoy.extensions.filters.http.cors.v3.CorsPolicy`,
  FilterConfig: `${prefix}envoy.config.route.v3.FilterConfig`,
  RBAC: `${prefix}envoy.extensions.filters.http.rbac.v3.RBAC`,
  UpstreamTlsContext: `${prefix}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  DownstreamTlsContext: `${prefix}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  HttpProtocolOptions: `${prefix}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
} as const;

/** The key Envoy files a cluster's upstream HttpProtocolOptions under (typed_extension_protocol_options). */
export const HTTP_PROTOCOL_OPTIONS_KEY = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/**
 * The resource types served over ADS, in the order Envoy applies them: clusters and their
 * endpoints before the listeners, routes and virtual hosts that use them.
 */
export const xdsTypes = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.VirtualHost] as const;
export type XdsTypeUrl = (typeof xdsTypes)[number];

export const shortName: Record<XdsTypeUrl, 'CDS' | 'EDS' | 'LDS' | 'RDS' | 'VHDS'> = {
  [TypeUrl.Cluster]: 'CDS',
  [TypeUrl.ClusterLoadAssignment]: 'EDS',
  [TypeUrl.Listener]: 'LDS',
  [TypeUrl.RouteConfiguration]: 'RDS',
  [TypeUrl.VirtualHost]: 'VHDS',
};

export function isXdsType(url: string): url is XdsTypeUrl {
  return (xdsTypes as readonly string[]).includes(url);
}

export function typeNameOf(url: string): string {
  return url.startsWith(prefix) ? url.slice(prefix.length) : url;
}
