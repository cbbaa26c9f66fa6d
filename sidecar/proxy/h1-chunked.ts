// A chunked request body (RFC 9112 7.1) read strictly, as it arrives in pieces: a chunk size
// is hex digits (at most 13 of them), an extension is skipped but bounded, every line ends
// in CRLF, every chunk's data is followed by CRLF, trailers are read and dropped (the
// request path forwards none). Anything else is a malformed body: the request fails and
// the connection closes, since where this body ends, and so where the next request starts,
// is no longer known.
import { HeadError } from './h1-parse';

const CR = 0x0d;
const LF = 0x0a;
/** a chunk-size line with its extensions */
const MAX_SIZE_LINE = 4096;
/** 2^52: far beyond any body, still an exact number */
const MAX_HEX_DIGITS = 13;

type State = 'size' | 'data' | 'data-crlf' | 'trailers' | 'done';

const OVER_LIMIT: Record<State, string> = {
  size: 'a chunk-size line too long',
  'data-crlf': 'chunk data not followed by CRLF',
  trailers: 'chunked trailers too large',
  data: '',
  done: '',
};

const hexValue = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1);

export class ChunkedDecoder {
  private state: State = 'size';
  private remaining = 0;
  /** a line (size or trailer) begun in an earlier piece */
  private line: Buffer[] = [];
  private lineBytes = 0;
  private trailerBytes = 0;

  constructor(private readonly maxTrailerBytes: number) {}

  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * Reads what it can of `buf` from `at`, handing body bytes to `onData`; returns where it
   * stopped (the end of `buf`, or just past the body once it is done: the rest is the next
   * request's). Throws HeadError(400) on a malformed body.
   */
  feed(buf: Buffer, at: number, onData: (chunk: Buffer) => void): number {
    let i = at;
    while (i < buf.length && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, buf.length - i);
        onData(buf.subarray(i, i + n));
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = 'data-crlf';
        continue;
      }
      if (this.state === 'data-crlf') {
        // the CRLF after a chunk's data, possibly split across pieces
        const got = this.takeLine(buf, i, 2);
        if (got === -1) return buf.length;
        i = got;
        const l = this.popLine();
        if (l.length !== 2) throw new HeadError(400, 'chunk data not followed by CRLF');
        this.state = 'size';
        continue;
      }
      const limit = this.state === 'size' ? MAX_SIZE_LINE : this.maxTrailerBytes - this.trailerBytes;
      const got = this.takeLine(buf, i, limit);
      if (got === -1) return buf.length;
      i = got;
      const line = this.popLine();
      if (this.state === 'size') this.onSizeLine(line);
      else this.onTrailerLine(line);
    }
    return i;
  }

  /** Gathers a line up to its LF; the index past it, or -1 if the line goes on in the next piece. */
  private takeLine(buf: Buffer, at: number, limit: number): number {
    const lf = buf.indexOf(LF, at);
    const end = lf === -1 ? buf.length : lf + 1;
    this.lineBytes += end - at;
    if (this.lineBytes > limit) throw new HeadError(400, OVER_LIMIT[this.state]);
    this.line.push(buf.subarray(at, end));
    return lf === -1 ? -1 : end;
  }

  private popLine(): Buffer {
    const l = this.line.length === 1 ? this.line[0] : Buffer.concat(this.line);
    this.line = [];
    this.lineBytes = 0;
    if (l.length < 2 || l[l.length - 2] !== CR) throw new HeadError(400, 'a line of a chunked body ends in a bare LF');
    return l;
  }

  private onSizeLine(l: Buffer): void {
    const end = l.length - 2;
    let size = 0;
    let i = 0;
    for (; i < end; i++) {
      const v = hexValue(l[i]);
      if (v === -1) break;
      if (i >= MAX_HEX_DIGITS) throw new HeadError(400, 'a chunk size too large');
      size = size * 16 + v;
    }
    if (i === 0) throw new HeadError(400, 'a chunk size that is not hex');
    // chunk extensions: BWS ";" ..., skipped; no control characters in them
    let j = i;
    while (j < end && (l[j] === 0x20 || l[j] === 0x09)) j++;
    if (j < end && l[j] !== 0x3b) throw new HeadError(400, 'a chunk size followed by something other than an extension');
    for (; j < end; j++) if ((l[j] < 0x20 && l[j] !== 0x09) || l[j] === 0x7f) throw new HeadError(400, 'a control character in a chunk extension');
    if (size === 0) {
      this.state = 'trailers';
      return;
    }
    this.remaining = size;
    this.state = 'data';
  }

  private onTrailerLine(l: Buffer): void {
    if (l.length === 2) {
      this.state = 'done';
      return;
    }
    this.trailerBytes += l.length;
    const first = l[0];
    if (first === 0x20 || first === 0x09) throw new HeadError(400, 'a folded trailer line');
    for (let i = 0; i < l.length - 2; i++) if (l[i] === CR || (l[i] < 0x20 && l[i] !== 0x09) || l[i] === 0x7f) throw new HeadError(400, 'a control character in a trailer');
    if (l.indexOf(0x3a) <= 0) throw new HeadError(400, 'a trailer line without a name and colon');
  }
}
