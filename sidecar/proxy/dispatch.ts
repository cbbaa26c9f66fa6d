// Dispatchers send one request to one endpoint. H2Dispatcher keeps one multiplexed
// HTTP/2 session per peer (the sidecar-to-sidecar hop); H1Dispatcher keeps a
// keep-alive pool (applications and plaintext ServiceEntry endpoints).
import * as http from 'node:http';
import * as https from 'node:https';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { classifyUpstreamError, ConnectFailureError, RefusedStreamError, ReusedConnectionResetError } from './errors';

/** How to reach a TLS endpoint; `key` names what sessions may be shared under (address and expected identity). */
export interface TlsTarget {
  key: string;
  options(): tls.ConnectionOptions;
}

/**
 * How connections to a target are kept (a cluster's DestinationRule connection pool);
 * `key` names the settings, so targets that differ in them never share a connection.
 */
export interface ConnectionOptions {
  key: string;
  /** no request for this long closes the connection; 0: never */
  idleTimeoutMs?: number;
  maxRequestsPerConnection?: number;
  maxConnectionDurationMs?: number;
  /** SO_KEEPALIVE after timeMs idle (absent: the OS's delay) */
  tcpKeepalive?: { timeMs?: number };
  /** HTTP/2: streams per connection before another one is opened */
  maxConcurrentStreams?: number;
  /** HTTP/2: a PING every intervalMs; no answer within timeoutMs closes the connection */
  h2Keepalive?: { intervalMs: number; timeoutMs: number };
}

export interface Target {
  host: string;
  port: number;
  /** absent: plaintext */
  tls?: TlsTarget;
  /** absent: the defaults (one h2 session per peer, never closed for idleness; H1 kept alive 60 s) */
  conn?: ConnectionOptions;
}

/** SO_KEEPALIVE as a cluster asks (Node sets the idle time; interval and probes are libuv's). */
function keepalive(socket: Socket, conn: ConnectionOptions | undefined): void {
  if (conn?.tcpKeepalive) socket.setKeepAlive(true, conn.tcpKeepalive.timeMs ?? 0);
}

export interface UpstreamRequest {
  method: string;
  path: string;
  authority: string;
  headers: http.OutgoingHttpHeaders;
  /** null: no body */
  body: Readable | null;
  connectTimeoutMs: number;
}

export interface UpstreamResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** the answer was headers alone (HTTP/2 END_STREAM on HEADERS: a gRPC trailers-only answer) */
  endStream?: boolean;
  body: Readable;
  trailers: Promise<http.IncomingHttpHeaders | undefined>;
  /** made by the proxy itself (a redirect, a direct response, a CORS preflight): no upstream was asked */
  local?: boolean;
}

export interface InFlight {
  response: Promise<UpstreamResponse>;
  abort(reason?: Error): void;
}

export interface Dispatcher {
  dispatch(t: Target, req: UpstreamRequest): InFlight;
  close(): void;
}

interface H2Session {
  session: http2.ClientHttp2Session;
  ready: Promise<void>;
  /** streams open now, and ever */
  active: number;
  served: number;
  /** takes no new streams (its request or age limit was reached); closes once its streams end */
  draining: boolean;
  /** stop taking streams, and close once those there are end */
  drain(): void;
  idle?: NodeJS.Timeout;
}

/**
 * Cancels a stream without ever finishing its request: Http2Stream.close() ends the writable
 * side first (an END_STREAM) and only then resets, so a peer would take a cut-short body as
 * complete. Before the body is over, the stream is destroyed instead (RST_STREAM alone).
 */
function cancel(s: http2.ClientHttp2Stream, why: Error): void {
  if (s.destroyed) return;
  if (s.writableEnded) s.close(http2.constants.NGHTTP2_CANCEL);
  else s.destroy(why);
}

export class H2Dispatcher implements Dispatcher {
  /** per peer (and connection settings): one session, or several when maxConcurrentStreams caps them */
  private readonly sessions = new Map<string, H2Session[]>();

  /** A session for one more stream; with connection settings, the stream is counted on it from now. */
  private session(t: Target, connectTimeoutMs: number): H2Session {
    const conn = t.conn;
    const key = (t.tls ? t.tls.key : `${t.host}:${t.port}`) + (conn ? `|${conn.key}` : '');
    const list = this.sessions.get(key) ?? [];
    const max = conn?.maxConcurrentStreams;
    const cur = list.find((e) => !e.draining && !e.session.closed && !e.session.destroyed && (max === undefined || e.active < max));
    if (cur) return conn ? reserve(cur, conn) : cur;
    let session: http2.ClientHttp2Session;
    try {
      const tlsOptions = t.tls?.options();
      // no Nagle on either hop: small frames go out at once
      session = tlsOptions
        ? http2.connect(`https://${t.host}:${t.port}`, { createConnection: () => withKeepalive(tls.connect(tlsOptions).setNoDelay(true), conn) })
        : http2.connect(`http://${t.host}:${t.port}`, { createConnection: () => withKeepalive(net.connect({ host: t.host, port: t.port, noDelay: true }), conn) });
    } catch (err) {
      throw new ConnectFailureError(`cannot connect to ${t.host}:${t.port}: ${(err as Error).message}`, { cause: err });
    }
    const drop = () => {
      const l = this.sessions.get(key);
      const i = l?.indexOf(entry) ?? -1;
      if (i >= 0) l!.splice(i, 1);
      if (l && !l.length) this.sessions.delete(key);
    };
    const entry: H2Session = {
      session,
      ready: Promise.resolve(),
      active: 0,
      served: 0,
      draining: false,
      drain() {
        if (entry.draining) return;
        entry.draining = true;
        drop();
        // a GOAWAY now could refuse a stream just made and not yet sent: close when the last one ends
        if (entry.active === 0) session.close();
      },
    };
    entry.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new ConnectFailureError(`connect to ${key} timed out after ${connectTimeoutMs}ms`));
        session.destroy();
      }, connectTimeoutMs);
      session.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      session.once('error', (err) => {
        clearTimeout(timer);
        reject(classifyUpstreamError(err, false));
      });
    });
    entry.ready.catch(() => undefined);
    session.on('error', drop);
    session.on('close', drop);
    session.on('goaway', drop);
    if (conn) keepSessionAsAsked(entry, conn);
    // idle peers should not keep the process alive
    session.unref();
    list.push(entry);
    this.sessions.set(key, list);
    return conn ? reserve(entry, conn) : entry;
  }

  dispatch(t: Target, req: UpstreamRequest): InFlight {
    let stream: http2.ClientHttp2Stream | undefined;
    let aborted: Error | undefined;
    const response = (async () => {
      const entry = this.session(t, req.connectTimeoutMs);
      const { session } = entry;
      // the stream slot counted for this request, given back once it is over (or never made)
      let held = !!t.conn;
      const release = () => {
        if (held) streamEnded(entry, t.conn!);
        held = false;
      };
      try {
        await entry.ready;
      } catch (err) {
        release();
        throw err;
      }
      if (aborted) {
        release();
        throw aborted;
      }
      const headers: http2.OutgoingHttpHeaders = {
        ...req.headers,
        ':method': req.method,
        ':path': req.path,
        ':authority': req.authority,
        ':scheme': t.tls ? 'https' : 'http',
      };
      let s: http2.ClientHttp2Stream;
      try {
        s = session.request(headers, { endStream: req.body === null });
      } catch (err) {
        release();
        throw classifyUpstreamError(err, true);
      }
      stream = s;
      s.once('close', release);
      if (req.body) {
        // a body that fails (client reset, bad chunk) cancels the stream: never a clean END_STREAM
        req.body.once('error', (err) => cancel(s, err));
        req.body.pipe(s);
      }
      const trailers = new Promise<http.IncomingHttpHeaders | undefined>((resolve) => {
        s.once('trailers', (h) => resolve(h as http.IncomingHttpHeaders));
        s.once('close', () => resolve(undefined));
      });
      return await new Promise<UpstreamResponse>((resolve, reject) => {
        let settled = false;
        s.once('response', (h, flags) => {
          settled = true;
          resolve({ status: Number(h[':status']), headers: h as http.IncomingHttpHeaders, endStream: (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0, body: s, trailers });
        });
        // errors are built only when they matter: a stack trace per request is measurable
        const failed = (err: Error) =>
          aborted ?? (s.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? new RefusedStreamError('the peer refused the stream', { cause: err }) : classifyUpstreamError(err, true));
        s.once('error', (err) => settled || ((settled = true), reject(failed(err))));
        s.once('close', () => settled || ((settled = true), reject(failed(new Error(`stream closed with code ${s.rstCode}`)))));
      });
    })();
    return {
      response,
      abort(reason) {
        aborted = reason ?? new Error('aborted');
        if (stream) cancel(stream, aborted);
      },
    };
  }

  close(): void {
    for (const list of this.sessions.values()) for (const { session } of list) session.close();
    this.sessions.clear();
  }
}

function withKeepalive<S extends Socket>(socket: S, conn: ConnectionOptions | undefined): S {
  keepalive(socket, conn);
  return socket;
}

// The session-wide settings: a lifetime, idleness, and PINGs that must be answered.
function keepSessionAsAsked(e: H2Session, conn: ConnectionOptions): void {
  const timers: NodeJS.Timeout[] = [];
  if (conn.maxConnectionDurationMs) timers.push(setTimeout(() => e.drain(), conn.maxConnectionDurationMs).unref());
  if (conn.idleTimeoutMs) e.idle = setTimeout(() => e.drain(), conn.idleTimeoutMs).unref();
  const ka = conn.h2Keepalive;
  if (ka) {
    const ping = setInterval(() => {
      if (e.session.closed || e.session.destroyed) return;
      const deadline = setTimeout(() => e.session.destroy(new Error(`no answer to a PING within ${ka.timeoutMs}ms`)), ka.timeoutMs).unref();
      try {
        e.session.ping(() => clearTimeout(deadline));
      } catch {
        clearTimeout(deadline);
      }
    }, ka.intervalMs).unref();
    timers.push(ping);
  }
  e.session.once('close', () => {
    for (const t of timers) clearTimeout(t);
    clearTimeout(e.idle);
  });
}

// A stream counts on its session from the moment it is given one (so requests waiting for
// the same new session cannot exceed its stream or request limits) until it is over.
function reserve(e: H2Session, conn: ConnectionOptions): H2Session {
  e.active++;
  e.served++;
  clearTimeout(e.idle);
  e.idle = undefined;
  if (conn.maxRequestsPerConnection && e.served >= conn.maxRequestsPerConnection) e.drain();
  return e;
}

// The last stream over: a draining session closes, another starts its idle timer.
function streamEnded(e: H2Session, conn: ConnectionOptions): void {
  e.active--;
  if (e.active > 0) return;
  if (e.draining) e.session.close();
  else if (conn.idleTimeoutMs) e.idle = setTimeout(() => e.drain(), conn.idleTimeoutMs).unref();
}

const IDLE_MS = 60_000;

/** the idle timeout each upstream socket's server asked for, read from its last response */
const idleHints = new WeakMap<Duplex, number>();
/** per upstream socket: when it was made, and how many requests it carried */
const births = new WeakMap<Duplex, number>();
const uses = new WeakMap<Duplex, number>();

// Keeps an idle upstream socket no longer than the server does: Node reads the server's
// "Keep-Alive: timeout=N" only for an agent with a timeout of its own, which would also
// replace each request's connect timeout. Unbounded, a socket the server is just closing
// gets reused, and the request fails with a reset (503 UR). A cluster's connection
// settings bound it further: its idle timeout, its requests and its lifetime per
// connection (a socket past either is closed rather than kept).
function keepAliveWithin<A extends http.Agent>(agent: A, conn?: ConnectionOptions): A {
  const keep = agent.keepSocketAlive.bind(agent);
  agent.keepSocketAlive = (socket: Duplex): boolean => {
    const ok = (keep(socket) as unknown) !== false;
    if (!ok) return false;
    const hint = idleHints.get(socket);
    let idle = hint ?? IDLE_MS;
    if (conn) {
      if (conn.maxRequestsPerConnection && (uses.get(socket) ?? 0) >= conn.maxRequestsPerConnection) return false;
      const age = Date.now() - (births.get(socket) ?? Date.now());
      if (conn.maxConnectionDurationMs && age >= conn.maxConnectionDurationMs) return false;
      // 0: no idle timeout of the cluster's own (the server's hint still holds)
      if (conn.idleTimeoutMs !== undefined) idle = conn.idleTimeoutMs > 0 ? Math.min(hint ?? Infinity, conn.idleTimeoutMs) : (hint ?? 0);
      if (conn.maxConnectionDurationMs) idle = Math.min(idle || Infinity, conn.maxConnectionDurationMs - age);
    }
    (socket as Socket).setTimeout(idle);
    return ok;
  };
  return agent;
}

function rememberIdleHint(res: http.IncomingMessage): void {
  const hint = /^timeout=(\d+)/.exec(String(res.headers['keep-alive'] ?? ''))?.[1];
  if (hint) idleHints.set(res.socket, Math.max(1000, Number(hint) * 1000 - 1000));
}

const POOL = { keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 };

export class H1Dispatcher implements Dispatcher {
  private readonly agent = keepAliveWithin(new http.Agent(POOL));
  /** one keep-alive pool per TLS target (its identity and settings are part of the key) and per connection settings */
  private readonly agents = new Map<string, http.Agent>();

  private agentFor(t: Target): http.Agent {
    if (!t.tls && !t.conn) return this.agent;
    const key = `${t.tls?.key ?? 'plaintext'}|${t.conn?.key ?? ''}`;
    let a = this.agents.get(key);
    if (!a) {
      // a pooled socket's SO_KEEPALIVE (Node sets it as a socket is kept) starts after the cluster's time
      const ka = t.conn?.tcpKeepalive?.timeMs;
      const options = ka ? { ...POOL, keepAliveMsecs: ka } : POOL;
      a = keepAliveWithin(t.tls ? new https.Agent(options) : new http.Agent(options), t.conn);
      const target = t.tls;
      if (target) {
        // the TLS options are read per connection: a rotated certificate applies to the next one
        a.createConnection = ((_opts: unknown, cb?: (err: Error | null, s: Duplex) => void) => {
          const s = tls.connect(target.options()).setNoDelay(true);
          cb?.(null, s);
          return s;
        }) as typeof a.createConnection;
      }
      this.agents.set(key, a);
    }
    return a;
  }

  dispatch(t: Target, req: UpstreamRequest): InFlight {
    let creq: http.ClientRequest | undefined;
    let aborted: Error | undefined;
    const response = new Promise<UpstreamResponse>((resolve, reject) => {
      let connected = false;
      const headers = { ...req.headers, host: req.authority };
      const agent = this.agentFor(t);
      creq = (t.tls ? https : http).request({ host: t.host, port: t.port, method: req.method, path: req.path, headers, agent, timeout: req.connectTimeoutMs });
      creq.once('socket', (sock) => {
        sock.setNoDelay(true);
        if (t.conn) {
          if (!births.has(sock)) {
            births.set(sock, Date.now());
            keepalive(sock, t.conn);
          }
          uses.set(sock, (uses.get(sock) ?? 0) + 1);
        }
        // a reused socket is connected already; a new TLS one only once its handshake is done
        // (a failed handshake is a connect failure, UF)
        if (creq!.reusedSocket) connected = true;
        else sock.once(t.tls ? 'secureConnect' : 'connect', () => (connected = true));
      });
      creq.once('timeout', () => {
        if (!connected) creq!.destroy(new ConnectFailureError(`connect to ${t.host}:${t.port} timed out after ${req.connectTimeoutMs}ms`));
        else creq!.setTimeout(0);
      });
      let answered = false;
      creq.once('error', (err: NodeJS.ErrnoException) => {
        // the server closed an idle kept-alive socket as we reused it: it never saw this request
        if (!aborted && !answered && creq!.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
          return reject(new ReusedConnectionResetError(`a kept-alive connection to ${t.host}:${t.port} was closed as it was reused`, { cause: err }));
        }
        reject(aborted ?? classifyUpstreamError(err, connected));
      });
      creq.once('response', (res) => {
        answered = true;
        rememberIdleHint(res);
        const trailers = new Promise<http.IncomingHttpHeaders | undefined>((r) => res.once('end', () => r(Object.keys(res.trailers).length ? res.trailers : undefined)));
        resolve({ status: res.statusCode ?? 502, headers: res.headers, body: res, trailers });
      });
      if (req.body) {
        // a body that fails is never finished upstream: the connection is cut instead
        req.body.once('error', (err) => creq!.destroy(err));
        req.body.pipe(creq);
      } else creq.end();
    });
    return {
      response,
      abort(reason) {
        aborted = reason ?? new Error('aborted');
        creq?.destroy(aborted);
      },
    };
  }

  close(): void {
    this.agent.destroy();
    for (const a of this.agents.values()) a.destroy();
  }
}
