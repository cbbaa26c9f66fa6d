// X.509v3 extensions: the ones the mesh writes, and readers for the ones it reads back
// (Node's X509Certificate exposes neither key identifiers nor private extensions).
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import {
  bool, children, explicit, flagBits, fromDer, implicitBytes, isTag, octets, oid,
  rawChildren, readBits, readBool, readImplicit, readOctets, readOid, readSeq, readUtf8, seq, TagClass, toDer, utf8,
  type Asn1,
} from './der';
import { OID, SERVICES_EXTENSION_OID } from './oids';

export interface Extension {
  oid: string;
  critical: boolean;
  /** the DER inside the extnValue OCTET STRING */
  value: Buffer;
}

export const encodeExtension = (e: Extension): Asn1 =>
  seq([oid(e.oid), ...(e.critical ? [bool(true)] : []), octets(e.value)]);

/** cA is DEFAULT FALSE, so DER leaves it out entirely for a leaf. */
export const basicConstraints = (ca: boolean): Extension =>
  ({ oid: OID.basicConstraints, critical: true, value: toDer(seq(ca ? [bool(true)] : [])) });

export const KU = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;
export const keyUsage = (flags: number[]): Extension =>
  ({ oid: OID.keyUsage, critical: true, value: toDer(flagBits(flags)) });

export const extKeyUsage = (purposes: string[]): Extension =>
  ({ oid: OID.extKeyUsage, critical: false, value: toDer(seq(purposes.map(oid))) });

/** RFC 5280 4.2.1.6: the SAN must be critical when the subject is empty. */
export function subjectAltName(o: { dnsNames?: string[]; uris?: string[]; ips?: string[] }, critical: boolean): Extension {
  const names = [
    ...(o.dnsNames ?? []).map((d) => implicitBytes(2, ascii(d))),
    ...(o.uris ?? []).map((u) => implicitBytes(6, ascii(u))),
    ...(o.ips ?? []).map((ip) => implicitBytes(7, ipBytes(ip))),
  ];
  if (names.length === 0) throw new Error('a subjectAltName needs at least one name');
  return { oid: OID.subjectAltName, critical, value: toDer(seq(names)) };
}

// IA5String: a name that is not 7-bit would be silently mangled, so it is refused
function ascii(s: string): Buffer {
  if (!/^[\x20-\x7e]+$/.test(s)) throw new Error(`not a printable ASCII name: ${JSON.stringify(s)}`);
  return Buffer.from(s, 'ascii');
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdOf(spki: Buffer): Buffer {
  const key = readBits(readSeq(fromDer(spki), 'SubjectPublicKeyInfo')[1], 'subjectPublicKey');
  return crypto.createHash('sha1').update(key).digest();
}

export const subjectKeyIdentifier = (keyId: Buffer): Extension =>
  ({ oid: OID.subjectKeyIdentifier, critical: false, value: toDer(octets(keyId)) });

export const authorityKeyIdentifier = (keyId: Buffer): Extension =>
  ({ oid: OID.authorityKeyIdentifier, critical: false, value: toDer(seq([implicitBytes(0, keyId)])) });

export const servicesExtension = (services: string[]): Extension =>
  ({ oid: SERVICES_EXTENSION_OID, critical: false, value: toDer(seq(services.map(utf8))) });

export const extensionsField = (exts: Extension[]): Asn1 => explicit(3, seq(exts.map(encodeExtension)));

/** Extensions ::= SEQUENCE OF Extension, keyed by OID; a repeated OID is malformed (RFC 5280 4.2). */
export function parseExtensions(node: Asn1): Map<string, Extension> {
  const out = new Map<string, Extension>();
  for (const e of readSeq(node, 'Extensions')) {
    const f = readSeq(e, 'Extension');
    if (f.length < 2 || f.length > 3) throw new Error('Extension: wrong number of fields');
    const id = readOid(f[0], 'extnID');
    const critical = f.length === 3 ? readBool(f[1], 'critical') : false;
    const value = readOctets(f[f.length - 1], 'extnValue');
    if (out.has(id)) throw new Error(`extension ${id} appears twice`);
    out.set(id, { oid: id, critical, value });
  }
  return out;
}

/** The extensions of a DER certificate (empty when it has none). */
export function certificateExtensions(certDer: Buffer): Map<string, Extension> {
  const tbs = readSeq(fromDer(rawChildren(certDer)[0]), 'TBSCertificate');
  const field = tbs.find((n) => isTag(n, TagClass.CONTEXT_SPECIFIC, 3));
  return field ? parseExtensions(children(field, '[3] extensions')[0]) : new Map();
}

export interface GeneralNames {
  uris: string[];
  dnsNames: string[];
  /** how many names of other kinds (IP, email, directory...) */
  others: number;
}

export function parseSubjectAltName(value: Buffer): GeneralNames {
  const out: GeneralNames = { uris: [], dnsNames: [], others: 0 };
  for (const n of readSeq(fromDer(value), 'GeneralNames')) {
    const text = () => {
      const s = readImplicit(n, 'GeneralName').toString('latin1');
      // IA5String: 7-bit only; anything else is a malformed name, not a name to compare
      if (!/^[\x20-\x7e]*$/.test(s)) throw new Error('GeneralName: not printable ASCII');
      return s;
    };
    if (n.tagClass === TagClass.CONTEXT_SPECIFIC && n.type === 6) out.uris.push(text());
    else if (n.tagClass === TagClass.CONTEXT_SPECIFIC && n.type === 2) out.dnsNames.push(text());
    else out.others++;
  }
  return out;
}

export function parseServices(value: Buffer): string[] {
  return readSeq(fromDer(value), 'services').map((n) => readUtf8(n, 'service'));
}

function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!net.isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  // IPv4-mapped tails (::ffff:1.2.3.4) become two hex groups first
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  let s = ip;
  if (v4) {
    const b = v4[1].split('.').map(Number);
    s = ip.slice(0, -v4[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}
