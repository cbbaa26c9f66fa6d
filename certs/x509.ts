// Assembling and signing an X.509 v3 certificate (RFC 5280 4.1). Node parses certificates
// but cannot make them, so the TBSCertificate is built here and signed with node:crypto.
import * as crypto from 'node:crypto';
import { bits, explicit, fromDer, oid, rawChildren, seq, set, time, toDer, uint, utf8, type Asn1 } from './der';
import { signatureAlgorithm, signDer } from './algs';
import { extensionsField, type Extension } from './extensions';
import { OID } from './oids';

/** notBefore is back-dated this much, for peers whose clocks run a little behind ours. */
export const CLOCK_SKEW_MS = 60_000;

export interface CertificateFields {
  serial: Buffer;
  /** the issuer's subject, exactly as encoded in the issuer's certificate */
  issuer: Asn1;
  subject: Asn1;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo of the certified key */
  spki: Buffer;
  extensions: Extension[];
  signingKey: crypto.KeyObject;
}

export function signCertificate(f: CertificateFields): crypto.X509Certificate {
  // the algorithm appears inside the signed part too (RFC 5280 4.1.2.3), so it is chosen first
  const algorithm = signatureAlgorithm(f.signingKey);
  const tbs = seq([
    explicit(0, uint(Buffer.from([2]))), // v3
    uint(f.serial),
    algorithm,
    f.issuer,
    seq([time(f.notBefore), time(f.notAfter)]),
    f.subject,
    fromDer(f.spki),
    extensionsField(f.extensions),
  ]);
  const signature = signDer(toDer(tbs), f.signingKey);
  // toDer is deterministic, so the TBS inside is byte for byte what was signed
  return new crypto.X509Certificate(toDer(seq([tbs, algorithm, bits(signature)])));
}

const NAME_OIDS = { O: OID.organizationName, CN: OID.commonName } as const;

/** A Name of one attribute per RDN, UTF8String values (RFC 5280 4.1.2.4). */
export function distinguishedName(attrs: Array<[type: keyof typeof NAME_OIDS, value: string]>): Asn1 {
  return seq(attrs.map(([type, value]) => set([seq([oid(NAME_OIDS[type]), utf8(value)])])));
}

/** The subject Name of a certificate as encoded there, to become the issuer of what it signs. */
export function subjectOf(cert: crypto.X509Certificate): Asn1 {
  const tbs = rawChildren(rawChildren(cert.raw)[0]);
  // version [0] is optional: serial, signature, issuer, validity come before the subject
  const first = tbs[0][0] === 0xa0 ? 1 : 0;
  return fromDer(tbs[first + 4]);
}

/** RFC 5280 4.1.2.2: positive, at most 20 octets; 16 random ones with the top bit clear. */
export function randomSerial(): Buffer {
  const b = crypto.randomBytes(16);
  b[0] = b[0] & 0x7f || 0x01; // a leading zero octet would make DER drop it
  return b;
}
