// The HTTP/1.1 half of a listener, on the raw socket: a strict parser (h1-parse.ts,
// h1-chunked.ts) and one small request and response object per exchange, in place of
// node:http's server (IncomingMessage, ServerResponse and their stream plumbing cost more
// per request than this: README, "The raw listener, built"). What node:http did for us is
// done here: keep-alive and pipelining (one exchange at a time, what follows held unread
// until it is over), the headers timeout (408), the idle timeout, 100-continue, 400/431 for
// a head that cannot be read, chunked responses when no length is known, the Date header.
// The request path sees the same shape as before (downstream.ts types it).
import { STATUS_CODES } from 'node:http';
import type * as net from 'node:net';
import { ChunkedDecoder } from './h1-chunked';
import { HeadError, headEnd, leadingBlankLines, parseHead, type RequestHead } from './h1-parse';
import { H1Request, type RequestSource } from './h1-request';
import { CRLF, H1Response, type ResponseSink } from './h1-response';
import type { ListenerLimits } from './limits';

export { H1Request, H1Response };

type Socket = net.Socket;

export type H1Handler = (req: H1Request, res: H1Response) => void;

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

class H1Connection implements RequestSource, ResponseSink {
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
  private closed = false;
  /** what a kept-alive response says its idle timeout is (rounded down, as node:http says it) */
  private readonly keepAliveSec: number;

  constructor(
    private readonly socket: Socket,
    private readonly handler: H1Handler,
    private readonly o: H1Options,
    private readonly onClosed: () => void,
  ) {
    this.idleSince = Date.now();
    this.keepAliveSec = Math.max(0, Math.floor(o.limits.idleTimeoutMs / 1000));
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
    const req = new H1Request(head, this.socket, this);
    const res = new H1Response(this, this.socket, head.method === 'HEAD', head.version, head.keepAlive, this.keepAliveSec);
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

  /** Read when a response's head is made, not when its request came: one in flight as draining starts says close too. */
  get draining(): boolean {
    return this.o.isDraining();
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
