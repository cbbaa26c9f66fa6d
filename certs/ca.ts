// The mesh root CA: making it, keeping it on disk, and refusing to start on one that is
// unusable (a control plane signing with the wrong key would hand out certificates no
// sidecar accepts, which is far harder to diagnose than a refusal to start).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spkiDer, unsupportedKey } from './algs';
import { basicConstraints, keyIdOf, keyUsage, KU, subjectKeyIdentifier } from './extensions';
import { newKey } from './keys';
import { isTrustDomain, SpiffeError } from './spiffe';
import { CLOCK_SKEW_MS, distinguishedName, randomSerial, signCertificate } from './x509';

export { CertificateAuthority, CONTROL_PLANE_SNI, type LeafOptions } from './authority';

export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export const ROOT_CERT = 'root-cert.pem';
export const ROOT_KEY = 'root-key.pem';

export class CaExistsError extends Error {
  readonly code = 'CA_EXISTS';
  override readonly name = 'CaExistsError';
}

export class CaLoadError extends Error {
  readonly code = 'CA_UNREADABLE';
  override readonly name = 'CaLoadError';
}

const TEN_YEARS_MS = 10 * 365 * 24 * 3600e3;

export function createRootCA(trustDomain = 'cluster.local', ttlMs = TEN_YEARS_MS, now = Date.now()): KeyPair {
  if (!isTrustDomain(trustDomain)) throw new SpiffeError(`bad trust domain ${JSON.stringify(trustDomain)}`);
  if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new RangeError(`root lifetime must be positive, not ${ttlMs}`);
  const key = newKey();
  const spki = spkiDer(key.publicKey);
  const name = distinguishedName([['O', trustDomain], ['CN', 'Tandem root CA']]);
  const cert = signCertificate({
    serial: randomSerial(),
    issuer: name,
    subject: name,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + ttlMs),
    spki,
    extensions: [
      basicConstraints(true),
      keyUsage([KU.keyCertSign, KU.cRLSign]),
      subjectKeyIdentifier(keyIdOf(spki)),
    ],
    signingKey: key.privateKey,
  });
  return { certPem: cert.toString(), keyPem: key.keyPem };
}

/** `tandem certs init`: make the root, refusing to overwrite one that exists. */
export function initRootCA(dir: string, trustDomain?: string, now = Date.now()): KeyPair {
  const certFile = path.join(dir, ROOT_CERT);
  const keyFile = path.join(dir, ROOT_KEY);
  for (const f of [certFile, keyFile]) {
    if (fs.existsSync(f)) throw new CaExistsError(`${f} already exists; refusing to overwrite the mesh root`);
  }
  const ca = createRootCA(trustDomain, undefined, now);
  fs.mkdirSync(dir, { recursive: true });
  // the key first and exclusively: a crash in between leaves a key without a cert, which
  // the next start reports instead of silently making a second root
  fs.writeFileSync(keyFile, ca.keyPem, { mode: 0o600, flag: 'wx' });
  fs.writeFileSync(certFile, ca.certPem, { mode: 0o644, flag: 'wx' });
  return ca;
}

/** The control plane's start: load the root and check it, creating it when neither file exists. */
export function loadOrCreateRootCA(dir: string, trustDomain?: string, now = Date.now()): KeyPair {
  const certFile = path.join(dir, ROOT_CERT);
  const keyFile = path.join(dir, ROOT_KEY);
  const hasCert = fs.existsSync(certFile);
  const hasKey = fs.existsSync(keyFile);
  if (!hasCert && !hasKey) return initRootCA(dir, trustDomain, now);
  if (!hasCert || !hasKey) {
    const [missing, present] = hasCert ? [keyFile, certFile] : [certFile, keyFile];
    throw new CaLoadError(`${missing} is missing but ${present} exists: restore it, or remove both to make a new mesh root`);
  }
  const root = { certPem: read(certFile), keyPem: read(keyFile) };
  checkRoot(root, certFile, keyFile, now);
  return root;
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CaLoadError(`${file}: cannot read it (${(err as Error).message})`, { cause: err });
  }
}

function checkRoot(root: KeyPair, certFile: string, keyFile: string, now: number): void {
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(root.certPem);
  } catch (err) {
    throw new CaLoadError(`${certFile}: not a PEM certificate (${(err as Error).message})`, { cause: err });
  }
  if (!cert.ca) throw new CaLoadError(`${certFile}: not a CA certificate (no basicConstraints CA:TRUE)`);
  if (!cert.checkIssued(cert) || !cert.verify(cert.publicKey)) {
    throw new CaLoadError(`${certFile}: not a self-signed root certificate`);
  }
  if (Date.parse(cert.validTo) <= now) throw new CaLoadError(`${certFile}: expired on ${cert.validTo}`);

  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(root.keyPem);
  } catch (err) {
    throw new CaLoadError(`${keyFile}: not a PEM private key (${(err as Error).message})`, { cause: err });
  }
  const bad = unsupportedKey(key);
  if (bad) throw new CaLoadError(`${keyFile}: unsupported ${bad}`);
  if (!cert.checkPrivateKey(key)) throw new CaLoadError(`${keyFile}: does not match the public key in ${certFile}`);
}
