// Keep-alive HTTP/1.1 connections to one target under one set of connection settings: each
// an undici Client (one socket, one request at a time), handed to one request, back to
// the idle list when its response is over. Kept here rather than in undici's Pool so that
// a request knows whether its connection carried one before (a reset as it is reused is
// retried, never a 503) and so that a cluster's requests and lifetime per connection hold.
import Client = require('undici/lib/dispatcher/client');
import * as net from 'node:net';
import type { Target } from './dispatch';
import { connector } from './h1-connect';
import { MAX_HEADER_BYTES } from './limits';

/** an idle socket the server gave no Keep-Alive hint for is kept this long */
const IDLE_MS = 60_000;
/** the longest a server's Keep-Alive hint keeps a socket, where the cluster sets no idle timeout */
const MAX_IDLE_MS = 600_000;
/** idle connections kept per pool; past it, a released connection is closed */
const MAX_IDLE = 256;

export interface Conn {
  readonly client: Client;
  readonly born: number;
  /** responses it carried to their end */
  served: number;
  /** its socket closed: it carries no further request */
  closed: boolean;
  dead: boolean;
}

export class H1Pool {
  private readonly idle: Conn[] = [];
  /** every connection not yet dropped, idle or carrying a request */
  private readonly live = new Set<Conn>();

  constructor(
    private readonly t: Target,
    /** told when the pool has no connection left, so that it can be forgotten */
    private readonly onEmpty: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** An idle connection young enough to reuse, or a new one (whose connect timeout is this request's). */
  acquire(connectTimeoutMs: number): Conn {
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (!c.dead && !c.closed && !this.tooOld(c)) return c;
      this.drop(c);
    }
    return this.create(connectTimeoutMs);
  }

  /** Back from a request: kept for the next one if its response ended cleanly and the cluster allows. */
  release(c: Conn, reusable: boolean): void {
    const max = this.t.conn?.maxRequestsPerConnection;
    if (!reusable || c.closed || c.dead || this.tooOld(c) || (max && c.served >= max) || this.idle.length >= MAX_IDLE) return this.drop(c);
    this.idle.push(c);
  }

  /** A connection whose socket closed: dropped now if idle, else as its request ends. */
  private retire(c: Conn): void {
    c.closed = true;
    const at = this.idle.indexOf(c);
    if (at >= 0) {
      this.idle.splice(at, 1);
      this.drop(c);
    }
  }

  /** Closes a connection that must not carry another request (an error, an abort, its limits). */
  drop(c: Conn): void {
    if (!c.dead) {
      c.dead = true;
      c.client.destroy().catch(() => undefined);
      this.live.delete(c);
      if (this.live.size === 0) this.onEmpty();
    }
  }

  /** Closes every connection, those carrying a request included (the sidecar is stopping). */
  close(): void {
    this.idle.length = 0;
    for (const c of [...this.live]) this.drop(c);
  }

  private tooOld(c: Conn): boolean {
    const max = this.t.conn?.maxConnectionDurationMs;
    return !!max && this.now() - c.born >= max;
  }

  private create(connectTimeoutMs: number): Conn {
    const conn = this.t.conn;
    // the cluster's idle timeout bounds the server's hint; 0 means none of its own
    const idle = conn?.idleTimeoutMs;
    const keepAliveTimeout = idle === undefined ? IDLE_MS : idle > 0 ? idle : MAX_IDLE_MS;
    const host = net.isIPv6(this.t.host) ? `[${this.t.host}]` : this.t.host;
    const client = new Client(`http://${host}:${this.t.port}`, {
      connect: connector(this.t, connectTimeoutMs),
      pipelining: 1,
      // the request path's own timeouts (route, per try, stream idle) rule
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout,
      keepAliveMaxTimeout: idle && idle > 0 ? idle : MAX_IDLE_MS,
      // a socket is given up a second before the server said it would close it
      keepAliveTimeoutThreshold: 1000,
      maxRequestsPerClient: conn?.maxRequestsPerConnection || undefined,
      // a response's headers may be as large as a request's (Envoy's max_response_headers_kb is 60 too)
      maxHeaderSize: MAX_HEADER_BYTES,
    });
    const c: Conn = { client, born: this.now(), served: 0, closed: false, dead: false };
    this.live.add(c);
    // Its socket closed (idle, the server's close, an error): not reused, since the Client
    // would quietly reconnect and a request would take a fresh socket for a reused one. One
    // carrying a request is dropped as that request ends (which may yet be on a new socket).
    client.once('disconnect', () => this.retire(c));
    client.once('connectionError', () => this.retire(c));
    // past its lifetime, an idle connection is closed (a busy one is, once its response is over)
    const lifetime = conn?.maxConnectionDurationMs;
    if (lifetime) {
      setTimeout(() => this.retire(c), lifetime).unref();
    }
    return c;
  }
}
