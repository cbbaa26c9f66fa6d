// PKCS#10 certification requests (RFC 2986). A workload proves it holds the key by
// signing the request with it; the CA takes only the key and the URI from it.
import * as crypto from 'node:crypto';
import { bits, fromDer, implicitSet, isTag, oid, rawChildren, readBits, readOid, readSeq, seq, set, TagClass, TagType, toDer, uint, type Asn1 } from './der';
import { signatureAlgorithm, signDer, spkiDer, unsupportedKey, verifyDer } from './algs';
import { encodeExtension, parseExtensions, parseSubjectAltName, subjectAltName } from './extensions';
import type { WorkloadKey } from './keys';
import { OID } from './oids';
import { fromPem, toPem } from './pem';

export class CsrError extends Error {
  readonly code = 'BAD_CSR';
  override readonly name = 'CsrError';
}

export interface ParsedCsr {
  publicKey: crypto.KeyObject;
  uris: string[];
  dnsNames: string[];
}

/** Generous for one key and one URI (a P-256 request is ~400 bytes, RSA-4096 ~1.7 KiB). */
const MAX_CSR_BYTES = 16 * 1024;
const LABEL = 'CERTIFICATE REQUEST';

export function buildCsr(key: WorkloadKey | crypto.KeyObject, uriSan: string): string {
  const privateKey = key instanceof crypto.KeyObject ? key : key.privateKey;
  if (privateKey.type !== 'private') throw new TypeError('buildCsr needs the private key: the request is signed with it');
  // the subject stays empty, so the SAN is critical (RFC 5280 4.2.1.6)
  const san = subjectAltName({ uris: [uriSan] }, true);
  const info = seq([
    uint(Buffer.from([0])), // v1
    seq([]),
    fromDer(spkiDer(privateKey)),
    implicitSet(0, [seq([oid(OID.extensionRequest), set([seq([encodeExtension(san)])])])]),
  ]);
  const algorithm = signatureAlgorithm(privateKey);
  const signature = signDer(toDer(info), privateKey);
  return toPem(LABEL, toDer(seq([info, algorithm, bits(signature)])));
}

export function parseCsr(pem: string): ParsedCsr {
  if (typeof pem !== 'string') throw new CsrError('certificate request: not a string');
  if (pem.length > MAX_CSR_BYTES) throw new CsrError(`certificate request: larger than ${MAX_CSR_BYTES} bytes`);
  const der = fromPem(LABEL, pem);
  if (typeof der === 'string') throw new CsrError(`certificate request: ${der}`);

  let top: Asn1[];
  let infoRaw: Buffer;
  try {
    top = readSeq(fromDer(der), 'CertificationRequest');
    infoRaw = rawChildren(der)[0];
  } catch (err) {
    throw new CsrError(`certificate request: bad DER (${message(err)})`, { cause: err });
  }
  const { info, spkiRaw, algOid, signature } = shape(top, infoRaw);

  let publicKey: crypto.KeyObject;
  try {
    publicKey = crypto.createPublicKey({ key: spkiRaw, format: 'der', type: 'spki' });
  } catch (err) {
    throw new CsrError(`certificate request: unreadable public key (${message(err)})`, { cause: err });
  }
  const badKey = unsupportedKey(publicKey);
  if (badKey) throw new CsrError(`certificate request: unsupported key: ${badKey}`);
  const badSig = verifyDer(infoRaw, algOid, signature, publicKey);
  if (badSig) throw new CsrError(`certificate request: ${badSig}`);

  try {
    return { publicKey, ...requestedNames(info) };
  } catch (err) {
    throw new CsrError(`certificate request: bad extensionRequest (${message(err)})`, { cause: err });
  }
}

function shape(top: Asn1[], infoRaw: Buffer): { info: Asn1[]; spkiRaw: Buffer; algOid: string; signature: Buffer } {
  try {
    if (top.length !== 3) throw new Error('CertificationRequest: expected 3 fields');
    const info = readSeq(top[0], 'CertificationRequestInfo');
    if (info.length < 3 || info.length > 4) throw new Error('CertificationRequestInfo: expected 3 or 4 fields');
    if (!toDer(info[0]).equals(Buffer.from([2, 1, 0]))) throw new Error('version is not v1');
    readSeq(info[1], 'subject');
    readSeq(info[2], 'subjectPKInfo');
    const algOid = readOid(readSeq(top[1], 'signatureAlgorithm')[0], 'signatureAlgorithm');
    return { info, spkiRaw: rawChildren(infoRaw)[2], algOid, signature: readBits(top[2], 'signature') };
  } catch (err) {
    throw new CsrError(`certificate request: bad structure (${message(err)})`, { cause: err });
  }
}

/** The names asked for in the extensionRequest attribute (PKCS#9), if any. */
function requestedNames(info: Asn1[]): { uris: string[]; dnsNames: string[] } {
  const attrs = info[3];
  if (attrs === undefined) return { uris: [], dnsNames: [] };
  if (!isTag(attrs, TagClass.CONTEXT_SPECIFIC, 0) || !Array.isArray(attrs.value)) {
    throw new Error('attributes: expected [0] SET OF Attribute');
  }
  const requests = attrs.value.filter((a) => readOid(readSeq(a, 'Attribute')[0], 'attribute type') === OID.extensionRequest);
  if (requests.length === 0) return { uris: [], dnsNames: [] };
  if (requests.length > 1) throw new Error('more than one extensionRequest');
  const values = readSeq(requests[0], 'Attribute')[1];
  if (!isTag(values, TagClass.UNIVERSAL, TagType.SET) || !Array.isArray(values.value) || values.value.length !== 1) {
    throw new Error('extensionRequest: expected one value');
  }
  const san = parseExtensions(values.value[0]).get(OID.subjectAltName);
  if (!san) return { uris: [], dnsNames: [] };
  const names = parseSubjectAltName(san.value);
  return { uris: names.uris, dnsNames: names.dnsNames };
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));
