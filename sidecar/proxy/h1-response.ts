// A response as the request path writes it to the raw HTTP/1.1 listener (h1-server.ts):
// the head goes out with the first bytes of the body in one write, the body framed by its
// length or chunked, and what would break the framing (CR or LF in a header, a length that
// is not one number) is never written.
import { EventEmitter } from 'node:events';
import { STATUS_CODES, validateHeaderName, validateHeaderValue, type OutgoingHttpHeaders } from 'node:http';
import type * as net from 'node:net';

/** What a response needs of its connection. */
export interface ResponseSink {
  /** the listener is draining: the response says `Connection: close` */
  readonly draining: boolean;
  /** the request's body was read to its end (or it had none) */
  bodyRead(): boolean;
  /** the response is out: the next request, or the end of the connection */
  responseDone(res: H1Response): void;
}

export const CRLF = '\r\n';

let dateSecond = -1;
let dateString = '';
/** the Date header, made once a second */
function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateString = new Date(now).toUTCString();
  }
  return dateString;
}

/** a Content-Length the body could not be framed by (node:http's own code for a bad header value) */
class InvalidHeaderError extends TypeError {
  readonly code = 'ERR_INVALID_CHAR';
}

/** A header's lines, checked as node:http checks them (a name that is a token, no CR, LF or NUL in a value): throws before anything is written. */
function headerLines(name: string, value: OutgoingHttpHeaders[string]): string {
  validateHeaderName(name);
  if (value === undefined) return '';
  const values = Array.isArray(value) ? value : [value];
  let out = '';
  for (const v of values) {
    const s = String(v);
    validateHeaderValue(name, s);
    out += `${name}: ${s}${CRLF}`;
  }
  return out;
}

/** A response as the request path writes it: node:http's ServerResponse, in what it uses of it. */
export class H1Response extends EventEmitter {
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  /** the connection outlives this exchange (local-reply.ts reads that this is HTTP/1) */
  shouldKeepAlive: boolean;
  statusCode = 200;
  private trailers?: OutgoingHttpHeaders;
  private head = '';
  private chunked = false;
  private noBody = false;
  /** the declared Content-Length, -1 when none */
  private declared = -1;
  private written = 0;
  private corked = false;
  private finished = false;

  constructor(
    private readonly conn: ResponseSink,
    private readonly socket: net.Socket,
    readonly isHead: boolean,
    private readonly version: '1.0' | '1.1',
    keepAlive: boolean,
    private readonly keepAliveSec: number,
  ) {
    super();
    this.shouldKeepAlive = keepAlive;
  }

  /** Sets the status line and headers; they go out with the first bytes of the body (or its end), in one write. */
  writeHead(status: number, headers: OutgoingHttpHeaders = {}): this {
    if (this.headersSent) throw new Error('headers already sent');
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new RangeError(`invalid status code ${status}`);
    let lines = '';
    let hasDate = false;
    let closeAsked = false;
    let declared = -1;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      const lower = name.toLowerCase();
      if (lower === 'connection') {
        closeAsked = String(value).toLowerCase().includes('close');
        continue;
      }
      // framing is this connection's to say, not the upstream's
      if (lower === 'transfer-encoding' || lower === 'keep-alive') continue;
      if (lower === 'date') hasDate = true;
      else if (lower === 'content-length') {
        // one plain number, or the body could not be framed by it
        if (Array.isArray(value) || !/^\d{1,15}$/.test(String(value))) throw new InvalidHeaderError(`invalid response Content-Length ${JSON.stringify(value)}`);
        declared = Number(value);
      }
      lines += headerLines(name, value);
    }
    this.declared = declared;
    this.statusCode = status;
    this.noBody = this.isHead || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (!this.noBody && this.declared < 0) {
      // no length known: chunked on HTTP/1.1; on HTTP/1.0 the body ends with the connection
      if (this.version === '1.1') {
        this.chunked = true;
        lines += `transfer-encoding: chunked${CRLF}`;
      } else this.shouldKeepAlive = false;
    }
    // answered before its body was read to the end: the rest cannot be told from the next request
    if (closeAsked || this.conn.draining || !this.conn.bodyRead()) this.shouldKeepAlive = false;
    if (!hasDate) lines += `date: ${httpDate()}${CRLF}`;
    // the idle timeout told, as node:http tells it, so that a client gives the connection up first
    if (!this.shouldKeepAlive) lines += `connection: close${CRLF}`;
    else lines += this.keepAliveSec > 0 ? `connection: keep-alive${CRLF}keep-alive: timeout=${this.keepAliveSec}${CRLF}` : `connection: keep-alive${CRLF}`;
    this.head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}${CRLF}${lines}${CRLF}`;
    this.headersSent = true;
    return this;
  }

  /** What is written in one tick goes out in one write (writev), the head with it. */
  private batch(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(() => this.uncork());
    if (this.head) {
      this.socket.write(this.head, 'latin1');
      this.head = '';
    }
  }

  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.noBody || !b.length) return true;
    this.batch();
    if (this.declared >= 0) {
      // never more than was declared: what follows would be read as the next response
      const room = this.declared - this.written;
      if (b.length > room) {
        this.shouldKeepAlive = false;
        if (room <= 0) return true;
        this.written += room;
        return this.socket.write(b.subarray(0, room));
      }
    }
    this.written += b.length;
    if (!this.chunked) return this.socket.write(b);
    this.socket.write(`${b.length.toString(16)}${CRLF}`, 'latin1');
    this.socket.write(b);
    return this.socket.write(CRLF, 'latin1');
  }

  addTrailers(headers: OutgoingHttpHeaders): void {
    this.trailers = headers;
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded || this.destroyed) return this;
    // a whole body known at once goes with its length, not chunked
    if (!this.headersSent) this.writeHead(this.statusCode, chunk === undefined ? {} : { 'content-length': typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length });
    if (chunk !== undefined) this.write(chunk);
    this.writableEnded = true;
    let last = '';
    if (this.chunked) {
      last = `0${CRLF}`;
      for (const name in this.trailers ?? {}) {
        try {
          last += headerLines(name, this.trailers![name]);
        } catch {
          // a trailer that cannot be written is dropped: the body is already out, and throwing here would lose its end
        }
      }
      last += CRLF;
    }
    // a body shorter than it said: the connection ends, so the client sees it cut short
    if (this.declared >= 0 && this.written < this.declared && !this.noBody) this.shouldKeepAlive = false;
    this.batch();
    this.socket.write(last, 'latin1', () => this.done());
    this.uncork();
    return this;
  }

  destroy(_err?: Error): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.socket.destroy();
  }

  /** the socket is writable again */
  drained(): void {
    if (this.headersSent && !this.writableEnded && !this.destroyed) this.emit('drain');
  }

  private done(): void {
    if (this.finished) return;
    this.finished = true;
    this.emit('finish');
    this.emit('close');
    this.conn.responseDone(this);
  }

  /** the connection closed under it */
  closed(): void {
    if (this.finished) return;
    this.finished = true;
    this.destroyed = true;
    this.emit('close');
  }
}
