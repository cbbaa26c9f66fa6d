// The mesh root CA on disk and the certificates it signs. Keys are made with Node's
// crypto (fast, native) and certificates assembled with node-forge.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import forge from 'node-forge';

export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export const ROOT_CERT = 'root-cert.pem';
export const ROOT_KEY = 'root-key.pem';

export class CaExistsError extends Error {
  readonly code = 'CA_EXISTS';
}

function newKeyPem(): string {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function serial(): string {
  // positive, 16 random bytes
  return '01' + crypto.randomBytes(15).toString('hex');
}

export function createRootCA(trustDomain = 'cluster.local', ttlMs = 10 * 365 * 24 * 3600e3): KeyPair {
  const keyPem = newKeyPem();
  const key = forge.pki.privateKeyFromPem(keyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey((key as forge.pki.rsa.PrivateKey).n, (key as forge.pki.rsa.PrivateKey).e);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + ttlMs);
  const name = [{ name: 'organizationName', value: trustDomain }, { name: 'commonName', value: 'Tandem root CA' }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/** `tandem certs init`: make the root, refusing to overwrite one that exists. */
export function initRootCA(dir: string, trustDomain?: string): KeyPair {
  if (fs.existsSync(path.join(dir, ROOT_CERT)) || fs.existsSync(path.join(dir, ROOT_KEY))) {
    throw new CaExistsError(`${path.join(dir, ROOT_CERT)} already exists; refusing to overwrite the mesh root`);
  }
  const ca = createRootCA(trustDomain);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, ROOT_KEY), ca.keyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, ROOT_CERT), ca.certPem, { mode: 0o644 });
  return ca;
}

/** The control plane's start: load the root, creating it on first start. */
export function loadOrCreateRootCA(dir: string, trustDomain?: string): KeyPair {
  const certFile = path.join(dir, ROOT_CERT);
  const keyFile = path.join(dir, ROOT_KEY);
  if (!fs.existsSync(certFile) && !fs.existsSync(keyFile)) return initRootCA(dir, trustDomain);
  return { certPem: fs.readFileSync(certFile, 'utf8'), keyPem: fs.readFileSync(keyFile, 'utf8') };
}

export interface LeafOptions {
  commonName: string;
  dnsNames?: string[];
  ips?: string[];
  uris?: string[];
  ttlMs: number;
  server?: boolean;
  client?: boolean;
}

/** Sign a leaf certificate for a public key (PEM) with the root. */
export function signLeaf(root: KeyPair, publicKeyPem: string, o: LeafOptions): string {
  const caCert = forge.pki.certificateFromPem(root.certPem);
  const caKey = forge.pki.privateKeyFromPem(root.keyPem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + o.ttlMs);
  cert.setSubject([{ name: 'commonName', value: o.commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...(o.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(o.uris ?? []).map((value) => ({ type: 6, value })),
    ...(o.ips ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: o.server ?? true, clientAuth: o.client ?? true },
    { name: 'subjectAltName', altNames, critical: !o.commonName },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** A key made here and a certificate for it, for a server this process runs. */
export function issueServing(root: KeyPair, o: LeafOptions): KeyPair {
  const keyPem = newKeyPem();
  const pub = crypto.createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString();
  return { keyPem, certPem: signLeaf(root, pub, o) };
}

/** The name sidecars expect on the control plane's certificate, whatever address it listens on. */
export const CONTROL_PLANE_SNI = 'tandem-control-plane';
