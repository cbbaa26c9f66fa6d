// DestinationRule `tls` -> an Envoy UpstreamTlsContext transport socket. Mesh services
// default to ISTIO_MUTUAL, with the workload certificate and the mesh root referenced
// by Istio's SDS names ("default", "ROOTCA"), which the sidecar resolves to its own.
import { pack } from '../../proto/any';
import { TypeUrl } from '../../proto/type-urls';
import type { ClientTls } from '../model/types';
import { SDS_ROOT_CA, SDS_WORKLOAD_CERT } from '../../proto/sds-names';
import type { ClusterSpec } from './translate-cluster';
import { portProtocol } from '../model/services';
import { upgrades } from './translate-cluster-policy';

type Obj = Record<string, unknown>;

/** secrets come over ADS, in Envoy's terms (Tandem's sidecar holds its own) */
export const ADS_SOURCE = { ads: {}, resource_api_version: 'V3' };
export const TLS13 = { tls_minimum_protocol_version: 'TLSv1_3', tls_maximum_protocol_version: 'TLSv1_3' };

/** The mode in force for a cluster: the DestinationRule's, else mTLS inside the mesh and plaintext outside it. */
export function tlsMode(c: ClusterSpec): ClientTls['mode'] {
  return c.policy?.tls?.mode ?? (c.service.mesh ? 'ISTIO_MUTUAL' : 'DISABLE');
}

const sans = (names: string[] | undefined, type: 'URI' | 'DNS'): Obj =>
  names?.length ? { match_typed_subject_alt_names: names.map((n) => ({ san_type: type, matcher: { exact: n } })) } : {};

/** The cluster carries HTTP/2 only: an HTTP/2 or gRPC port, or h2UpgradePolicy UPGRADE. */
function h2Only(c: ClusterSpec): boolean {
  const protocol = portProtocol(c.service, c.port);
  return protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-WEB' || upgrades(c.policy);
}

export function transportSocket(c: ClusterSpec): Obj | undefined {
  const tls = c.policy?.tls;
  const mode = tlsMode(c);
  if (mode === 'DISABLE') return undefined;
  // as Istio: a ServiceEntry's subjectAltNames where the DestinationRule names none
  const subjectAltNames = tls?.subjectAltNames?.length ? tls.subjectAltNames : c.service.entry?.subjectAltNames;
  let ctx: Obj;
  if (mode === 'ISTIO_MUTUAL') {
    // h2 always (HTTP/2 callers, gRPC); http/1.1 too where HTTP/1.1 may cross as itself: the
    // sidecar picks one per connection (Istio's DO_NOT_UPGRADE default)
    ctx = {
      // Istio's SNI form, so a peer could tell which cluster a connection is for
      sni: tls?.sni ?? `outbound_.${c.port}_.${c.subset}_.${c.service.fqdn}`,
      common_tls_context: {
        tls_params: TLS13,
        alpn_protocols: h2Only(c) ? ['h2'] : ['h2', 'http/1.1'],
        tls_certificate_sds_secret_configs: [{ name: SDS_WORKLOAD_CERT, sds_config: ADS_SOURCE }],
        combined_validation_context: {
          default_validation_context: sans(subjectAltNames, 'URI'),
          validation_context_sds_secret_config: { name: SDS_ROOT_CA, sds_config: ADS_SOURCE },
        },
      },
    };
  } else {
    const common: Obj = {};
    // no validation context at all is Envoy's "do not verify"; one without trusted_ca is the system roots here
    if (!tls?.insecureSkipVerify) {
      common.validation_context = { ...(tls?.caCertificates ? { trusted_ca: { filename: tls.caCertificates } } : {}), ...sans(subjectAltNames, 'DNS') };
    }
    if (mode === 'MUTUAL') {
      common.tls_certificates = [{ certificate_chain: { filename: tls!.clientCertificate }, private_key: { filename: tls!.privateKey } }];
    }
    if (h2Only(c)) common.alpn_protocols = ['h2'];
    // a wildcard entry's SNI is the host each request names (the sidecar's default for an unset sni)
    const sni = tls?.sni ?? (c.service.fqdn.startsWith('*') ? undefined : c.service.fqdn);
    ctx = { ...(sni ? { sni } : {}), common_tls_context: common };
  }
  return { name: 'envoy.transport_sockets.tls', typed_config: pack(TypeUrl.UpstreamTlsContext, ctx) };
}
