// Which keys the mesh accepts and how each signs: the signature algorithm always follows
// from the signer's key (an RSA root made by an older Tandem keeps signing with RSA).
import * as crypto from 'node:crypto';
import { nul, oid, seq, type Asn1 } from './der';
import { OID } from './oids';

type Hash = 'sha256' | 'sha384';

interface SigAlg {
  oid: string;
  keyType: 'ec' | 'rsa';
  hash: Hash;
}

const SIG_ALGS: SigAlg[] = [
  { oid: OID.ecdsaWithSha256, keyType: 'ec', hash: 'sha256' },
  { oid: OID.ecdsaWithSha384, keyType: 'ec', hash: 'sha384' },
  { oid: OID.sha256WithRsa, keyType: 'rsa', hash: 'sha256' },
  { oid: OID.sha384WithRsa, keyType: 'rsa', hash: 'sha384' },
];

const CURVE_HASH: Record<string, Hash> = { prime256v1: 'sha256', secp384r1: 'sha384' };
const MIN_RSA_BITS = 2048;

/** Why this key cannot be used in the mesh, or undefined when it can. */
export function unsupportedKey(key: crypto.KeyObject): string | undefined {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    return d.namedCurve && d.namedCurve in CURVE_HASH ? undefined : `EC curve ${d.namedCurve ?? '?'} (P-256 or P-384 only)`;
  }
  if (key.asymmetricKeyType === 'rsa') {
    return (d.modulusLength ?? 0) >= MIN_RSA_BITS ? undefined : `RSA key of ${d.modulusLength ?? '?'} bits (${MIN_RSA_BITS} at least)`;
  }
  return `${key.asymmetricKeyType ?? 'unknown'} key (EC or RSA only)`;
}

function algFor(key: crypto.KeyObject): SigAlg {
  const why = unsupportedKey(key);
  if (why) throw new Error(`cannot sign with a ${why}`);
  const hash = key.asymmetricKeyType === 'ec' ? CURVE_HASH[key.asymmetricKeyDetails?.namedCurve ?? ''] : 'sha256';
  const alg = SIG_ALGS.find((a) => a.keyType === key.asymmetricKeyType && a.hash === hash);
  if (!alg) throw new Error('no signature algorithm for this key');
  return alg;
}

/** The AlgorithmIdentifier this key signs with. RFC 5758 3.2: ECDSA ones have no parameters; RFC 4055: RSA ones carry NULL. */
export function signatureAlgorithm(key: crypto.KeyObject): Asn1 {
  const alg = algFor(key);
  return seq(alg.keyType === 'rsa' ? [oid(alg.oid), nul()] : [oid(alg.oid)]);
}

/** Signs DER the X.509 way: DER ECDSA signatures (Node's default), PKCS#1 v1.5 for RSA. */
export function signDer(tbs: Buffer, privateKey: crypto.KeyObject): Buffer {
  return crypto.sign(algFor(privateKey).hash, tbs, privateKey);
}

/** Verifies an X.509-style signature; a reason string when it does not verify. */
export function verifyDer(
  tbs: Buffer,
  algOid: string,
  signature: Buffer,
  publicKey: crypto.KeyObject,
): string | undefined {
  const alg = SIG_ALGS.find((a) => a.oid === algOid);
  if (!alg) return `unsupported signature algorithm ${algOid}`;
  if (alg.keyType !== publicKey.asymmetricKeyType) {
    return `signature algorithm ${algOid} does not fit a ${publicKey.asymmetricKeyType} key`;
  }
  let ok: boolean;
  try {
    ok = crypto.verify(alg.hash, tbs, publicKey, signature);
  } catch {
    ok = false; // a malformed DER ECDSA signature throws; for us it is just a bad one
  }
  return ok ? undefined : 'signature does not verify';
}

export function spkiDer(key: crypto.KeyObject): Buffer {
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}
