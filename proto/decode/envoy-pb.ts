// The Envoy v3 messages decode.ts reads, as protobufjs decodes them (snake_case fields,
// enums as names, wrappers as { value }): only the fields Tandem looks at, each optional,
// so a decoder must check what it relies on. Nested messages that have a decoder of their
// own take that decoder's input type.
import type { AnyMessage } from '../any';
import type { decodeUpstreamTls } from './decode-tls';
import type { decodeCircuitBreakers, decodeHashPolicies, decodeOutlierDetection } from './decode-cluster-policy';
import type { decodeRetryPolicy } from './decode-route-policy';
import type { decodeDirectResponse, decodeRedirect } from './decode-route-action';
import type { ClusterDiscoveryPb } from './decode-discovery';
import type { LbConfigPb, UpstreamConnectionOptionsPb } from './decode-cluster-connection';

export interface DurationPb {
  seconds?: number | string;
  nanos?: number;
}
export interface UInt32Pb {
  value?: number;
}
export interface MetadataPb {
  /** fromStruct reads each */
  filter_metadata?: Record<string, unknown>;
}
type TransportSocketPb = Parameters<typeof decodeUpstreamTls>[0];

export interface ClusterPb extends ClusterDiscoveryPb {
  name?: string;
  lb_policy?: string;
  connect_timeout?: DurationPb;
  transport_socket?: TransportSocketPb;
  circuit_breakers?: Parameters<typeof decodeCircuitBreakers>[0];
  outlier_detection?: Parameters<typeof decodeOutlierDetection>[0];
  round_robin_lb_config?: LbConfigPb;
  least_request_lb_config?: LbConfigPb;
  typed_extension_protocol_options?: Record<string, AnyMessage>;
  upstream_connection_options?: UpstreamConnectionOptionsPb;
  common_lb_config?: { healthy_panic_threshold?: { value?: number } } & Record<string, unknown>;
  metadata?: MetadataPb;
}

export interface StringMatcherPb {
  exact?: string;
  prefix?: string;
  safe_regex?: RegexMatcherPb;
  ignore_case?: boolean;
}
export interface RegexMatcherPb {
  regex?: string;
  google_re2?: object;
}
export interface RegexMatchAndSubstitutePb {
  pattern?: RegexMatcherPb;
  substitution?: string;
}

export interface HeaderMatcherPb {
  name?: string;
  string_match?: StringMatcherPb;
  exact_match?: string;
  prefix_match?: string;
  safe_regex_match?: RegexMatcherPb;
  present_match?: boolean;
  invert_match?: boolean;
  treat_missing_header_as_empty?: boolean;
}

export interface HeaderValueOptionPb {
  header?: { key?: string; value?: string };
  append_action?: string;
  append?: { value?: boolean };
}
/** what carries header operations: a route, a virtual host, a weighted cluster */
export interface HeaderOpsPb {
  request_headers_to_add?: HeaderValueOptionPb[];
  request_headers_to_remove?: string[];
  response_headers_to_add?: HeaderValueOptionPb[];
  response_headers_to_remove?: string[];
}

export interface RouteMatchPb {
  prefix?: string;
  path?: string;
  safe_regex?: RegexMatcherPb;
  case_sensitive?: { value?: boolean };
  headers?: HeaderMatcherPb[];
  query_parameters?: { name?: string; string_match?: StringMatcherPb; present_match?: boolean }[];
}

export interface WeightedClusterPb extends HeaderOpsPb {
  name?: string;
  weight?: UInt32Pb;
  host_rewrite_literal?: string;
}

export interface RouteActionPb {
  cluster?: string;
  weighted_clusters?: { clusters?: WeightedClusterPb[] };
  timeout?: DurationPb;
  retry_policy?: Parameters<typeof decodeRetryPolicy>[0];
  hash_policy?: Parameters<typeof decodeHashPolicies>[0];
  request_mirror_policies?: { cluster?: string; runtime_fraction?: { default_value?: { numerator?: number; denominator?: string } } }[];
  prefix_rewrite?: string;
  regex_rewrite?: RegexMatchAndSubstitutePb;
  host_rewrite_literal?: string;
}

export interface RoutePb extends HeaderOpsPb {
  name?: string;
  match?: RouteMatchPb;
  route?: RouteActionPb;
  redirect?: Parameters<typeof decodeRedirect>[0];
  direct_response?: Parameters<typeof decodeDirectResponse>[0];
  typed_per_filter_config?: Record<string, AnyMessage>;
  metadata?: MetadataPb;
}

export interface VirtualHostPb extends HeaderOpsPb {
  name?: string;
  domains?: string[];
  routes?: RoutePb[];
}

export interface RouteConfigurationPb {
  name?: string;
  virtual_hosts?: VirtualHostPb[];
  vhds?: { config_source?: { ads?: object; resource_api_version?: string } };
  max_direct_response_body_size_bytes?: UInt32Pb;
}

export interface HttpFilterPb {
  name?: string;
  typed_config?: AnyMessage;
}

export interface HttpConnectionManagerPb {
  rds?: { route_config_name?: string };
  route_config?: RouteConfigurationPb;
  http_filters?: HttpFilterPb[];
  strip_any_host_port?: boolean;
  forward_client_cert_details?: string;
  set_current_client_cert_details?: Record<string, unknown> & { uri?: boolean };
}

export interface FilterChainPb {
  filter_chain_match?: Record<string, unknown> & { transport_protocol?: string };
  filters?: { name?: string; typed_config?: AnyMessage }[];
  transport_socket?: TransportSocketPb;
}

export interface ListenerPb {
  name?: string;
  traffic_direction?: string;
  filter_chains?: FilterChainPb[];
}
