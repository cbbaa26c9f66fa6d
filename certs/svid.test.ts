import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { CertificateAuthority, createRootCA } from './ca';
import { newKey } from './keys';
import { SpiffeError } from './spiffe';
import { CertVerifyError, describeSvid, uriSanOf, verifySvid } from './svid';

const T = Date.parse('2030-06-01T12:00:00Z');
const HOUR = 3600e3;
const ID = 'spiffe://cluster.local/ns/shop/sa/reviews';

const root = createRootCA('cluster.local', undefined, T - HOUR);
const ca = new CertificateAuthority(root, { now: () => T });
const workload = (spiffeId = ID, services = ['reviews', 'reviews-v2']) =>
  ca.signWorkload({ publicKey: newKey().publicKey, spiffeId, services, ttlMs: HOUR });

function refused(f: () => unknown): CertVerifyError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(CertVerifyError);
    return err as CertVerifyError;
  }
  throw new Error('accepted');
}

describe('workload certificates (X.509-SVIDs)', () => {
  it('verify against the root and say who, what and until when', () => {
    const pem = workload();
    const info = verifySvid(pem, root.certPem, { now: T + HOUR / 2, trustDomain: 'cluster.local' });
    const x = new crypto.X509Certificate(pem);
    expect(info).toEqual({
      spiffeId: ID,
      id: { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'reviews' },
      services: ['reviews', 'reviews-v2'],
      serial: x.serialNumber,
      notBefore: new Date(T - 60e3),
      notAfter: new Date(T + HOUR),
      fingerprint256: x.fingerprint256,
    });
    expect(x.subject || '').toBe(''); // no CN: the URI SAN is the identity (Node says undefined)
    expect(x.ca).toBe(false);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(verifySvid(x.raw, root.certPem, { now: T }).spiffeId).toBe(ID);
    expect(verifySvid(x, root.certPem, { now: T }).spiffeId).toBe(ID);
    expect(describeSvid(pem)).toEqual(info);
  });

  it('have random, positive 16-byte serials', () => {
    const serials = Array.from({ length: 16 }, () => new crypto.X509Certificate(workload()).serialNumber);
    for (const s of serials) expect(s).toMatch(/^[0-7][0-9A-F]{31}$/);
    expect(new Set(serials).size).toBe(serials.length);
  });

  it('are valid from a minute before issue (clock skew) to the end of their lifetime', () => {
    const pem = workload();
    expect(verifySvid(pem, root.certPem, { now: T - 59e3 }).spiffeId).toBe(ID);
    expect(refused(() => verifySvid(pem, root.certPem, { now: T - 61e3 })).code).toBe('NOT_YET_VALID');
    expect(verifySvid(pem, root.certPem, { now: T + HOUR }).spiffeId).toBe(ID);
    expect(refused(() => verifySvid(pem, root.certPem, { now: T + HOUR + 1000 })).code).toBe('EXPIRED');
  });

  describe('are refused', () => {
    it('from another root, even one with the same name', () => {
      const other = new CertificateAuthority(createRootCA('cluster.local', undefined, T - HOUR), { now: () => T });
      const pem = other.signWorkload({ publicKey: newKey().publicKey, spiffeId: ID, services: [], ttlMs: HOUR });
      expect(refused(() => verifySvid(pem, root.certPem, { now: T })).code).toBe('NOT_FROM_MESH_ROOT');
    });

    it('when the signature or the signed part was tampered with', () => {
      const der = new crypto.X509Certificate(workload()).raw;
      const badSig = Buffer.from(der);
      badSig[badSig.length - 5] ^= 0x01;
      const badBody = Buffer.from(der);
      const at = badBody.indexOf(Buffer.from('reviews-v2'));
      badBody[at] = 'R'.charCodeAt(0);
      for (const forged of [badSig, badBody]) {
        const x = new crypto.X509Certificate(forged);
        expect(x.checkIssued(new crypto.X509Certificate(root.certPem))).toBe(true); // names and key ids still match
        expect(refused(() => verifySvid(x, root.certPem, { now: T })).code).toBe('NOT_FROM_MESH_ROOT');
      }
    });

    it('with two URI SANs', () => {
      const pem = ca.signLeaf(newKey().publicKey, { uris: [ID, 'spiffe://cluster.local/ns/shop/sa/admin'], ttlMs: HOUR });
      expect(refused(() => verifySvid(pem, root.certPem, { now: T })).code).toBe('BAD_SAN');
    });

    it('with no URI SAN', () => {
      const pem = ca.signLeaf(newKey().publicKey, { commonName: 'reviews', dnsNames: ['reviews'], ttlMs: HOUR });
      expect(refused(() => verifySvid(pem, root.certPem, { now: T })).code).toBe('BAD_SAN');
    });

    it('with a URI SAN that is not a workload SPIFFE ID', () => {
      const pem = ca.signLeaf(newKey().publicKey, { uris: ['spiffe://cluster.local/ns/shop/sa/reviews/x'], ttlMs: HOUR });
      expect(refused(() => verifySvid(pem, root.certPem, { now: T })).code).toBe('BAD_SAN');
    });

    it('from another trust domain', () => {
      const pem = workload('spiffe://elsewhere.org/ns/shop/sa/reviews');
      expect(verifySvid(pem, root.certPem, { now: T }).id.trustDomain).toBe('elsewhere.org');
      expect(refused(() => verifySvid(pem, root.certPem, { now: T, trustDomain: 'cluster.local' })).code).toBe('BAD_SAN');
    });

    it('when not a certificate at all', () => {
      expect(refused(() => verifySvid('nonsense', root.certPem, { now: T })).code).toBe('BAD_CERT');
      expect(refused(() => describeSvid(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]))).code).toBe('BAD_CERT');
    });
  });

  it('are only signed for SPIFFE IDs and service names', () => {
    const publicKey = newKey().publicKey;
    expect(() => ca.signWorkload({ publicKey, spiffeId: 'spiffe://cluster.local/ns/shop', services: [], ttlMs: HOUR })).toThrow(SpiffeError);
    expect(() => ca.signWorkload({ publicKey, spiffeId: ID, services: ['Reviews'], ttlMs: HOUR })).toThrow(/service name/);
    expect(() => ca.signWorkload({ publicKey, spiffeId: ID, services: [], ttlMs: 0 })).toThrow(/lifetime/);
  });

  it('have their URI SAN read back only when there is exactly one, unambiguous', () => {
    expect(uriSanOf(new crypto.X509Certificate(workload()))).toBe(ID);
    expect(uriSanOf({ subjectaltname: `DNS:a, URI:${ID}` })).toBe(ID);
    expect(uriSanOf({ subjectaltname: `URI:${ID}, URI:${ID}` })).toBeUndefined();
    expect(uriSanOf({ subjectaltname: 'DNS:a' })).toBeUndefined();
    expect(uriSanOf({})).toBeUndefined();
    // Node quotes a value with a comma in it; such a name is never taken apart
    const tricky = ca.signLeaf(newKey().publicKey, { uris: [`spiffe://x/a, URI:${ID}`], ttlMs: HOUR });
    expect(uriSanOf(new crypto.X509Certificate(tricky))).toBeUndefined();
    expect(refused(() => describeSvid(tricky)).code).toBe('BAD_SAN');
  });
});

const openssl = (() => {
  try {
    return execFileSync('which', ['openssl'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
})();

describe('with real TLS stacks', () => {
  const live = new CertificateAuthority(createRootCA('cluster.local'));
  const liveWorkload = (sa: string) => {
    const key = newKey();
    const spiffeId = `spiffe://cluster.local/ns/shop/sa/${sa}`;
    return { key: key.keyPem, cert: live.signWorkload({ publicKey: key.publicKey, spiffeId, services: [sa], ttlMs: HOUR }), spiffeId };
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-svid-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.skipIf(!openssl)('openssl reads the certificate and verifies it against the root', () => {
    const leaf = liveWorkload('reviews');
    fs.writeFileSync(path.join(dir, 'root.pem'), live.rootPem);
    fs.writeFileSync(path.join(dir, 'leaf.pem'), leaf.cert);
    const text = execFileSync(openssl!, ['x509', '-noout', '-text', '-in', path.join(dir, 'leaf.pem')], { encoding: 'utf8' });
    expect(text).toContain(`URI:${leaf.spiffeId}`);
    expect(text).toContain('CA:FALSE');
    expect(text).toContain('ecdsa-with-SHA256');
    expect(text).toContain('2.25.240046131036377447766101573446440245217');
    const verified = execFileSync(openssl!, ['verify', '-x509_strict', '-CAfile', path.join(dir, 'root.pem'), path.join(dir, 'leaf.pem')], { encoding: 'utf8' });
    expect(verified.trim()).toBe(`${path.join(dir, 'leaf.pem')}: OK`);
  });

  it("node's tls accepts workload certificates on both sides of TLS 1.3 mutual authentication", async () => {
    const s = liveWorkload('reviews');
    const c = liveWorkload('frontend');
    const server = tls.createServer({ key: s.key, cert: s.cert, ca: live.rootPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
    const serverSaw = new Promise<{ authorized: boolean; peer?: string }>((resolve, reject) => {
      server.on('secureConnection', (sock) => {
        resolve({ authorized: sock.authorized, peer: uriSanOf(sock.getPeerX509Certificate() ?? {}) });
        sock.end();
      });
      server.on('tlsClientError', reject);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = tls.connect({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      key: c.key,
      cert: c.cert,
      ca: live.rootPem,
      minVersion: 'TLSv1.3',
      // no DNS name to check: the peer is identified by its SPIFFE ID
      checkServerIdentity: (_host, cert) => (uriSanOf(cert) === s.spiffeId ? undefined : new Error('wrong peer')),
    });
    try {
      await new Promise<void>((resolve, reject) => client.once('secureConnect', resolve).once('error', reject));
      expect(client.authorized).toBe(true);
      expect(client.getProtocol()).toBe('TLSv1.3');
      expect(uriSanOf(client.getPeerCertificate())).toBe(s.spiffeId);
      expect(await serverSaw).toEqual({ authorized: true, peer: c.spiffeId });
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("node's tls refuses a client certificate from another root", async () => {
    const s = liveWorkload('reviews');
    const stranger = new CertificateAuthority(createRootCA('cluster.local'));
    const key = newKey();
    const cert = stranger.signWorkload({ publicKey: key.publicKey, spiffeId: 'spiffe://cluster.local/ns/shop/sa/frontend', services: [], ttlMs: HOUR });
    const server = tls.createServer({ key: s.key, cert: s.cert, ca: live.rootPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
    // Node checks the client's chain after the handshake and drops the socket without a
    // reason (tlsClientError "socket hang up"); what matters is that it never gets through
    const outcome = new Promise<string>((resolve) => {
      server.on('secureConnection', (sock) => {
        resolve(`accepted (authorized: ${sock.authorized})`);
        sock.destroy();
      });
      server.on('tlsClientError', () => resolve('refused'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = tls.connect({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      key: key.keyPem,
      cert,
      ca: live.rootPem,
      minVersion: 'TLSv1.3',
      checkServerIdentity: () => undefined,
    });
    client.on('error', () => {}); // the reset; the server's view is what is checked
    try {
      expect(await outcome).toBe('refused');
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
