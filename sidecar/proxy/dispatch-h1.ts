// H1Dispatcher: keep-alive HTTP/1.1 pools, one per TLS target and connection settings,
// keeping an idle socket no longer than its server or the cluster allows.
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { classifyUpstreamError, ConnectFailureError, ReusedConnectionResetError } from './errors';
import { keepalive, type ConnectionOptions, type Dispatcher, type InFlight, type Target, type UpstreamRequest, type UpstreamResponse } from './dispatch';

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
