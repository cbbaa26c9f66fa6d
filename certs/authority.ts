// Signing with the mesh root: workload SVIDs, the control plane's serving certificate,
// and (for tests) any leaf at all.
import * as crypto from 'node:crypto';
import { spkiDer, unsupportedKey } from './algs';
import type { KeyPair } from './ca';
import { readOctets, fromDer, seq, type Asn1 } from './der';
import {
  authorityKeyIdentifier, basicConstraints, certificateExtensions, extKeyUsage, keyIdOf, keyUsage, KU,
  servicesExtension, subjectAltName, type Extension,
} from './extensions';
import { newKey, publicOf } from './keys';
import { OID } from './oids';
import { isServiceName, parseSpiffeUri } from './spiffe';
import { CLOCK_SKEW_MS, distinguishedName, randomSerial, signCertificate, subjectOf } from './x509';

/** The name sidecars expect on the control plane's certificate, whatever address it listens on. */
export const CONTROL_PLANE_SNI = 'tandem-control-plane';

export interface LeafOptions {
  commonName?: string;
  dnsNames?: string[];
  ips?: string[];
  uris?: string[];
  ttlMs: number;
  server?: boolean;
  client?: boolean;
}

export class CertificateAuthority {
  readonly rootPem: string;
  private readonly rootCert: crypto.X509Certificate;
  private readonly rootKey: crypto.KeyObject;
  private readonly issuer: Asn1;
  private readonly rootKeyId: Buffer;
  private readonly now: () => number;

  constructor(root: KeyPair, opts: { now?: () => number } = {}) {
    this.rootPem = root.certPem;
    this.rootCert = new crypto.X509Certificate(root.certPem);
    this.rootKey = crypto.createPrivateKey(root.keyPem);
    if (!this.rootCert.checkPrivateKey(this.rootKey)) throw new Error('the root key does not match the root certificate');
    this.issuer = subjectOf(this.rootCert);
    // the root's own SKI when it has one, so OpenSSL's AKI/SKI issuer matching agrees
    const ski = certificateExtensions(this.rootCert.raw).get(OID.subjectKeyIdentifier);
    this.rootKeyId = ski ? readOctets(fromDer(ski.value), 'subjectKeyIdentifier') : keyIdOf(spkiDer(this.rootCert.publicKey));
    this.now = opts.now ?? Date.now;
  }

  /**
   * A workload SVID: exactly one URI SAN (the SPIFFE ID), no CN (X.509-SVID spec), the
   * services this workload may serve in a private non-critical extension, serverAuth +
   * clientAuth, digitalSignature (+keyEncipherment only for RSA keys), CA:false, AKI,
   * a random positive 16-byte serial, notBefore = now - 60s, notAfter = now + ttlMs.
   */
  signWorkload(o: { publicKey: crypto.KeyObject; spiffeId: string; services: string[]; ttlMs: number }): string {
    parseSpiffeUri(o.spiffeId);
    for (const s of o.services) {
      if (!isServiceName(s)) throw new RangeError(`bad service name ${JSON.stringify(s)}`);
    }
    return this.signLeaf(o.publicKey, { uris: [o.spiffeId], services: o.services, ttlMs: o.ttlMs, server: true, client: true });
  }

  /** A key made here and a certificate for it (the control plane's own serving certificate). */
  issueServing(o: LeafOptions): KeyPair {
    const key = newKey();
    return { keyPem: key.keyPem, certPem: this.signLeaf(key.publicKey, o) };
  }

  /** Signs any leaf for a public key; tests use it to make odd certificates. */
  signLeaf(publicKey: crypto.KeyObject, o: LeafOptions & { services?: string[] }): string {
    if (!(o.ttlMs > 0) || !Number.isFinite(o.ttlMs)) throw new RangeError(`certificate lifetime must be positive, not ${o.ttlMs}`);
    const subjectKey = publicOf(publicKey);
    const badKey = unsupportedKey(subjectKey);
    if (badKey) throw new Error(`cannot certify a ${badKey}`);
    const now = this.now();
    // a leaf outliving its root would be refused anyway; say so in the certificate itself
    const notAfter = Math.min(now + o.ttlMs, Date.parse(this.rootCert.validTo));
    const hasNames = (o.dnsNames?.length ?? 0) + (o.uris?.length ?? 0) + (o.ips?.length ?? 0) > 0;
    if (!o.commonName && !hasNames) throw new Error('a certificate needs a subject name or a subjectAltName');

    const purposes = [...(o.server ?? true ? [OID.serverAuth] : []), ...(o.client ?? true ? [OID.clientAuth] : [])];
    const rsa = subjectKey.asymmetricKeyType === 'rsa';
    const extensions: Extension[] = [
      basicConstraints(false),
      keyUsage(rsa ? [KU.digitalSignature, KU.keyEncipherment] : [KU.digitalSignature]),
      ...(purposes.length ? [extKeyUsage(purposes)] : []),
      ...(hasNames ? [subjectAltName(o, !o.commonName)] : []),
      authorityKeyIdentifier(this.rootKeyId),
      ...(o.services ? [servicesExtension(o.services)] : []),
    ];
    return signCertificate({
      serial: randomSerial(),
      issuer: this.issuer,
      subject: o.commonName ? distinguishedName([['CN', o.commonName]]) : seq([]),
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(notAfter),
      spki: spkiDer(subjectKey),
      extensions,
      signingKey: this.rootKey,
    }).toString();
  }
}
