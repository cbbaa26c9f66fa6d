// H2Dispatcher: one multiplexed HTTP/2 session per peer and identity (or several, when the
// cluster caps streams per session), with the cluster's lifetime, idle and PING settings.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import { classifyUpstreamError, ConnectFailureError, RefusedStreamError } from './errors';
import { keepalive, type ConnectionOptions, type Dispatcher, type InFlight, type Target, type UpstreamRequest, type UpstreamResponse } from './dispatch';

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
