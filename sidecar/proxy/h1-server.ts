// The HTTP/1.1 half of a listener, on the raw socket: a strict parser (h1-parse.ts,
// h1-chunked.ts) and one small request and response object per exchange, in place of
// node:http's server (IncomingMessage, ServerResponse and their stream plumbing cost more
// per request than this: README, "The raw listener, built"). What node:http did for us is
// done here: keep-alive and pipelining (one exchange at a time, what follows held unread
// until it is over), the headers timeout (408), the idle timeout, 100-continue, 400/431 for
// a head that cannot be read, chunked responses when no length is known, the Date header.
// The request path sees the same shape as before (downstream.ts types it).
import { EventEmitter } from 'node:events';
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type * as net from 'node:net';
import { ChunkedDecoder } from './h1-chunked';
import { HeadError, headEnd, leadingBlankLines, parseHead, type RequestHead } from './h1-parse';
import type { ListenerLimits } from './limits';

type Socket = net.Socket;

export type H1Handler = (req: H1Request, res: H1Response) => void;

/**
 * A request as the request path reads it: node:http's IncomingMessage, in what it uses of it.
 * Its body is events (data, end, aborted, error, close) with pause() and resume(), as a
 * Readable in flowing mode gives them, without a stream's state per request (most requests
 * have no body, and a Readable made and ended for each of them cost more than the rest of this).
 */
export class H1Request extends EventEmitter {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  /** the whole body arrived */
  complete = false;
  aborted = false;
  destroyed = false;
  readableEnded = false;
  private paused = false;
  private held: Buffer[] = [];
  private endHeld = false;

  constructor(
    head: RequestHead,
    readonly socket: Socket,
    private readonly conn: H1Connection,
  ) {
    super();
    this.method = head.method;
    this.url = head.url;
    this.httpVersion = head.version;
    this.httpVersionMinor = head.version === '1.1' ? 1 : 0;
    this.headers = head.headers;
    this.rawHeaders = head.rawHeaders;
  }

  /** Body bytes from the connection; false: read no more until resume(). */
  deliver(chunk: Buffer): boolean {
    if (this.destroyed) return true;
    if (this.paused || this.held.length || !this.listenerCount('data')) {
      this.held.push(chunk);
      return false;
    }
    this.emit('data', chunk);
    return !this.paused;
  }

  /** The body is over (the connection read its last byte). */
  finish(): void {
    this.complete = true;
    this.endHeld = true;
    this.flush();
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    this.flush();
    if (!this.complete && !this.paused) this.conn.bodyWanted();
    return this;
  }

  private flush(): void {
    while (!this.paused && this.held.length && this.listenerCount('data')) this.emit('data', this.held.shift());
    if (this.endHeld && !this.held.length && !this.destroyed) {
      this.endHeld = false;
      this.readableEnded = true;
      this.emit('end');
      this.emit('close');
    }
  }

  /** cut short: the client went, or its body could not be read */
  abort(err: Error): void {
    if (this.readableEnded || this.destroyed) return;
    this.destroyed = true;
    this.aborted = true;
    this.held = [];
    this.emit('aborted');
    // an unheard 'error' would end the process: a request nobody reads ends quietly
    if (this.listenerCount('error')) this.emit('error', err);
    this.emit('close');
  }
}

const CRLF = '\r\n';
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const INVALID_NAME = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/;

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

class InvalidHeaderError extends TypeError {
  readonly code = 'ERR_INVALID_CHAR';
}

function headerLines(name: string, value: OutgoingHttpHeaders[string]): string {
  if (INVALID_NAME.test(name) || !name) throw new InvalidHeaderError(`invalid response header name ${JSON.stringify(name)}`);
  if (value === undefined) return '';
  const values = Array.isArray(value) ? value : [value];
  let out = '';
  for (const v of values) {
    const s = String(v);
    if (INVALID_VALUE.test(s)) throw new InvalidHeaderError(`invalid character in response header ${name}`);
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
  private preset?: OutgoingHttpHeaders;
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
    private readonly conn: H1Connection,
    private readonly socket: Socket,
    readonly isHead: boolean,
    private readonly version: '1.0' | '1.1',
    keepAlive: boolean,
    private readonly keepAliveSec: number,
  ) {
    super();
    this.shouldKeepAlive = keepAlive;
  }

  setHeader(name: string, value: string | number | string[]): this {
    (this.preset ??= {})[name.toLowerCase()] = value;
    return this;
  }

  /** Sets the status line and headers; they go out with the first bytes of the body (or its end), in one write. */
  writeHead(status: number, headers: OutgoingHttpHeaders = {}): this {
    if (this.headersSent) throw new Error('headers already sent');
    if (!Number.isInteger(status) || status < 100 || status > 999) throw new RangeError(`invalid status code ${status}`);
    const all: OutgoingHttpHeaders = this.preset ? { ...this.preset, ...headers } : headers;
    let lines = '';
    let hasDate = false;
    let closeAsked = false;
    let declared = -1;
    for (const name in all) {
      const value = all[name];
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
    if (!this.headersSent) {
      if (chunk !== undefined && !(this.preset && 'content-length' in this.preset)) {
        // a whole body known at once goes with its length, not chunked
        this.setHeader('content-length', typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length);
      }
      this.writeHead(this.statusCode);
    }
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

export interface H1Options {
  limits: ListenerLimits;
  /** responses say `Connection: close` and idle connections close */
  isDraining(): boolean;
}

/** Every HTTP/1.1 connection of a listener: their timeouts are swept, not timed one by one. */
export class H1Connections {
  private readonly live = new Set<H1Connection>();
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly handler: H1Handler,
    private readonly o: H1Options,
  ) {}

  /** Reads HTTP/1.1 requests from `socket` until it closes. */
  serve(socket: Socket): void {
    const c = new H1Connection(socket, this.handler, this.o, () => this.live.delete(c));
    this.live.add(c);
    this.sweeper ??= this.startSweeper();
  }

  /** Closes the connections that have no exchange in flight. */
  closeIdle(): void {
    for (const c of this.live) c.closeIfIdle();
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private startSweeper(): NodeJS.Timeout {
    const l = this.o.limits;
    // as node:http's connectionsCheckingInterval: a timeout fires within a fraction of itself
    const timeouts = [l.headersTimeoutMs, l.idleTimeoutMs].filter((ms) => ms > 0);
    const every = Math.max(10, Math.min(1000, Math.min(4000, ...timeouts) / 4));
    const t = setInterval(() => {
      const now = Date.now();
      for (const c of this.live) c.sweep(now);
      if (!this.live.size) {
        clearInterval(t);
        this.sweeper = undefined;
      }
    }, every);
    t.unref();
    return t;
  }
}

/** reading a head, reading a body, answering, or ending (nothing more is read) */
type Phase = 'head' | 'body' | 'response' | 'ending';

/** how long a connection we closed is given to read its last answer and close its side */
const CLOSE_GRACE_MS = 2000;

class H1Connection {
  private buf: Buffer | null = null;
  /** where a head arriving in pieces is gathered */
  private store?: Buffer;
  /** where the search for the head's end resumes */
  private scanned = 0;
  private phase: Phase = 'head';
  /** when the head being read began (its first byte), 0 while none is */
  private headSince = 0;
  /** when the connection went idle (no exchange, nothing buffered), 0 while it is not */
  private idleSince: number;
  private req?: H1Request;
  private res?: H1Response;
  private bodyLeft = 0;
  private chunks?: ChunkedDecoder;
  private paused = false;
  draining = false;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly handler: H1Handler,
    private readonly o: H1Options,
    private readonly onClosed: () => void,
  ) {
    this.idleSince = Date.now();
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('drain', () => this.res?.drained());
    // the client's FIN: what is in flight is given up, as node:http does (no half-open); an
    // answer already on its way (a refusal) is let go out
    socket.on('end', () => {
      if (this.req) this.gone(new Error('the client closed its connection'));
      else if (!socket.writableEnded) socket.end();
    });
    socket.on('error', (err) => this.gone(err));
    socket.on('close', () => {
      this.gone(new Error('connection closed'));
      this.onClosed();
    });
    socket.resume();
  }

  private onData(d: Buffer): void {
    this.idleSince = 0;
    this.append(d);
    try {
      if (this.phase === 'head') this.readHead();
      else if (this.phase === 'body') this.readBody();
      // the connection said it closes, and the client still sends: cut
      else if (this.phase === 'ending') this.socket.destroy();
      // an exchange in flight: what follows (a pipelined request) waits, unread, until it is over
      else this.pause();
    } catch (err) {
      // a fault of ours costs this connection, never the process and every other one
      this.socket.destroy(err as Error);
    }
  }

  /** Adds to what is buffered; a head that trickles in is copied once per doubling, not once per byte. */
  private append(d: Buffer): void {
    const buf = this.buf;
    if (!buf) {
      this.buf = d;
      return;
    }
    const need = buf.length + d.length;
    const store = this.store;
    if (store && buf.buffer === store.buffer && buf.byteOffset === store.byteOffset && need <= store.length) {
      d.copy(store, buf.length);
      this.buf = store.subarray(0, need);
      return;
    }
    this.store = Buffer.allocUnsafe(Math.max(need, buf.length * 2, 1024));
    buf.copy(this.store);
    d.copy(this.store, buf.length);
    this.buf = this.store.subarray(0, need);
  }

  private readHead(): void {
    const buf = this.buf;
    if (!buf) return;
    if (!this.headSince) this.headSince = Date.now();
    let start = 0;
    let end: number;
    try {
      start = leadingBlankLines(buf);
      end = headEnd(buf, Math.max(start, this.scanned - 3));
      const max = this.o.limits.maxHeaderBytes;
      if ((end === -1 ? buf.length : end) - start > max) throw new HeadError(431, 'request headers too large');
      if (end === -1) {
        this.scanned = buf.length;
        return;
      }
      const head = parseHead(buf, start, end, this.o.limits.maxHeadersCount + 1);
      this.buf = end < buf.length ? buf.subarray(end) : null;
      this.scanned = 0;
      this.headSince = 0;
      this.begin(head);
    } catch (err) {
      if (err instanceof HeadError) return this.refuse(err.status);
      throw err;
    }
  }

  private begin(head: RequestHead): void {
    this.draining = this.o.isDraining();
    const req = new H1Request(head, this.socket, this);
    const res = new H1Response(this, this.socket, head.method === 'HEAD', head.version, head.keepAlive, Math.max(0, Math.floor(this.o.limits.idleTimeoutMs / 1000)));
    this.req = req;
    this.res = res;
    if (head.body.kind === 'none') {
      // ended once the request path has had the request (a consumer of the body attaches as it gets it)
      req.complete = true;
      this.phase = 'response';
    } else {
      this.phase = 'body';
      if (head.body.kind === 'length') this.bodyLeft = head.body.length;
      else this.chunks = new ChunkedDecoder(this.o.limits.maxHeaderBytes);
      if (head.expectContinue) this.socket.write(`HTTP/1.1 100 Continue${CRLF}${CRLF}`, 'latin1');
    }
    try {
      this.handler(req, res);
    } catch {
      // the request path answers its own errors; one that escapes it costs this connection, not the process
      return void this.socket.destroy();
    }
    if (head.body.kind === 'none') req.finish();
    if (this.phase === 'body') this.readBody();
    else if (this.buf) this.pause();
  }

  private readBody(): void {
    const req = this.req;
    const buf = this.buf;
    if (!req || !buf || req.destroyed) return;
    let full = false;
    const give = (c: Buffer) => {
      if (!req.deliver(c)) full = true;
    };
    let used: number;
    if (this.chunks) {
      try {
        used = this.chunks.feed(buf, 0, give);
      } catch (err) {
        if (!(err instanceof HeadError)) throw err;
        req.abort(new Error(`the request body is malformed: ${err.message}`));
        return this.refuse(400);
      }
    } else {
      used = Math.min(this.bodyLeft, buf.length);
      this.bodyLeft -= used;
      give(used === buf.length ? buf : buf.subarray(0, used));
    }
    this.buf = used < buf.length ? buf.subarray(used) : null;
    if (this.chunks ? this.chunks.done : this.bodyLeft === 0) {
      this.chunks = undefined;
      // the exchange is answering before 'end' is heard (its handler may answer at once)
      this.phase = 'response';
      if (this.buf) this.pause();
      req.finish();
      return;
    }
    // the request path reads the body at its own pace (the upstream's)
    if (full) this.pause();
  }

  /** Whether the body of the exchange in flight was read to its end (or it had none). */
  bodyRead(): boolean {
    return this.phase !== 'body';
  }

  /** The request path wants more of the body. */
  bodyWanted(): void {
    if (this.phase === 'body') this.resume();
  }

  /** The exchange is over: the next request, or the end of the connection. */
  responseDone(res: H1Response): void {
    if (res !== this.res || this.closed) return;
    const keep = res.shouldKeepAlive && this.phase === 'response' && !this.o.isDraining();
    this.req = undefined;
    this.res = undefined;
    if (!keep) {
      // a body not read to its end leaves the connection unreadable: it closes with the response,
      // and what the client still sends is dropped
      this.phase = 'ending';
      this.buf = null;
      this.socket.end();
      this.destroyLater();
      return;
    }
    this.phase = 'head';
    this.resume();
    if (this.buf) this.readHead();
    else this.idleSince = Date.now();
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  /** A head that cannot be read: answered, and the connection closed (what follows it cannot be read either). */
  private refuse(status: number): void {
    this.phase = 'ending';
    this.buf = null;
    this.headSince = 0;
    const res = this.res;
    if (res && res.headersSent) {
      this.socket.destroy();
      return;
    }
    this.socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}${CRLF}connection: close${CRLF}content-length: 0${CRLF}${CRLF}`, 'latin1');
    this.pause();
    this.destroyLater();
  }

  /** A client that never closes its side after ours does not keep the socket. */
  private destroyLater(): void {
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  closeIfIdle(): void {
    if (!this.req && !this.buf) this.socket.destroy();
  }

  /** The headers and idle timeouts (0: none). */
  sweep(now: number): void {
    const l = this.o.limits;
    if (this.headSince && l.headersTimeoutMs > 0 && now - this.headSince >= l.headersTimeoutMs && this.phase === 'head') this.refuse(408);
    else if (this.idleSince && l.idleTimeoutMs > 0 && now - this.idleSince >= l.idleTimeoutMs) this.socket.destroy();
  }

  private gone(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.idleSince = 0;
    this.headSince = 0;
    this.req?.abort(err);
    this.res?.closed();
    if (!this.socket.destroyed) this.socket.destroy();
  }
}
