// One listening socket that speaks HTTP/1.1 and h2c (prior knowledge) alike, and, for
// the inbound port, TLS too: the first bytes of a connection decide. Limits from SPEC
// section 7 are set here.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { uriSanOf } from '../../certs/svid';
import { defaultLimits, type ListenerLimits } from './limits';
import { H2Guard, PREMATURE_RESET_MS, ResetBudget } from './h2-guard';
import { H1Connections, type H1Request, type H1Response } from './h1-server';

export { MAX_HEADER_BYTES, MAX_HEADERS_COUNT, MESH_ADDED_HEADERS } from './limits';

export type DownstreamRequest = H1Request | http2.Http2ServerRequest;
export type DownstreamResponse = H1Response | http2.Http2ServerResponse;
export type RequestHandler = (req: DownstreamRequest, res: DownstreamResponse) => void;

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const ENHANCE_YOUR_CALM = http2.constants.NGHTTP2_ENHANCE_YOUR_CALM;
/** what a connection over the cap is told, where it may be plaintext HTTP/1.1 */
const OVER_CAPACITY = (n: number) => {
  const body = `connection limit reached: this listener takes ${n} connections\n`;
  return `HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nx-tandem-response-flags: UO\r\n\r\n${body}`;
};

/** What the connection a request came on proves about its peer. */
export interface ConnectionInfo {
  /** mutual TLS with a certificate the handshake verified */
  mtls: boolean;
  /** the peer's SPIFFE ID, from that certificate */
  peerPrincipal?: string;
  sni?: string;
  /** the client's and our address, where the request's socket cannot tell them (a guarded HTTP/2 connection) */
  addresses?: { remote: string; local: string };
}

const PLAINTEXT: ConnectionInfo = { mtls: false };
/** keyed by the TLS socket (HTTP/1.1) or the HTTP/2 session (whose .socket is only a proxy of it) */
const connections = new WeakMap<object, ConnectionInfo>();

/** The connection facts of a request, whichever protocol carries it. */
export function connectionOf(req: DownstreamRequest): ConnectionInfo {
  const key = (req as http2.Http2ServerRequest).stream?.session ?? req.socket;
  return (key && connections.get(key)) ?? PLAINTEXT;
}

export interface TlsAcceptor {
  /** a tls.Server whose handshakes this listener runs (its secure context is swapped on rotation) */
  server: tls.Server;
  /** whether a connection that does not start with TLS is served (PeerAuthentication PERMISSIVE) */
  plaintextAllowed(): boolean;
  onRefused?(reason: 'plaintext' | 'handshake', detail: string): void;
}

export interface DualServer {
  server: net.Server;
  /**
   * Move clients off, keeping what they sent: HTTP/2 connections get a GOAWAY (streams open
   * finish, new ones go elsewhere), HTTP/1.1 responses say `Connection: close`, idle
   * connections are closed. After `acceptForMs` no new connection is taken; resolves when
   * in-flight requests finished, or cuts them when the grace runs out.
   */
  drain(graceMs: number, acceptForMs?: number): Promise<void>;
  active(): number;
}

export interface DownstreamEvents {
  /** a connection refused: over the listener's cap, or silent past the headers timeout before its first byte */
  onRefused?(reason: 'limit' | 'silent'): void;
  /** a connection closed for resetting its streams as they open (rapid reset) */
  onRapidReset?(): void;
}

export function dualProtocolServer(
  handler: RequestHandler,
  opts: {
    /** defaultLimits() for what is not given */
    limits?: Partial<ListenerLimits>;
    tls?: TlsAcceptor;
    /** a connection accepted for HTTP (after the mTLS handshake, if any): the socket requests are read from */
    onConnection?: (socket: net.Socket, info: ConnectionInfo) => void;
    events?: DownstreamEvents;
  } = {},
): DualServer {
  const limits: ListenerLimits = { ...defaultLimits(), ...opts.limits };
  const events = opts.events ?? {};
  const headersTimeout = limits.headersTimeoutMs;
  let active = 0;
  let draining = false;
  const track: RequestHandler = (req, res) => {
    active++;
    res.once('close', () => active--);
    handler(req, res);
  };
  // An HTTP/2 stream starts once what arrived with it has been read: one its client resets in
  // the same breath (rapid reset, CVE-2023-44487) costs no route, no upstream request.
  const trackH2: RequestHandler = (req, res) => {
    setImmediate(() => {
      const stream = (req as http2.Http2ServerRequest).stream;
      if (!stream.destroyed && !stream.closed) track(req, res);
    });
  };
  // the whole-request and stream-idle timeouts are the request path's (stream-watch.ts), for both
  // protocols alike; the headers and idle timeouts are the connection's (h1-server.ts)
  const maxHeaders = limits.maxHeadersCount;
  const h1 = new H1Connections(track as (req: H1Request, res: H1Response) => void, { limits, isDraining: () => draining });
  // room past the limit (and the pseudo-headers) so that a request over it gets its 431, not a reset
  const h2 = http2.createServer({ maxSessionMemory: 64, maxHeaderListPairs: 2 * maxHeaders, settings: { maxHeaderListSize: limits.maxHeaderBytes, maxConcurrentStreams: limits.maxConcurrentStreams } }, trackH2);
  const sockets = new Set<net.Socket>();
  const acceptor = opts.tls;
  let h2Pending: ConnectionInfo | undefined;
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (session: http2.ServerHttp2Session) => {
    if (h2Pending) connections.set(session, h2Pending);
    // one that starts while draining is still served (a peer that has not heard yet); it is
    // sent its GOAWAY when new connections stop being taken
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // a plaintext connection's resets are its H2Guard's to count
    watchSession(session, limits, events, !h2Pending?.addresses);
  });
  if (acceptor) {
    acceptor.server.on('secureConnection', (s: tls.TLSSocket) => {
      const peer = s.getPeerCertificate();
      const info: ConnectionInfo = { mtls: s.authorized, peerPrincipal: s.authorized ? uriSanOf(peer) : undefined, sni: typeof s.servername === 'string' ? s.servername : undefined };
      connections.set(s, info);
      opts.onConnection?.(s, info);
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      if (s.alpnProtocol !== 'h2') return void h1.serve(s);
      // the h2 server makes the session synchronously, inside this emit
      h2Pending = info;
      h2.emit('connection', s);
      h2Pending = undefined;
    });
    acceptor.server.on('tlsClientError', (err, s) => {
      acceptor.onRefused?.('handshake', err.message);
      s.destroy();
    });
  }
  // no Nagle: a response's last small write must not wait for the client's delayed ACK (Envoy sets TCP_NODELAY too)
  let open = 0;
  const server = net.createServer({ noDelay: true }, (socket) => {
    // over the cap: refused at once and said so (where the client may read plaintext HTTP),
    // so that descriptors stay for the connections taken, the admin port's included
    if (open >= limits.maxConnections) {
      events.onRefused?.('limit');
      socket.on('error', () => undefined);
      if (acceptor) return void socket.destroy();
      return void socket.end(OVER_CAPACITY(limits.maxConnections));
    }
    open++;
    sockets.add(socket);
    socket.once('close', () => {
      open--;
      sockets.delete(socket);
    });
    // silent before its first byte: the headers timeout runs from the connection's start
    // (the listener goes with the first byte: the HTTP/1.1 server's own keep-alive timeout
    // uses the socket's timeout later, and is no silent connection)
    const silent = () => {
      events.onRefused?.('silent');
      socket.destroy();
    };
    socket.setTimeout(headersTimeout);
    socket.once('timeout', silent);
    socket.once('readable', () => {
      socket.setTimeout(0);
      socket.off('timeout', silent);
      const head: Buffer | null = socket.read();
      if (!head) {
        socket.once('end', () => socket.destroy());
        return;
      }
      // a TLS handshake record (whose own timeout is the TLS server's handshakeTimeout)
      if (acceptor && head[0] === 0x16) {
        socket.unshift(head);
        return void acceptor.server.emit('connection', socket);
      }
      if (acceptor && !acceptor.plaintextAllowed()) {
        acceptor.onRefused?.('plaintext', 'plaintext connection to a port that requires mTLS');
        return void socket.destroy();
      }
      opts.onConnection?.(socket, PLAINTEXT);
      const isH2 = head.length >= 3 && head.subarray(0, Math.min(head.length, H2_PREFACE.length)).equals(H2_PREFACE.subarray(0, Math.min(head.length, H2_PREFACE.length)));
      if (!isH2) {
        socket.unshift(head);
        return void h1.serve(socket);
      }
      // the first read is judged before an HTTP/2 session is made for it: a flood that opens
      // with its resets costs no session at all
      const guard = new H2Guard(socket, limits.prematureResetLimit, () => events.onRapidReset?.(), Date.now, head);
      if (guard.destroyed) return;
      h2Pending = { mtls: false, addresses: { remote: socket.remoteAddress ?? '', local: socket.localAddress ?? '' } };
      h2.emit('connection', guard);
      h2Pending = undefined;
    });
  });
  return {
    server,
    active: () => active,
    drain(graceMs, acceptForMs = 0) {
      draining = true;
      // GOAWAY: the open streams finish, the client makes new ones elsewhere
      for (const session of sessions) session.close();
      h1.closeIdle();
      const stopAccepting = () => {
        server.close();
        h1.close();
        for (const session of sessions) session.close();
      };
      const deadline = Date.now() + graceMs;
      const acceptUntil = Date.now() + Math.min(acceptForMs, graceMs);
      if (acceptForMs <= 0) stopAccepting();
      return new Promise((resolve) => {
        let accepting = acceptForMs > 0;
        const tick = () => {
          const now = Date.now();
          if (accepting && now >= acceptUntil) {
            accepting = false;
            stopAccepting();
          }
          if ((!accepting && active === 0) || now >= deadline) {
            if (accepting) stopAccepting();
            for (const s of sockets) s.destroy();
            resolve();
          } else setTimeout(tick, 25);
        };
        tick();
      });
    },
  };
}

/**
 * An HTTP/2 connection's own limits: closed (GOAWAY) once it has had no stream for the idle
 * timeout, and cut (GOAWAY ENHANCE_YOUR_CALM) when its client resets streams as fast as it
 * opens them (rapid reset). Plaintext connections are cut sooner, by their H2Guard, before
 * Node parses the flood; this count is what covers mTLS connections.
 */
function watchSession(session: http2.ServerHttp2Session, limits: ListenerLimits, events: DownstreamEvents, countResets: boolean): void {
  let open = 0;
  const budget = countResets ? new ResetBudget(limits.prematureResetLimit) : undefined;
  let cut = false;
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    idle = setTimeout(() => {
      session.close();
      // a peer that never answers the GOAWAY does not hold the socket either
      setTimeout(() => session.destroy(), 1000).unref();
    }, limits.idleTimeoutMs);
    idle.unref();
  };
  armIdle();
  session.once('close', () => clearTimeout(idle));
  session.on('stream', (stream: http2.ServerHttp2Stream) => {
    open++;
    clearTimeout(idle);
    let reset = false;
    if (budget) {
      const opened = Date.now();
      stream.once('aborted', () => (reset = Date.now() - opened < PREMATURE_RESET_MS));
      budget.opened();
    }
    stream.once('close', () => {
      open--;
      if (budget && reset && !cut && !budget.premature()) {
        cut = true;
        events.onRapidReset?.();
        // not from inside nghttp2's callback (this 'close' is one): a session destroyed there
        // trips Node's nghttp2 memory accounting (an assertion that aborts the process)
        setImmediate(() => session.destroy(new Error('streams reset by the client as they opened (rapid reset)'), ENHANCE_YOUR_CALM));
        return;
      }
      if (open === 0 && !session.destroyed && !session.closed) armIdle();
    });
  });
}
