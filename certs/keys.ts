// Workload and root keys: ECDSA P-256, made by Node's native crypto (a P-256 key takes
// well under a millisecond; an RSA-2048 key tens of milliseconds).
import * as crypto from 'node:crypto';

export interface WorkloadKey {
  privateKey: crypto.KeyObject;
  publicKey: crypto.KeyObject;
  /** PKCS#8 PEM */
  keyPem: string;
}

export function newKey(): WorkloadKey {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKey, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** The public half, whichever half was given (Node derives it from a private key). */
export const publicOf = (key: crypto.KeyObject): crypto.KeyObject =>
  key.type === 'private' ? crypto.createPublicKey(key) : key;
