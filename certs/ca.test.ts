import { afterAll, describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CaExistsError, CaLoadError, CertificateAuthority, createRootCA, initRootCA, loadOrCreateRootCA, ROOT_CERT, ROOT_KEY,
  type KeyPair,
} from './ca';
import { spkiDer } from './algs';
import { fromDer, rawChildren, readOid, readSeq } from './der';
import { basicConstraints, certificateExtensions, keyIdOf, keyUsage, KU, subjectKeyIdentifier } from './extensions';
import { newKey } from './keys';
import { verifySvid } from './svid';
import { distinguishedName, randomSerial, signCertificate } from './x509';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-ca-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const write = (dir: string, files: { cert?: string; key?: string }) => {
  if (files.cert !== undefined) fs.writeFileSync(path.join(dir, ROOT_CERT), files.cert);
  if (files.key !== undefined) fs.writeFileSync(path.join(dir, ROOT_KEY), files.key);
  return dir;
};

function loadError(dir: string, now?: number): CaLoadError {
  try {
    loadOrCreateRootCA(dir, undefined, now);
  } catch (err) {
    expect(err).toBeInstanceOf(CaLoadError);
    expect((err as CaLoadError).code).toBe('CA_UNREADABLE');
    return err as CaLoadError;
  }
  throw new Error('loadOrCreateRootCA accepted it');
}

/** A root like the ones earlier Tandem versions made: RSA-2048, sha256WithRSAEncryption. */
function rsaRoot(): KeyPair {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const name = distinguishedName([['O', 'cluster.local'], ['CN', 'Tandem root CA']]);
  const spki = spkiDer(publicKey);
  const cert = signCertificate({
    serial: randomSerial(), issuer: name, subject: name, spki, signingKey: privateKey,
    notBefore: new Date(Date.now() - 60e3), notAfter: new Date(Date.now() + 365 * 24 * 3600e3),
    extensions: [basicConstraints(true), keyUsage([KU.keyCertSign, KU.cRLSign]), subjectKeyIdentifier(keyIdOf(spki))],
  });
  return { certPem: cert.toString(), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

describe('root CA', () => {
  it('is an EC P-256 self-signed CA for the trust domain', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const root = createRootCA('example.org', undefined, now);
    const cert = new crypto.X509Certificate(root.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('O=example.org\nCN=Tandem root CA');
    expect(cert.checkIssued(cert) && cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const ku = certificateExtensions(cert.raw).get('2.5.29.15');
    expect(ku?.critical).toBe(true);
    expect(ku?.value.toString('hex')).toBe('03020106'); // keyCertSign, cRLSign
    expect(Date.parse(cert.validFrom)).toBe(now - 60e3);
    expect(Date.parse(cert.validTo)).toBe(now + 10 * 365 * 24 * 3600e3);
    expect(cert.checkPrivateKey(crypto.createPrivateKey(root.keyPem))).toBe(true);
  });

  it('is created once, with a private key only its owner can read, and never overwritten', () => {
    const dir = path.join(tmp(), 'a', 'b');
    const ca = initRootCA(dir, 'example.org');
    expect(fs.statSync(path.join(dir, ROOT_KEY)).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, ROOT_CERT)).mode & 0o022).toBe(0);
    expect(new crypto.X509Certificate(fs.readFileSync(path.join(dir, ROOT_CERT))).subject).toContain('O=example.org');
    expect(() => initRootCA(dir)).toThrow(CaExistsError);
    fs.rmSync(path.join(dir, ROOT_CERT));
    expect(() => initRootCA(dir)).toThrow(CaExistsError); // the key alone is enough to refuse
    write(dir, { cert: ca.certPem });
    expect(fs.readFileSync(path.join(dir, ROOT_KEY), 'utf8')).toBe(ca.keyPem);
  });

  it('is made on first start and loaded as it is afterwards', () => {
    const dir = tmp();
    const made = loadOrCreateRootCA(dir, 'example.org');
    expect(fs.existsSync(path.join(dir, ROOT_KEY))).toBe(true);
    expect(loadOrCreateRootCA(dir, 'example.org')).toEqual(made);
  });

  describe('refuses to start on a root it cannot use, naming the file', () => {
    const good = createRootCA();
    const other = createRootCA();

    it('a key that does not match the certificate', () => {
      const dir = write(tmp(), { cert: good.certPem, key: other.keyPem });
      expect(loadError(dir).message).toContain(path.join(dir, ROOT_KEY));
      expect(loadError(dir).message).toMatch(/does not match/);
    });

    it('a garbage certificate file', () => {
      const dir = write(tmp(), { cert: 'garbage\n', key: good.keyPem });
      expect(loadError(dir).message).toContain(path.join(dir, ROOT_CERT));
    });

    it('a garbage key file', () => {
      const dir = write(tmp(), { cert: good.certPem, key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' });
      expect(loadError(dir).message).toContain(path.join(dir, ROOT_KEY));
    });

    it('only the certificate', () => {
      const dir = write(tmp(), { cert: good.certPem });
      expect(loadError(dir).message).toMatch(new RegExp(`^${path.join(dir, ROOT_KEY)} is missing`));
      expect(fs.existsSync(path.join(dir, ROOT_KEY))).toBe(false);
    });

    it('only the key', () => {
      const dir = write(tmp(), { key: good.keyPem });
      expect(loadError(dir).message).toMatch(new RegExp(`^${path.join(dir, ROOT_CERT)} is missing`));
    });

    it('a certificate that is not a CA', () => {
      const leaf = new CertificateAuthority(good).issueServing({ commonName: 'not-a-ca', ttlMs: 3600e3 });
      const dir = write(tmp(), { cert: leaf.certPem, key: leaf.keyPem });
      const err = loadError(dir);
      expect(err.message).toContain(path.join(dir, ROOT_CERT));
      expect(err.message).toMatch(/not a CA/);
    });

    it('an expired root', () => {
      const old = createRootCA('cluster.local', 3600e3, Date.now() - 2 * 3600e3);
      const dir = write(tmp(), { cert: old.certPem, key: old.keyPem });
      expect(loadError(dir).message).toMatch(/expired/);
      expect(loadOrCreateRootCA(dir, undefined, Date.now() - 1.5 * 3600e3).certPem).toBe(old.certPem);
    });
  });
});

describe('CertificateAuthority', () => {
  it('issues serving certificates that chain to the root and carry the names asked for', () => {
    const root = loadOrCreateRootCA(tmp());
    const leaf = new CertificateAuthority(root).issueServing({
      commonName: 'tandem-control-plane',
      dnsNames: ['tandem-control-plane'],
      ips: ['127.0.0.1', '::1'],
      uris: ['spiffe://cluster.local/ns/tandem-system/sa/control-plane'],
      ttlMs: 3600e3,
      client: false,
    });
    const cert = new crypto.X509Certificate(leaf.certPem);
    const rootCert = new crypto.X509Certificate(root.certPem);
    expect(cert.verify(rootCert.publicKey)).toBe(true);
    expect(cert.checkIssued(rootCert)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.subject).toBe('CN=tandem-control-plane');
    expect(cert.checkHost('tandem-control-plane')).toBe('tandem-control-plane');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('::1')).toBe('::1');
    expect(cert.subjectAltName).toContain('URI:spiffe://cluster.local/ns/tandem-system/sa/control-plane');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth only
    expect(cert.checkPrivateKey(crypto.createPrivateKey(leaf.keyPem))).toBe(true);
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    const lifetime = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    expect(lifetime).toBeGreaterThan(3600e3 - 5000);
    expect(lifetime).toBeLessThanOrEqual(3600e3 + 61_000); // notBefore is back-dated a minute for clock skew
  });

  it('still signs, with RSA, from an RSA root made by an earlier version', () => {
    const made = rsaRoot();
    const root = loadOrCreateRootCA(write(tmp(), { cert: made.certPem, key: made.keyPem }));
    const ca = new CertificateAuthority(root);
    const key = newKey();
    const spiffeId = 'spiffe://cluster.local/ns/default/sa/web';
    const leaf = new crypto.X509Certificate(ca.signWorkload({ publicKey: key.publicKey, spiffeId, services: ['web'], ttlMs: 3600e3 }));
    expect(leaf.publicKey.asymmetricKeyType).toBe('ec');
    expect(verifySvid(leaf, root.certPem).spiffeId).toBe(spiffeId);
    const signatureAlgorithm = readOid(readSeq(fromDer(rawChildren(leaf.raw)[1]), 'alg')[0], 'alg');
    expect(signatureAlgorithm).toBe('1.2.840.113549.1.1.11'); // sha256WithRSAEncryption
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });

  it('asks for keyEncipherment only for RSA keys (ECDSA keys cannot encipher)', () => {
    const ca = new CertificateAuthority(createRootCA());
    const keyUsageDer = (pem: string) =>
      certificateExtensions(new crypto.X509Certificate(pem).raw).get('2.5.29.15')?.value.toString('hex');
    const rsaKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    expect(keyUsageDer(ca.signLeaf(rsaKey, { commonName: 'r', ttlMs: 3600e3 }))).toBe('030205a0'); // digitalSignature, keyEncipherment
    expect(keyUsageDer(ca.signLeaf(newKey().publicKey, { commonName: 'e', ttlMs: 3600e3 }))).toBe('03020780'); // digitalSignature
  });

  it('refuses a root whose key does not match', () => {
    expect(() => new CertificateAuthority({ certPem: createRootCA().certPem, keyPem: createRootCA().keyPem })).toThrow(/does not match/);
  });
});
