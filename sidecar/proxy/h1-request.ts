// A request as the request path reads it from the raw HTTP/1.1 listener (h1-server.ts).
import { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import type * as net from 'node:net';
import type { RequestHead } from './h1-parse';

/** What a request needs of its connection: to be read from again. */
export interface RequestSource {
  /** the request path wants more of the body */
  bodyWanted(): void;
}

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
    readonly socket: net.Socket,
    private readonly conn: RequestSource,
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
