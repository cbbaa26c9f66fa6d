// DER encoding and decoding on top of node-forge's asn1 module alone (see forge-asn1.d.ts),
// which speaks "binary strings" (one char per byte); everything outside this file deals in
// Buffers.
import type forge from 'node-forge';
import asn1 = require('node-forge/lib/asn1');

export type Asn1 = forge.asn1.Asn1;
/** tag classes and universal types, for readers that check a tag */
export const TagClass = asn1.Class;
export const TagType = asn1.Type;
const U = asn1.Class.UNIVERSAL;
const T = asn1.Type;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

const bin = (b: Buffer): string => b.toString('binary');
const buf = (s: string): Buffer => Buffer.from(s, 'binary');

export const seq = (items: Asn1[]): Asn1 => asn1.create(U, T.SEQUENCE, true, items);
export const set = (items: Asn1[]): Asn1 => asn1.create(U, T.SET, true, items);
export const oid = (dotted: string): Asn1 => asn1.create(U, T.OID, false, bin(oidToDer(dotted)));
export const bool = (v: boolean): Asn1 => asn1.create(U, T.BOOLEAN, false, v ? '\xff' : '\x00');
export const nul = (): Asn1 => asn1.create(U, T.NULL, false, '');
export const octets = (b: Buffer): Asn1 => asn1.create(U, T.OCTETSTRING, false, bin(b));
export const utf8 = (s: string): Asn1 => asn1.create(U, T.UTF8, false, Buffer.from(s, 'utf8').toString('binary'));

/** A non-negative INTEGER from its big-endian magnitude. */
export function uint(magnitude: Buffer): Asn1 {
  let b = magnitude;
  while (b.length > 1 && b[0] === 0 && (b[1] & 0x80) === 0) b = b.subarray(1);
  if (b.length === 0) b = Buffer.alloc(1);
  if (b[0] & 0x80) b = Buffer.concat([Buffer.alloc(1), b]);
  return asn1.create(U, T.INTEGER, false, bin(b));
}

/** BIT STRING holding whole bytes (keys, signatures). */
export const bits = (b: Buffer): Asn1 => asn1.create(U, T.BITSTRING, false, '\x00' + bin(b));

/** BIT STRING of named flags (keyUsage), trailing zero bits dropped as DER requires. */
export function flagBits(flags: number[]): Asn1 {
  const bytes = Buffer.alloc(Math.max(1, Math.floor(Math.max(0, ...flags) / 8) + 1));
  for (const f of flags) bytes[f >> 3] |= 0x80 >> (f & 7);
  const last = bytes[bytes.length - 1];
  let unused = 0;
  while (unused < 7 && last !== 0 && ((last >> unused) & 1) === 0) unused++;
  return asn1.create(U, T.BITSTRING, false, String.fromCharCode(unused) + bin(bytes));
}

/** [n] EXPLICIT wrapping of one element. */
export const explicit = (n: number, inner: Asn1): Asn1 => asn1.create(asn1.Class.CONTEXT_SPECIFIC, n, true, [inner]);
/** [n] IMPLICIT primitive (GeneralName choices, keyIdentifier). */
export const implicitBytes = (n: number, b: Buffer): Asn1 => asn1.create(asn1.Class.CONTEXT_SPECIFIC, n, false, bin(b));
/** [n] IMPLICIT constructed (the CSR's attributes SET). */
export const implicitSet = (n: number, items: Asn1[]): Asn1 => asn1.create(asn1.Class.CONTEXT_SPECIFIC, n, true, items);

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds. */
export function time(d: Date): Asn1 {
  return d.getUTCFullYear() < 2050
    ? asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

export const toDer = (node: Asn1): Buffer => buf(asn1.toDer(node).getBytes());

/** Strict parse of one whole DER element; bit strings are left as bytes. Throws on any flaw. */
export const fromDer = (der: Buffer): Asn1 =>
  asn1.fromDer(bin(der), { strict: true, parseAllBytes: true, decodeBitStrings: false });

// Readers: each checks the node's shape and throws a plain Error naming what it expected,
// which the callers wrap in their own coded errors.

export function children(node: Asn1, what: string): Asn1[] {
  if (!Array.isArray(node.value)) throw new Error(`${what}: expected a constructed element`);
  return node.value;
}

export function isTag(node: Asn1 | undefined, cls: number, type: number): node is Asn1 {
  return node !== undefined && node.tagClass === cls && node.type === type;
}

function primitive(node: Asn1 | undefined, type: number, what: string): string {
  if (!isTag(node, U, type) || typeof node.value !== 'string') throw new Error(`${what}: unexpected element`);
  return node.value;
}

export const readOid = (n: Asn1 | undefined, what: string): string => derToOid(buf(primitive(n, T.OID, what)));
export const readOctets = (n: Asn1 | undefined, what: string): Buffer => buf(primitive(n, T.OCTETSTRING, what));
export const readBool = (n: Asn1 | undefined, what: string): boolean => primitive(n, T.BOOLEAN, what) !== '\x00';
export const readUtf8 = (n: Asn1 | undefined, what: string): string => strictUtf8.decode(buf(primitive(n, T.UTF8, what)));
export const readSeq = (n: Asn1 | undefined, what: string): Asn1[] => {
  if (!isTag(n, U, T.SEQUENCE)) throw new Error(`${what}: expected a SEQUENCE`);
  return children(n, what);
};

/** The bytes of a BIT STRING that holds whole bytes (no unused bits). */
export function readBits(n: Asn1 | undefined, what: string): Buffer {
  const v = primitive(n, T.BITSTRING, what);
  if (v.length === 0 || v.charCodeAt(0) !== 0) throw new Error(`${what}: not a whole-byte BIT STRING`);
  return buf(v.slice(1));
}

/** The raw bytes of a context-specific primitive (GeneralName values). */
export function readImplicit(n: Asn1, what: string): Buffer {
  if (typeof n.value !== 'string') throw new Error(`${what}: expected a primitive element`);
  return buf(n.value);
}

// forge's OID codec stops at 32-bit arcs; UUID OIDs (2.25.<128-bit>) need arbitrary ones
function oidToDer(dotted: string): Buffer {
  if (!/^[0-2]\.(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/.test(dotted)) throw new Error(`bad OID ${dotted}`);
  const arcs = dotted.split('.').map(BigInt);
  const out: number[] = [];
  for (const arc of [arcs[0] * 40n + arcs[1], ...arcs.slice(2)]) {
    const groups = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) groups.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...groups);
  }
  return Buffer.from(out);
}

function derToOid(der: Buffer): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (let i = 0; i < der.length; i++) {
    if (v === 0n && der[i] === 0x80) throw new Error('OID: non-minimal arc');
    v = (v << 7n) | BigInt(der[i] & 0x7f);
    if ((der[i] & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
    } else if (i === der.length - 1) throw new Error('OID: truncated arc');
  }
  if (arcs.length === 0) throw new Error('OID: empty');
  const first = arcs[0] < 80n ? arcs[0] / 40n : 2n;
  return [first, arcs[0] - first * 40n, ...arcs.slice(1)].join('.');
}

/**
 * The exact encodings of the children of a constructed DER element. Signatures cover the
 * bytes as received, so these are sliced from the input rather than re-encoded.
 */
export function rawChildren(der: Buffer): Buffer[] {
  const outer = readTlv(der, 0);
  if ((der[0] & 0x20) === 0) throw new Error('expected a constructed element');
  const out: Buffer[] = [];
  for (let at = outer.contentStart; at < outer.end; ) {
    const tlv = readTlv(der, at);
    if (tlv.end > outer.end) throw new Error('element overruns its parent');
    out.push(der.subarray(at, tlv.end));
    at = tlv.end;
  }
  return out;
}

function readTlv(der: Buffer, at: number): { contentStart: number; end: number } {
  if (at + 2 > der.length || (der[at] & 0x1f) === 0x1f) throw new Error('truncated or unsupported tag');
  let len = der[at + 1];
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > der.length) throw new Error('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[p++];
  }
  if (p + len > der.length) throw new Error('truncated element');
  return { contentStart: p, end: p + len };
}
