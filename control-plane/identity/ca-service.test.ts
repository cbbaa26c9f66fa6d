import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CertificateAuthority, createRootCA } from '../../certs/ca';
import { buildCsr } from '../../certs/csr';
import { newKey } from '../../certs/keys';
import { mintToken } from '../../certs/token';
import { verifySvid } from '../../certs/svid';
import { caHandlers } from './ca-service';

const root = createRootCA('cluster.local');
const ca = new CertificateAuthority(root);
const ID = (sa: string, ns = 'default') => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

interface Outcome {
  chain?: string[];
  error?: { code: number; details: string };
  refused: string[];
  issued: { via: string; services: string[]; renewedFrom?: string }[];
}

function call(o: { csr: string; token?: string; peerCertPem?: string; ttlSeconds?: number; certTtlMs?: number }): Promise<Outcome> {
  const out: Outcome = { refused: [], issued: [] };
  const handlers = caHandlers({
    ca,
    trustDomain: 'cluster.local',
    certTtlMs: o.certTtlMs ?? 3600e3,
    onIssued: (_id, services, via, cert) => out.issued.push({ via, services, renewedFrom: cert.renewedFrom }),
    onRefused: (reason) => out.refused.push(reason),
  });
  const metadata = new grpc.Metadata();
  if (o.token) metadata.set('authorization', `Bearer ${o.token}`);
  const fake = {
    request: { csr: o.csr, validity_duration: o.ttlSeconds ?? 0 },
    metadata,
    // what grpc-js reports for a peer whose certificate the handshake verified
    getAuthContext: () => (o.peerCertPem ? { sslPeerCertificate: { raw: new X509Certificate(o.peerCertPem).raw } } : {}),
  };
  return new Promise((resolve) => {
    (handlers.CreateCertificate as (c: unknown, cb: (e: { code: number; details: string } | null, r?: { cert_chain: string[] }) => void) => void)(fake, (e, r) => {
      if (e) out.error = { code: e.code, details: e.details };
      else out.chain = r!.cert_chain;
      resolve(out);
    });
  });
}

const token = (sa: string, services?: string[], o: { ns?: string; key?: string; ttlMs?: number; now?: number } = {}) =>
  mintToken(o.key ?? root.keyPem, { namespace: o.ns ?? 'default', serviceAccount: sa, services, ttlMs: o.ttlMs ?? 3600e3, now: o.now });

describe('the CA service', () => {
  it('signs the identity a token proves, carrying its services, leaf then root', async () => {
    const k = newKey();
    const r = await call({ csr: buildCsr(k, ID('reviews')), token: token('reviews', ['reviews', 'reviews-canary']) });
    expect(r.error).toBeUndefined();
    expect(r.chain).toHaveLength(2);
    expect(r.chain![1]).toBe(root.certPem);
    const info = verifySvid(r.chain![0], root.certPem, { trustDomain: 'cluster.local' });
    expect(info.spiffeId).toBe(ID('reviews'));
    expect(info.services).toEqual(['reviews', 'reviews-canary']);
    expect(r.issued).toEqual([{ via: 'token', services: ['reviews', 'reviews-canary'], renewedFrom: undefined }]);
  });

  it('renews over the current certificate and keeps the service binding the token made', async () => {
    const first = await call({ csr: buildCsr(newKey(), ID('reviews')), token: token('reviews', ['reviews', 'details']) });
    const renewed = await call({ csr: buildCsr(newKey(), ID('reviews')), peerCertPem: first.chain![0] });
    expect(renewed.error).toBeUndefined();
    expect(verifySvid(renewed.chain![0], root.certPem).services).toEqual(['reviews', 'details']);
    expect(renewed.issued[0].via).toBe('certificate');
    expect(renewed.issued[0].renewedFrom).toBe(verifySvid(first.chain![0], root.certPem).serial);
  });

  it('caps the lifetime at --cert-ttl', async () => {
    const r = await call({ csr: buildCsr(newKey(), ID('reviews')), token: token('reviews'), ttlSeconds: 86_400, certTtlMs: 10_000 });
    const info = verifySvid(r.chain![0], root.certPem);
    expect(info.notAfter.getTime() - Date.now()).toBeLessThanOrEqual(10_000);
  });

  const refusals: [string, () => Parameters<typeof call>[0], number, RegExp, string][] = [
    ['no credential', () => ({ csr: buildCsr(newKey(), ID('reviews')) }), grpc.status.UNAUTHENTICATED, /no credential/, 'NO_CREDENTIAL'],
    ['a forged token (another root signed it)', () => ({ csr: buildCsr(newKey(), ID('reviews')), token: token('reviews', undefined, { key: createRootCA().keyPem }) }), grpc.status.UNAUTHENTICATED, /token refused/, 'TOKEN_BAD_SIGNATURE'],
    ['an expired token', () => ({ csr: buildCsr(newKey(), ID('reviews')), token: token('reviews', undefined, { ttlMs: 1000, now: Date.now() - 10_000 }) }), grpc.status.UNAUTHENTICATED, /token refused/, 'TOKEN_EXPIRED'],
    ['garbage for a token', () => ({ csr: buildCsr(newKey(), ID('reviews')), token: 'not-a-token' }), grpc.status.UNAUTHENTICATED, /token refused/, 'TOKEN_MALFORMED'],
    ['a token for service account a asking for b', () => ({ csr: buildCsr(newKey(), ID('b')), token: token('a') }), grpc.status.PERMISSION_DENIED, /asks for .*sa\/b.*proves .*sa\/a/, 'IDENTITY_MISMATCH'],
    ['a token for another namespace', () => ({ csr: buildCsr(newKey(), ID('reviews', 'prod')), token: token('reviews') }), grpc.status.PERMISSION_DENIED, /proves .*ns\/default/, 'IDENTITY_MISMATCH'],
    ['a CSR that is not one', () => ({ csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', token: token('reviews') }), grpc.status.INVALID_ARGUMENT, /./, 'BAD_CSR'],
  ];
  for (const [name, req, code, detail, reason] of refusals) {
    it(`refuses ${name}`, async () => {
      const r = await call(req());
      expect(r.chain).toBeUndefined();
      expect(r.error?.code).toBe(code);
      expect(r.error?.details).toMatch(detail);
      expect(r.refused).toEqual([reason]);
    });
  }

  it('refuses a renewal whose certificate is for another identity than the CSR', async () => {
    const a = await call({ csr: buildCsr(newKey(), ID('a')), token: token('a') });
    const r = await call({ csr: buildCsr(newKey(), ID('b')), peerCertPem: a.chain![0] });
    expect(r.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(r.error?.details).toMatch(/certificate proves .*sa\/a/);
  });
});
