// The sidecar's checked view of xDS resources. Decoders produce these; the request
// path only ever sees these, never protobuf objects.

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM';

export interface ClusterModel {
  name: string;
  lbPolicy: LbPolicy;
  connectTimeoutMs: number;
  /** endpoints are sidecars: one multiplexed h2 connection per peer */
  mesh: boolean;
  /** what non-mesh endpoints speak: HTTP (HTTP/1.1) or HTTP2/GRPC (h2c) */
  protocol: string;
}

export interface EndpointModel {
  address: string;
  port: number;
  healthy: boolean;
  labels: Record<string, string>;
}

export interface EndpointsModel {
  clusterName: string;
  endpoints: EndpointModel[];
}

export interface ListenerModel {
  name: string;
  routeConfigName: string;
  stripAnyHostPort: boolean;
}

export type StringMatcher =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'regex'; value: string; re: RegExp }
  | { kind: 'present' };

export interface HeaderMatcher {
  name: string;
  match: StringMatcher;
  invert: boolean;
}

export interface HeaderOps {
  /** [name, value, overwrite] */
  add: [string, string, boolean][];
  remove: string[];
}

export interface WeightedCluster {
  name: string;
  weight: number;
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
}

export interface RouteModel {
  name: string;
  path: StringMatcher;
  headers: HeaderMatcher[];
  query: HeaderMatcher[];
  clusters: WeightedCluster[];
  timeoutMs: number; // 0: none
  mirrors: { cluster: string; fraction: number }[];
  prefixRewrite?: string;
  hostRewrite?: string;
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
}

export interface VirtualHostModel {
  name: string;
  domains: string[];
  routes: RouteModel[];
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
}

export interface RouteConfigModel {
  name: string;
  virtualHosts: VirtualHostModel[];
}

export const noHeaderOps = (): HeaderOps => ({ add: [], remove: [] });
