import { afterAll, describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CaExistsError, initRootCA, issueServing, loadOrCreateRootCA, ROOT_CERT, ROOT_KEY } from './ca';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-ca-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('root CA', () => {
  it('is created once, with a private key only its owner can read, and never overwritten', () => {
    const dir = tmp();
    const ca = initRootCA(dir, 'example.org');
    expect(fs.statSync(path.join(dir, ROOT_KEY)).mode & 0o077).toBe(0);
    const cert = new crypto.X509Certificate(fs.readFileSync(path.join(dir, ROOT_CERT)));
    expect(cert.ca).toBe(true);
    expect(cert.subject).toContain('O=example.org');
    expect(() => initRootCA(dir)).toThrow(CaExistsError);
    expect(loadOrCreateRootCA(dir).certPem).toBe(ca.certPem);
  });

  it('signs serving certificates that chain to it and carry the names asked for', () => {
    const root = loadOrCreateRootCA(tmp());
    const leaf = issueServing(root, {
      commonName: 'tandem-control-plane',
      dnsNames: ['tandem-control-plane'],
      ips: ['127.0.0.1'],
      uris: ['spiffe://cluster.local/ns/tandem-system/sa/control-plane'],
      ttlMs: 3600e3,
    });
    const cert = new crypto.X509Certificate(leaf.certPem);
    const rootCert = new crypto.X509Certificate(root.certPem);
    expect(cert.verify(rootCert.publicKey)).toBe(true);
    expect(cert.checkIssued(rootCert)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkHost('tandem-control-plane')).toBe('tandem-control-plane');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.subjectAltName).toContain('URI:spiffe://cluster.local/ns/tandem-system/sa/control-plane');
    expect(cert.checkPrivateKey(crypto.createPrivateKey(leaf.keyPem))).toBe(true);
    const lifetime = Date.parse(cert.validTo) - Date.parse(cert.validFrom);
    expect(lifetime).toBeGreaterThan(3600e3 - 5000);
    expect(lifetime).toBeLessThanOrEqual(3600e3 + 61_000); // notBefore is back-dated a minute for clock skew
  });
});
