// Envoy's TLS transport sockets, as far as this sidecar implements them: mesh mTLS
// (Istio's SDS names "default" and "ROOTCA" for the workload certificate and the mesh
// root, which the sidecar holds itself) and TLS originated with files (SIMPLE, MUTUAL).
// Anything else is a DecodeError naming the field: a NACK, not a silent difference.
import { unpack, type AnyMessage } from '../any';
import { TypeUrl } from '../type-urls';
import type { ClusterTls } from './model';
import { DecodeError } from './decode-error';
import { SDS_ROOT_CA, SDS_WORKLOAD_CERT } from '../sds-names';

interface DataSource {
  filename?: string;
  inline_bytes?: Uint8Array;
  inline_string?: string;
  environment_variable?: string;
}
interface SdsSecretConfig {
  name?: string;
  sds_config?: { ads?: object };
}
interface StringMatcherPb {
  exact?: string;
  prefix?: string;
  suffix?: string;
  safe_regex?: object;
  contains?: string;
}
interface ValidationContext {
  trusted_ca?: DataSource;
  match_typed_subject_alt_names?: { san_type?: string; matcher?: StringMatcherPb }[];
  [other: string]: unknown;
}
interface CommonTlsContext {
  tls_params?: { tls_minimum_protocol_version?: string; tls_maximum_protocol_version?: string; [other: string]: unknown };
  tls_certificates?: { certificate_chain?: DataSource; private_key?: DataSource; [other: string]: unknown }[];
  tls_certificate_sds_secret_configs?: SdsSecretConfig[];
  validation_context?: ValidationContext;
  combined_validation_context?: { default_validation_context?: ValidationContext; validation_context_sds_secret_config?: SdsSecretConfig };
  validation_context_sds_secret_config?: SdsSecretConfig;
  alpn_protocols?: string[];
  [other: string]: unknown;
}
interface UpstreamTlsContext {
  common_tls_context?: CommonTlsContext;
  sni?: string;
  [other: string]: unknown;
}
interface TransportSocket {
  name?: string;
  typed_config?: AnyMessage;
}


function onlyFields(o: object, allowed: string[], resource: string, at: string): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    if (!allowed.includes(k)) throw new DecodeError(resource, `${at}.${k}`, 'not supported by this sidecar');
  }
}

function tlsParams(c: CommonTlsContext, resource: string, at: string): void {
  const p = c.tls_params;
  if (!p) return;
  onlyFields(p, ['tls_minimum_protocol_version', 'tls_maximum_protocol_version'], resource, `${at}.tls_params`);
  for (const k of ['tls_minimum_protocol_version', 'tls_maximum_protocol_version'] as const) {
    const v = p[k];
    if (v !== undefined && v !== 'TLS_AUTO' && v !== 'TLSv1_2' && v !== 'TLSv1_3') throw new DecodeError(resource, `${at}.tls_params.${k}`, `${v} is not supported`);
  }
}

function filename(d: DataSource | undefined, resource: string, at: string): string | undefined {
  if (!d) return undefined;
  onlyFields(d, ['filename'], resource, at);
  if (!d.filename) throw new DecodeError(resource, `${at}.filename`, 'must be set');
  return d.filename;
}

function sans(v: ValidationContext | undefined, type: 'URI' | 'DNS', resource: string, at: string): string[] {
  return (v?.match_typed_subject_alt_names ?? []).map((m, i) => {
    const f = `${at}.match_typed_subject_alt_names[${i}]`;
    if (m.san_type !== type) throw new DecodeError(resource, `${f}.san_type`, `only ${type} is supported here`);
    if (m.matcher?.exact === undefined) throw new DecodeError(resource, `${f}.matcher`, 'only exact matches are supported');
    return m.matcher.exact;
  });
}

export function decodeUpstreamTls(ts: TransportSocket, resource: string): ClusterTls {
  const at = 'transport_socket';
  if (ts.typed_config?.type_url !== TypeUrl.UpstreamTlsContext) throw new DecodeError(resource, `${at}.typed_config`, 'only UpstreamTlsContext is supported');
  const u = unpack<UpstreamTlsContext>(ts.typed_config);
  onlyFields(u, ['common_tls_context', 'sni'], resource, `${at}.typed_config`);
  const c = u.common_tls_context ?? {};
  const cat = `${at}.typed_config.common_tls_context`;
  onlyFields(c, ['tls_params', 'tls_certificates', 'tls_certificate_sds_secret_configs', 'validation_context', 'combined_validation_context', 'alpn_protocols'], resource, cat);
  tlsParams(c, resource, cat);
  const alpn = c.alpn_protocols ?? [];
  const sds = c.tls_certificate_sds_secret_configs ?? [];
  if (sds.length) {
    if (sds.length !== 1 || sds[0].name !== SDS_WORKLOAD_CERT) throw new DecodeError(resource, `${cat}.tls_certificate_sds_secret_configs`, `only the workload certificate "${SDS_WORKLOAD_CERT}" is supported`);
    const cv = c.combined_validation_context;
    if (cv?.validation_context_sds_secret_config?.name !== SDS_ROOT_CA) {
      throw new DecodeError(resource, `${cat}.combined_validation_context.validation_context_sds_secret_config.name`, `must be "${SDS_ROOT_CA}" with the workload certificate`);
    }
    const dv = cv.default_validation_context ?? {};
    onlyFields(dv, ['match_typed_subject_alt_names'], resource, `${cat}.combined_validation_context.default_validation_context`);
    return { kind: 'mesh', sni: u.sni ?? '', alpn, identities: sans(dv, 'URI', resource, `${cat}.combined_validation_context.default_validation_context`) };
  }
  if (c.combined_validation_context) throw new DecodeError(resource, `${cat}.combined_validation_context`, 'only with the mesh workload certificate');
  const certs = c.tls_certificates ?? [];
  if (certs.length > 1) throw new DecodeError(resource, `${cat}.tls_certificates`, 'at most one client certificate');
  const cert = certs[0];
  if (cert) onlyFields(cert, ['certificate_chain', 'private_key'], resource, `${cat}.tls_certificates[0]`);
  const v = c.validation_context;
  if (v) onlyFields(v, ['trusted_ca', 'match_typed_subject_alt_names'], resource, `${cat}.validation_context`);
  const certFile = filename(cert?.certificate_chain, resource, `${cat}.tls_certificates[0].certificate_chain`);
  const keyFile = filename(cert?.private_key, resource, `${cat}.tls_certificates[0].private_key`);
  if (cert && (!certFile || !keyFile)) throw new DecodeError(resource, `${cat}.tls_certificates[0]`, 'needs certificate_chain and private_key');
  return {
    kind: 'origination',
    sni: u.sni ?? '',
    alpn,
    verify: v !== undefined,
    caFile: filename(v?.trusted_ca, resource, `${cat}.validation_context.trusted_ca`),
    certFile,
    keyFile,
    dnsNames: sans(v, 'DNS', resource, `${cat}.validation_context`),
  };
}

interface DownstreamTlsContext {
  common_tls_context?: CommonTlsContext;
  require_client_certificate?: { value?: boolean };
  [other: string]: unknown;
}

/** The inbound mTLS chain: it must be the mesh's own (workload certificate, mesh root, client certificates required). */
export function checkDownstreamTls(ts: TransportSocket, resource: string, at: string): void {
  if (ts.typed_config?.type_url !== TypeUrl.DownstreamTlsContext) throw new DecodeError(resource, `${at}.typed_config`, 'only DownstreamTlsContext is supported');
  const d = unpack<DownstreamTlsContext>(ts.typed_config);
  onlyFields(d, ['common_tls_context', 'require_client_certificate'], resource, `${at}.typed_config`);
  if (d.require_client_certificate?.value !== true) throw new DecodeError(resource, `${at}.typed_config.require_client_certificate`, 'must be true (mutual TLS)');
  const c = d.common_tls_context ?? {};
  const cat = `${at}.typed_config.common_tls_context`;
  onlyFields(c, ['tls_params', 'tls_certificate_sds_secret_configs', 'combined_validation_context', 'alpn_protocols'], resource, cat);
  tlsParams(c, resource, cat);
  const sds = c.tls_certificate_sds_secret_configs ?? [];
  if (sds.length !== 1 || sds[0].name !== SDS_WORKLOAD_CERT) throw new DecodeError(resource, `${cat}.tls_certificate_sds_secret_configs`, `must be the workload certificate "${SDS_WORKLOAD_CERT}"`);
  const cv = c.combined_validation_context;
  if (cv?.validation_context_sds_secret_config?.name !== SDS_ROOT_CA) throw new DecodeError(resource, `${cat}.combined_validation_context`, `must validate against "${SDS_ROOT_CA}"`);
  const dv = cv.default_validation_context;
  if (dv) onlyFields(dv, [], resource, `${cat}.combined_validation_context.default_validation_context`);
}
