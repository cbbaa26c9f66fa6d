// A sidecar's inbound Listener: which transports its port accepts (PeerAuthentication)
// and which requests reach its application (AuthorizationPolicy, as Envoy RBAC filters
// ahead of the router). Real Envoy resources, so any xDS client can read them.
import { pack } from '../../proto/any';
import { TypeUrl } from '../../proto/type-urls';
import type { MeshConfig } from '../model/types';
import type { Workload } from '../model/workload';
import { effectiveMtlsMode } from '../model/peer-authentication';
import { rbacHttpFilters } from './translate-rbac';
import { INBOUND_LISTENER } from './names';
import { ADS_SOURCE, TLS13 } from './translate-tls';
import { SDS_ROOT_CA, SDS_WORKLOAD_CERT } from '../../proto/sds-names';

type Obj = Record<string, unknown>;

export const INBOUND_CLUSTER = 'inbound|app';

/** Everything policy can select a workload by; workloads with equal keys get equal listeners. */
export function inboundKey(w: Workload): string {
  const labels = Object.keys(w.labels).sort().map((k) => `${k}=${w.labels[k]}`).join(',');
  return `${w.namespace}|${w.appPort ?? ''}|${labels}`;
}

function hcm(config: MeshConfig, w: Workload, trustDomain: string): Obj {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: pack(TypeUrl.HttpConnectionManager, {
      stat_prefix: 'inbound',
      route_config: {
        name: 'inbound',
        virtual_hosts: [{ name: 'inbound', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: INBOUND_CLUSTER } }] }],
      },
      http_filters: [
        ...rbacHttpFilters(config.authorizationPolicies, w, { trustDomain }),
        { name: 'envoy.filters.http.router', typed_config: pack(TypeUrl.Router, {}) },
      ],
      // the app sees who called: By=<own id>;URI=<peer id>, and never a header a caller made up
      forward_client_cert_details: 'SANITIZE_SET',
      set_current_client_cert_details: { uri: true },
    }),
  };
}

export function inboundListener(w: Workload, config: MeshConfig, trustDomain: string): Obj {
  const mode = effectiveMtlsMode(config.peerAuthentications, w, w.appPort);
  const filters = [hcm(config, w, trustDomain)];
  const chains: Obj[] = [
    {
      name: 'inbound-mtls',
      filter_chain_match: { transport_protocol: 'tls' },
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: pack(TypeUrl.DownstreamTlsContext, {
          require_client_certificate: { value: true },
          common_tls_context: {
            tls_params: TLS13,
            alpn_protocols: ['h2', 'http/1.1'],
            tls_certificate_sds_secret_configs: [{ name: SDS_WORKLOAD_CERT, sds_config: ADS_SOURCE }],
            combined_validation_context: {
              default_validation_context: {},
              validation_context_sds_secret_config: { name: SDS_ROOT_CA, sds_config: ADS_SOURCE },
            },
          },
        }),
      },
      filters,
    },
  ];
  // PERMISSIVE and DISABLE also take plaintext; mTLS is always accepted (a DISABLE peer
  // reached by a client that still sends mTLS keeps working)
  if (mode !== 'STRICT') chains.push({ name: 'inbound-plaintext', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters });
  return {
    name: INBOUND_LISTENER,
    traffic_direction: 'INBOUND',
    address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
    filter_chains: chains,
  };
}
