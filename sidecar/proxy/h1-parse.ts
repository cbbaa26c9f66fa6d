// A request head of HTTP/1.1 read strictly (RFC 9112), for the raw listener (h1-server.ts):
// whatever could be read two ways by two parsers is refused, since a proxy that reads a
// request differently from the server behind it is how requests are smuggled. Refused:
// a bare LF or CR, folded header lines, a space before a colon, control characters in a
// value, Content-Length that is not digits or comes twice, Transfer-Encoding beside
// Content-Length or twice, a transfer coding other than chunked (501), a method Node's own
// parser would not take. Header names and duplicates come out as node:http gives them, so
// the request path reads the same headers it always did.
import { METHODS } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { addHeaderLine } from './h1-headers';

export class HeadError extends Error {
  constructor(
    readonly status: 400 | 417 | 431 | 501,
    message: string,
  ) {
    super(message);
  }
}

export type BodyFraming = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

export interface RequestHead {
  method: string;
  url: string;
  version: '1.0' | '1.1';
  rawHeaders: string[];
  headers: IncomingHttpHeaders;
  body: BodyFraming;
  /** the client wants the connection kept after this exchange */
  keepAlive: boolean;
  /** Expect: 100-continue (HTTP/1.1) */
  expectContinue: boolean;
}

const KNOWN_METHODS = new Set(METHODS.filter((m) => m !== 'CONNECT'));

// tchar (RFC 9110 5.6.2)
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;

// field-value octets: HTAB, SP, VCHAR, obs-text
const VALUE = new Uint8Array(256);
VALUE[0x09] = 1;
for (let c = 0x20; c <= 0x7e; c++) VALUE[c] = 1;
for (let c = 0x80; c <= 0xff; c++) VALUE[c] = 1;

// request-target octets: visible, no space (obs-text taken, as node:http takes it)
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1;
for (let c = 0x80; c <= 0xff; c++) TARGET[c] = 1;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Where the head in `buf` ends (the index past its blank line), or -1 while it is incomplete.
 * Throws at a bare LF, so a request that ends its lines the other way is refused at once
 * rather than left waiting for a blank line that never comes. `from`: where the previous
 * look stopped (a head arrives in pieces).
 */
export function headEnd(buf: Buffer, from: number): number {
  let i = buf.indexOf(LF, from);
  while (i !== -1) {
    if (i === 0 || buf[i - 1] !== CR) throw new HeadError(400, 'a line ends in a bare LF');
    // a blank line: CRLF right after the previous line's CRLF (or at the very start)
    if (i >= 3 && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
    i = buf.indexOf(LF, i + 1);
  }
  return -1;
}

/** How many bytes of leading blank lines (CRLF) precede a request line; RFC 9112 2.2 lets a server skip them. */
export function leadingBlankLines(buf: Buffer): number {
  let i = 0;
  while (i + 1 < buf.length && buf[i] === CR && buf[i + 1] === LF) i += 2;
  return i;
}

/** Comma-separated tokens of a header, lower-cased. */
const tokens = (v: string | undefined): string[] => (v === undefined ? [] : v.toLowerCase().split(',').map((t) => t.trim()));

/**
 * The head of `buf` from `start` to `end` (the index past its blank line, headEnd), read
 * strictly. `keep`: headers past this many are still checked but not kept (the request path
 * answers 431 for one over its limit, request-info.ts, so one more than the limit is kept).
 */
export function parseHead(buf: Buffer, start: number, end: number, keep: number): RequestHead {
  // the head without its blank line's CRLF CRLF
  const text = buf.toString('latin1', start, end - 4);
  const lines = text.split('\r\n');
  const requestLine = lines[0];
  const sp1 = requestLine.indexOf(' ');
  const sp2 = sp1 === -1 ? -1 : requestLine.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 === -1) throw new HeadError(400, 'a malformed request line');
  const method = requestLine.slice(0, sp1);
  const url = requestLine.slice(sp1 + 1, sp2);
  const proto = requestLine.slice(sp2 + 1);
  if (!KNOWN_METHODS.has(method)) throw new HeadError(400, `method ${JSON.stringify(method.slice(0, 32))} is not taken`);
  if (!url.length) throw new HeadError(400, 'an empty request target');
  for (let i = 0; i < url.length; i++) if (!TARGET[url.charCodeAt(i)]) throw new HeadError(400, 'a request target with a space or control character');
  let version: '1.0' | '1.1';
  if (proto === 'HTTP/1.1') version = '1.1';
  else if (proto === 'HTTP/1.0') version = '1.0';
  else throw new HeadError(400, 'not HTTP/1.1 or HTTP/1.0');

  const rawHeaders: string[] = [];
  const headers: IncomingHttpHeaders = {};
  let contentLengths = 0;
  let transferEncodings = 0;
  for (let l = 1; l < lines.length; l++) {
    const line = lines[l];
    const first = line.charCodeAt(0);
    if (first === 0x20 || first === 0x09) throw new HeadError(400, 'a folded header line (obs-fold)');
    const colon = line.indexOf(':');
    if (colon <= 0) throw new HeadError(400, 'a header line without a name and colon');
    for (let i = 0; i < colon; i++) if (!TOKEN[line.charCodeAt(i)]) throw new HeadError(400, 'a header name with a character outside a token (a space before the colon?)');
    let vs = colon + 1;
    let ve = line.length;
    while (vs < ve && (line.charCodeAt(vs) === 0x20 || line.charCodeAt(vs) === 0x09)) vs++;
    while (ve > vs && (line.charCodeAt(ve - 1) === 0x20 || line.charCodeAt(ve - 1) === 0x09)) ve--;
    for (let i = vs; i < ve; i++) if (!VALUE[line.charCodeAt(i)]) throw new HeadError(400, 'a header value with a control character');
    const rawName = line.slice(0, colon);
    const value = line.slice(vs, ve);
    const name = rawName.toLowerCase();
    if (name === 'content-length') contentLengths++;
    else if (name === 'transfer-encoding') transferEncodings++;
    // what is over the limit is counted (request-info.ts answers 431), not kept
    if (rawHeaders.length >= keep * 2) continue;
    rawHeaders.push(rawName, value);
    addHeaderLine(headers, name, value);
  }

  let body: BodyFraming = { kind: 'none' };
  if (transferEncodings > 0) {
    if (contentLengths > 0) throw new HeadError(400, 'Content-Length and Transfer-Encoding together');
    if (transferEncodings > 1) throw new HeadError(400, 'Transfer-Encoding twice');
    const codings = tokens(headers['transfer-encoding'] as string);
    if (codings.at(-1) !== 'chunked') throw new HeadError(400, 'Transfer-Encoding whose last coding is not chunked');
    if (codings.length > 1) throw new HeadError(501, `transfer coding ${codings.slice(0, -1).join(', ')} is not implemented`);
    body = { kind: 'chunked' };
  } else if (contentLengths > 0) {
    if (contentLengths > 1) throw new HeadError(400, 'Content-Length twice');
    const cl = headers['content-length'] as string;
    if (!/^\d{1,15}$/.test(cl)) throw new HeadError(400, 'a Content-Length that is not a number');
    const length = Number(cl);
    if (length > 0) body = { kind: 'length', length };
  }

  const connection = tokens(headers.connection as string | undefined);
  const keepAlive = version === '1.1' ? !connection.includes('close') : connection.includes('keep-alive');
  let expectContinue = false;
  const expect = headers.expect as string | undefined;
  if (expect !== undefined) {
    if (expect.toLowerCase() !== '100-continue') throw new HeadError(417, `expectation ${JSON.stringify(expect.slice(0, 64))} is not supported`);
    expectContinue = version === '1.1';
  }
  return { method, url, version, rawHeaders, headers, body, keepAlive, expectContinue };
}
