import { describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import { CertificateAuthority, createRootCA } from './ca';
import { newKey } from './keys';
import { mintToken, TokenError, verifyToken } from './token';

const T = Date.parse('2030-06-01T12:00:00Z');
const DAY = 24 * 3600e3;
const root = createRootCA('cluster.local', undefined, T - DAY);
const mint = (o: Partial<Parameters<typeof mintToken>[1]> = {}, keyPem = root.keyPem) =>
  mintToken(keyPem, { namespace: 'shop', serviceAccount: 'reviews', ttlMs: DAY, now: T, ...o });

function refused(token: string, now = T, rootPem = root.certPem): TokenError {
  try {
    verifyToken(token, rootPem, now);
  } catch (err) {
    expect(err).toBeInstanceOf(TokenError);
    return err as TokenError;
  }
  throw new Error('accepted');
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const parts = (t: string) => t.split('.');
const payloadOf = (t: string) => JSON.parse(Buffer.from(parts(t)[1], 'base64url').toString()) as Record<string, unknown>;

/** A token signed properly by `key` over whatever header and payload text it is given. */
function signRaw(header: unknown, payload: unknown, key = crypto.createPrivateKey(root.keyPem)): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

describe('bootstrap tokens', () => {
  it('round-trip: namespace, service account, services, times', () => {
    const token = mint({ services: ['reviews', 'reviews-v2'] });
    expect(verifyToken(token, root.certPem, T + 1000)).toEqual({
      namespace: 'shop',
      serviceAccount: 'reviews',
      services: ['reviews', 'reviews-v2'],
      issuedAt: T,
      expiresAt: T + DAY,
    });
    expect(JSON.parse(Buffer.from(parts(token)[0], 'base64url').toString())).toEqual({ alg: 'ES256', typ: 'JWT' });
    expect(payloadOf(token)).toMatchObject({ iss: 'tandem', sub: 'ns/shop/sa/reviews', iat: T / 1000, exp: (T + DAY) / 1000 });
    expect(Buffer.from(parts(token)[2], 'base64url')).toHaveLength(64); // JOSE r||s, not DER
  });

  it('bind the service named like the account when no services are given', () => {
    expect(verifyToken(mint(), root.certPem, T).services).toEqual(['reviews']);
    expect(verifyToken(mint({ services: [] }), root.certPem, T).services).toEqual(['reviews']);
  });

  it('signed by an RSA root use RS256', () => {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    // verifyToken only takes the public key from the root certificate; any certificate of the key will do
    const cert = new CertificateAuthority(root, { now: () => T }).signLeaf(crypto.createPublicKey(privateKey), { commonName: 'rsa', ttlMs: DAY });
    const token = mint({}, keyPem);
    expect(JSON.parse(Buffer.from(parts(token)[0], 'base64url').toString()).alg).toBe('RS256');
    expect(verifyToken(token, cert, T).serviceAccount).toBe('reviews');
    expect(refused(token).code).toBe('TOKEN_BAD_SIGNATURE'); // not against the EC root
  });

  it('are refused when signed by another root', () => {
    const forged = mint({}, createRootCA().keyPem);
    expect(refused(forged).code).toBe('TOKEN_BAD_SIGNATURE');
  });

  it('are refused when the payload was edited after signing', () => {
    const [h, p, s] = parts(mint());
    const edited = b64({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), svc: ['payments'] });
    expect(refused(`${h}.${edited}.${s}`).code).toBe('TOKEN_BAD_SIGNATURE');
  });

  it('are refused once expired', () => {
    const token = mint({ ttlMs: 3600e3 });
    expect(verifyToken(token, root.certPem, T + 3600e3 - 1).namespace).toBe('shop');
    expect(refused(token, T + 3600e3).code).toBe('TOKEN_EXPIRED');
  });

  it.each([
    ['alg none', { alg: 'none', typ: 'JWT' }, ''],
    ['HS256 keyed with the root certificate', { alg: 'HS256', typ: 'JWT' }, 'hmac'],
    ['RS256 against an EC root', { alg: 'RS256', typ: 'JWT' }, 'x'],
  ])('refuse %s', (_what, header, sig) => {
    const payload = b64(payloadOf(mint()));
    const input = `${b64(header)}.${payload}`;
    const signature = sig === 'hmac' ? crypto.createHmac('sha256', root.certPem).update(input).digest('base64url') : b64(sig);
    expect(refused(`${input}.${signature}`).code).toBe('TOKEN_BAD_SIGNATURE');
  });

  it.each([
    ['two parts', () => parts(mint()).slice(0, 2).join('.')],
    ['four parts', () => `${mint()}.x`],
    ['bad base64 in the header', () => `e*J.${parts(mint())[1]}.${parts(mint())[2]}`],
    ['bad base64 in the signature', () => `${parts(mint())[0]}.${parts(mint())[1]}.abc$`],
    ['a header that is not JSON', () => `${b64('{alg')}.${parts(mint())[1]}.${parts(mint())[2]}`],
    ['a header that is a JSON array', () => `${b64([1])}.${parts(mint())[1]}.${parts(mint())[2]}`],
    ['an unexpected header field', () => signRaw({ alg: 'ES256', typ: 'JWT', jku: 'https://evil' }, payloadOf(mint()))],
    ['a signed payload that is not JSON', () => signRaw({ alg: 'ES256', typ: 'JWT' }, 'not json')],
    ['a signed payload from another issuer', () => signRaw({ alg: 'ES256' }, { ...payloadOf(mint()), iss: 'someone' })],
    ['a signed payload whose sub disagrees', () => signRaw({ alg: 'ES256' }, { ...payloadOf(mint()), sub: 'ns/shop/sa/admin' })],
    ['a signed payload with a bad namespace', () => signRaw({ alg: 'ES256' }, { ...payloadOf(mint()), ns: 'Shop', sub: 'ns/Shop/sa/reviews' })],
    ['a signed payload with no services', () => signRaw({ alg: 'ES256' }, { ...payloadOf(mint()), svc: [] })],
    ['a signed payload with a non-string service', () => signRaw({ alg: 'ES256' }, { ...payloadOf(mint()), svc: [7] })],
    ['a signed payload without iat', () => signRaw({ alg: 'ES256' }, { ...payloadOf(mint()), iat: undefined })],
    ['a signed payload with exp as a string', () => signRaw({ alg: 'ES256' }, { ...payloadOf(mint()), exp: String(T / 1000 + 60) })],
  ])('are malformed with %s', (_what, make) => {
    expect(refused(make()).code).toBe('TOKEN_MALFORMED');
  });

  it('are refused when oversized, before any parsing', () => {
    const big = signRaw({ alg: 'ES256' }, { ...payloadOf(mint()), pad: 'x'.repeat(8 * 1024) });
    const err = refused(big);
    expect(err.code).toBe('TOKEN_MALFORMED');
    expect(err.message).toMatch(/larger/);
  });

  it('are only minted for valid names', () => {
    expect(() => mint({ namespace: 'Shop' })).toThrow(/namespace/);
    expect(() => mint({ services: ['a b'] })).toThrow(/service/);
    expect(() => mint({ ttlMs: 0 })).toThrow(/lifetime/);
    expect(() => mintToken(newKey().keyPem.replace('PRIVATE', 'PUBLIC'), { namespace: 'a', serviceAccount: 'b', ttlMs: DAY })).toThrow();
  });
});
