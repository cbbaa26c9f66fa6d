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

export interface Target {
  host: string;
  port: number;
  /** absent: plaintext */
  tls?: TlsTarget;
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

export class H2Dispatcher implements Dispatcher {
  private readonly sessions = new Map<string, { session: http2.ClientHttp2Session; ready: Promise<void> }>();

  private session(t: Target, connectTimeoutMs: number): { session: http2.ClientHttp2Session; ready: Promise<void> } {
    const key = t.tls ? t.tls.key : `${t.host}:${t.port}`;
    const cur = this.sessions.get(key);
    if (cur && !cur.session.closed && !cur.session.destroyed) return cur;
    let session: http2.ClientHttp2Session;
    try {
      const tlsOptions = t.tls?.options();
      // no Nagle on either hop: small frames go out at once
      session = tlsOptions
        ? http2.connect(`https://${t.host}:${t.port}`, { createConnection: () => tls.connect(tlsOptions).setNoDelay(true) })
        : http2.connect(`http://${t.host}:${t.port}`, { createConnection: () => net.connect({ host: t.host, port: t.port, noDelay: true }) });
    } catch (err) {
      throw new ConnectFailureError(`cannot connect to ${t.host}:${t.port}: ${(err as Error).message}`, { cause: err });
    }
    const drop = () => {
      if (this.sessions.get(key)?.session === session) this.sessions.delete(key);
    };
    const ready = new Promise<void>((resolve, reject) => {
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
    ready.catch(() => undefined);
    session.on('error', drop);
    session.on('close', drop);
    session.on('goaway', drop);
    // idle peers should not keep the process alive
    session.unref();
    const entry = { session, ready };
    this.sessions.set(key, entry);
    return entry;
  }

  dispatch(t: Target, req: UpstreamRequest): InFlight {
    let stream: http2.ClientHttp2Stream | undefined;
    let aborted: Error | undefined;
    const response = (async () => {
      const { session, ready } = this.session(t, req.connectTimeoutMs);
      await ready;
      if (aborted) throw aborted;
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
        throw classifyUpstreamError(err, true);
      }
      stream = s;
      if (req.body) {
        // a body that fails (client reset, bad chunk) cancels the stream: never a clean END_STREAM
        req.body.once('error', () => s.close(http2.constants.NGHTTP2_CANCEL));
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
        stream?.close(http2.constants.NGHTTP2_CANCEL);
      },
    };
  }

  close(): void {
    for (const { session } of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}

const IDLE_MS = 60_000;

/** the idle timeout each upstream socket's server asked for, read from its last response */
const idleHints = new WeakMap<Duplex, number>();

// Keeps an idle upstream socket no longer than the server does: Node reads the server's
// "Keep-Alive: timeout=N" only for an agent with a timeout of its own, which would also
// replace each request's connect timeout. Unbounded, a socket the server is just closing
// gets reused, and the request fails with a reset (503 UR).
function keepAliveWithin<A extends http.Agent>(agent: A): A {
  const keep = agent.keepSocketAlive.bind(agent);
  agent.keepSocketAlive = (socket: Duplex): boolean => {
    const ok = (keep(socket) as unknown) !== false;
    (socket as Socket).setTimeout(idleHints.get(socket) ?? IDLE_MS);
    return ok;
  };
  return agent;
}

function rememberIdleHint(res: http.IncomingMessage): void {
  const hint = /^timeout=(\d+)/.exec(String(res.headers['keep-alive'] ?? ''))?.[1];
  if (hint) idleHints.set(res.socket, Math.max(1000, Number(hint) * 1000 - 1000));
}

export class H1Dispatcher implements Dispatcher {
  private readonly agent = keepAliveWithin(new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 }));
  /** one keep-alive pool per TLS target (its identity and settings are part of the key) */
  private readonly tlsAgents = new Map<string, https.Agent>();

  private agentFor(t: Target): http.Agent {
    if (!t.tls) return this.agent;
    let a = this.tlsAgents.get(t.tls.key);
    if (!a) {
      const target = t.tls;
      a = keepAliveWithin(new https.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256 }));
      // the TLS options are read per connection: a rotated certificate applies to the next one
      a.createConnection = ((_opts: unknown, cb?: (err: Error | null, s: Duplex) => void) => {
        const s = tls.connect(target.options()).setNoDelay(true);
        cb?.(null, s);
        return s;
      }) as typeof a.createConnection;
      this.tlsAgents.set(t.tls.key, a);
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
    for (const a of this.tlsAgents.values()) a.destroy();
  }
}
