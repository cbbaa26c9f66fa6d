// Bootstrap tokens: JWTs (RFC 7519, compact JWS) signed with the mesh root key, binding a
// namespace, a service account and the services that workload may serve. Only the one
// algorithm that fits the root key is accepted, so neither 'none' nor an HMAC keyed with
// the (public) root certificate can get through.
import * as crypto from 'node:crypto';
import { isNamespace, isServiceAccount, isServiceName, SpiffeError } from './spiffe';

export interface TokenClaims {
  namespace: string;
  serviceAccount: string;
  services: string[];
  /** ms */
  issuedAt: number;
  /** ms */
  expiresAt: number;
}

export type TokenErrorCode = 'TOKEN_MALFORMED' | 'TOKEN_BAD_SIGNATURE' | 'TOKEN_EXPIRED';

export class TokenError extends Error {
  override readonly name = 'TokenError';
  constructor(readonly code: TokenErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const ISSUER = 'tandem';
const MAX_TOKEN_BYTES = 8 * 1024;
const MAX_SERVICES = 64;

type Alg = 'ES256' | 'ES384' | 'RS256';
const HASH: Record<Alg, string> = { ES256: 'sha256', ES384: 'sha384', RS256: 'sha256' };

function algFor(key: crypto.KeyObject): Alg {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1') return 'ES256';
  if (key.asymmetricKeyType === 'ec' && curve === 'secp384r1') return 'ES384';
  throw new Error(`no JWS algorithm for a ${key.asymmetricKeyType ?? 'unknown'} ${curve ?? ''} key`);
}

// JWS (RFC 7518 3.4) wants ECDSA signatures as raw r||s, not X.509's DER
const keyFor = <K>(alg: Alg, key: K) => (alg === 'RS256' ? { key } : { key, dsaEncoding: 'ieee-p1363' as const });

const b64 = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export function mintToken(
  keyPem: string,
  o: { namespace: string; serviceAccount: string; services?: string[]; ttlMs: number; now?: number },
): string {
  const key = crypto.createPrivateKey(keyPem);
  const alg = algFor(key);
  if (!isNamespace(o.namespace)) throw new SpiffeError(`bad namespace ${JSON.stringify(o.namespace)}`);
  if (!isServiceAccount(o.serviceAccount)) throw new SpiffeError(`bad service account ${JSON.stringify(o.serviceAccount)}`);
  const services = o.services?.length ? o.services : [o.serviceAccount];
  const badService = services.find((s) => !isServiceName(s));
  if (badService !== undefined) throw new RangeError(`bad service name ${JSON.stringify(badService)}`);
  if (services.length > MAX_SERVICES) throw new RangeError(`at most ${MAX_SERVICES} services in a token`);
  const now = o.now ?? Date.now();
  const iat = Math.floor(now / 1000);
  const exp = Math.floor((now + o.ttlMs) / 1000);
  if (!Number.isSafeInteger(exp) || exp <= iat) throw new RangeError(`token lifetime must be at least a second, not ${o.ttlMs} ms`);

  const payload = { iss: ISSUER, sub: `ns/${o.namespace}/sa/${o.serviceAccount}`, ns: o.namespace, sa: o.serviceAccount, svc: services, iat, exp };
  const signingInput = `${b64(JSON.stringify({ alg, typ: 'JWT' }))}.${b64(JSON.stringify(payload))}`;
  const signature = crypto.sign(HASH[alg], Buffer.from(signingInput), keyFor(alg, key));
  return `${signingInput}.${b64(signature)}`;
}

/** Verifies the header, the signature against the root certificate's key, then the claims. */
export function verifyToken(token: string, rootPem: string, now = Date.now()): TokenClaims {
  if (typeof token !== 'string') throw new TokenError('TOKEN_MALFORMED', 'token: not a string');
  if (token.length > MAX_TOKEN_BYTES) throw new TokenError('TOKEN_MALFORMED', `token: larger than ${MAX_TOKEN_BYTES} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('TOKEN_MALFORMED', `token: ${parts.length} parts, a JWT has 3`);
  const [headerB64, payloadB64, signatureB64] = parts;
  const header = json(headerB64, 'header');

  const extra = Object.keys(header).filter((k) => k !== 'alg' && k !== 'typ');
  if (extra.length) throw new TokenError('TOKEN_MALFORMED', `token header: unexpected ${extra.join(', ')}`);
  if (typeof header.alg !== 'string') throw new TokenError('TOKEN_MALFORMED', 'token header: no alg');
  if (header.typ !== undefined && header.typ !== 'JWT') throw new TokenError('TOKEN_MALFORMED', 'token header: typ is not JWT');
  const rootKey = new crypto.X509Certificate(rootPem).publicKey;
  const alg = algFor(rootKey);
  if (header.alg !== alg) {
    throw new TokenError('TOKEN_BAD_SIGNATURE', `token alg ${JSON.stringify(header.alg).slice(0, 40)} refused: the mesh root signs ${alg}`);
  }
  const signature = base64url(signatureB64, 'signature');
  let ok = false;
  try {
    ok = crypto.verify(HASH[alg], Buffer.from(`${headerB64}.${payloadB64}`), keyFor(alg, rootKey), signature);
  } catch {
    // a signature of the wrong length or shape is just a bad signature
  }
  if (!ok) throw new TokenError('TOKEN_BAD_SIGNATURE', 'token signature does not verify against the mesh root');

  const claims = readClaims(json(payloadB64, 'payload'));
  if (claims.expiresAt <= now) {
    throw new TokenError('TOKEN_EXPIRED', `token expired at ${new Date(claims.expiresAt).toISOString()}`);
  }
  return claims;
}

function readClaims(p: Record<string, unknown>): TokenClaims {
  const bad = (what: string): never => {
    throw new TokenError('TOKEN_MALFORMED', `token claims: ${what}`);
  };
  if (p.iss !== ISSUER) bad(`iss is not ${ISSUER}`);
  const ns = typeof p.ns === 'string' && isNamespace(p.ns) ? p.ns : bad('ns is not a namespace name');
  const sa = typeof p.sa === 'string' && isServiceAccount(p.sa) ? p.sa : bad('sa is not a service account name');
  if (p.sub !== `ns/${ns}/sa/${sa}`) bad('sub does not match ns and sa');
  const svc = p.svc;
  if (!Array.isArray(svc) || svc.length === 0 || svc.length > MAX_SERVICES) bad(`svc is not a list of 1 to ${MAX_SERVICES} services`);
  const services = (svc as unknown[]).map((s) => (typeof s === 'string' && isServiceName(s) ? s : bad('svc holds a bad service name')));
  const iat = Number.isSafeInteger(p.iat) ? (p.iat as number) : bad('iat is not an integer');
  const exp = Number.isSafeInteger(p.exp) ? (p.exp as number) : bad('exp is not an integer');
  if (exp <= iat) bad('exp is not after iat');
  return { namespace: ns, serviceAccount: sa, services, issuedAt: iat * 1000, expiresAt: exp * 1000 };
}

function base64url(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'base64url');
  // Node's decoder skips junk; re-encoding catches it and any non-canonical trailing bits
  if (s.length === 0 || b.toString('base64url') !== s) throw new TokenError('TOKEN_MALFORMED', `token ${what}: bad base64url`);
  return b;
}

function json(s: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(base64url(s, what).toString('utf8'));
  } catch (err) {
    if (err instanceof TokenError) throw err;
    throw new TokenError('TOKEN_MALFORMED', `token ${what}: not JSON`, { cause: err });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TokenError('TOKEN_MALFORMED', `token ${what}: not a JSON object`);
  return v as Record<string, unknown>;
}
