// Reading and verifying workload certificates (X.509-SVIDs). The SPIFFE ID is taken from
// the DER and cross-checked against Node's own rendering, so the two can never disagree
// about who a peer is.
import * as crypto from 'node:crypto';
import { certificateExtensions, parseServices, parseSubjectAltName } from './extensions';
import { OID, SERVICES_EXTENSION_OID } from './oids';
import { parseSpiffeUri, type SpiffeId } from './spiffe';

export { SERVICES_EXTENSION_OID };

export interface SvidInfo {
  spiffeId: string;
  id: SpiffeId;
  services: string[];
  /** hex, upper-case, as X509Certificate gives it */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint256: string;
}

export type CertVerifyCode = 'NOT_FROM_MESH_ROOT' | 'EXPIRED' | 'NOT_YET_VALID' | 'BAD_SAN' | 'BAD_CERT';

export class CertVerifyError extends Error {
  override readonly name = 'CertVerifyError';
  constructor(readonly code: CertVerifyCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

type CertInput = string | Buffer | crypto.X509Certificate;

/**
 * Checks the leaf was issued and signed by the root, is valid at `now`, has exactly one
 * URI SAN that is a SPIFFE ID (of `trustDomain` when given), and returns what it says.
 */
export function verifySvid(cert: CertInput, rootPem: string, opts: { now?: number; trustDomain?: string } = {}): SvidInfo {
  const now = opts.now ?? Date.now();
  const leaf = toX509(cert, 'certificate');
  const root = rootOf(rootPem);
  let signed = false;
  try {
    signed = leaf.checkIssued(root) && leaf.verify(root.publicKey);
  } catch {
    // a key type the root cannot verify with: not ours either way
  }
  if (!signed) throw new CertVerifyError('NOT_FROM_MESH_ROOT', `certificate (${leaf.subject || leaf.subjectAltName}) was not issued by the mesh root`);
  if (leaf.ca) throw new CertVerifyError('BAD_CERT', 'a CA certificate is not a workload certificate');

  const info = describe(leaf);
  if (now < info.notBefore.getTime()) {
    throw new CertVerifyError('NOT_YET_VALID', `certificate of ${info.spiffeId} is not valid before ${info.notBefore.toISOString()}`);
  }
  if (now > info.notAfter.getTime()) {
    throw new CertVerifyError('EXPIRED', `certificate of ${info.spiffeId} expired at ${info.notAfter.toISOString()}`);
  }
  if (opts.trustDomain !== undefined && info.id.trustDomain !== opts.trustDomain) {
    throw new CertVerifyError('BAD_SAN', `${info.spiffeId} is not in trust domain ${opts.trustDomain}`);
  }
  return info;
}

/** The same facts without verification (for /certs display). */
export function describeSvid(cert: CertInput): SvidInfo {
  return describe(toX509(cert, 'certificate'));
}

/**
 * The one URI SAN of a certificate, or undefined. Node quotes a SAN value holding a comma
 * or quote; splitting such a string is ambiguous, so any quote at all means undefined.
 */
export function uriSanOf(cert: crypto.X509Certificate | { subjectaltname?: string }): string | undefined {
  const san = cert instanceof crypto.X509Certificate ? cert.subjectAltName : cert.subjectaltname;
  if (!san || san.includes('"')) return undefined;
  const uris = san.split(', ').filter((e) => e.startsWith('URI:'));
  return uris.length === 1 ? uris[0].slice('URI:'.length) : undefined;
}

/**
 * The root, parsed once per PEM: every xDS stream the control plane accepts is verified
 * against the same one (2,000 at a sync, as many again when sidecars reconnect).
 */
let lastRoot: { pem: string; x509: crypto.X509Certificate } | undefined;
function rootOf(pem: string): crypto.X509Certificate {
  if (lastRoot?.pem !== pem) lastRoot = { pem, x509: toX509(pem, 'root certificate') };
  return lastRoot.x509;
}

function toX509(cert: CertInput, what: string): crypto.X509Certificate {
  if (cert instanceof crypto.X509Certificate) return cert;
  try {
    return new crypto.X509Certificate(cert);
  } catch (err) {
    throw new CertVerifyError('BAD_CERT', `${what}: not a PEM or DER certificate (${(err as Error).message})`, { cause: err });
  }
}

function describe(cert: crypto.X509Certificate): SvidInfo {
  let uris: string[];
  let services: string[];
  try {
    const exts = certificateExtensions(cert.raw);
    const san = exts.get(OID.subjectAltName);
    uris = san ? parseSubjectAltName(san.value).uris : [];
    const svc = exts.get(SERVICES_EXTENSION_OID);
    services = svc ? parseServices(svc.value) : [];
  } catch (err) {
    throw new CertVerifyError('BAD_CERT', `certificate extensions: ${(err as Error).message}`, { cause: err });
  }
  if (uris.length !== 1) throw new CertVerifyError('BAD_SAN', `certificate has ${uris.length} URI SANs, a workload certificate exactly one`);
  const spiffeId = uris[0];
  if (uriSanOf(cert) !== spiffeId) throw new CertVerifyError('BAD_SAN', `certificate's URI SAN is ambiguous: ${cert.subjectAltName}`);
  let id: SpiffeId;
  try {
    id = parseSpiffeUri(spiffeId);
  } catch (err) {
    throw new CertVerifyError('BAD_SAN', `certificate's URI SAN: ${(err as Error).message}`, { cause: err });
  }
  const notBefore = new Date(Date.parse(cert.validFrom));
  const notAfter = new Date(Date.parse(cert.validTo));
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw new CertVerifyError('BAD_CERT', `certificate validity unreadable: ${cert.validFrom} – ${cert.validTo}`);
  }
  return { spiffeId, id, services, serial: cert.serialNumber, notBefore, notAfter, fingerprint256: cert.fingerprint256 };
}
