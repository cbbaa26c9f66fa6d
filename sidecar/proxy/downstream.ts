// One listening socket that speaks HTTP/1.1 and h2c (prior knowledge) alike: the
// first bytes of a connection decide. Limits from SPEC section 7 are set here.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';

export type DownstreamRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type DownstreamResponse = http.ServerResponse | http2.Http2ServerResponse;
export type RequestHandler = (req: DownstreamRequest, res: DownstreamResponse) => void;

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const MAX_HEADER_BYTES = 60 * 1024;
export const HEADERS_TIMEOUT_MS = 10_000;

export interface DualServer {
  server: net.Server;
  /** stop accepting; resolves when in-flight requests finished or the grace ran out */
  drain(graceMs: number): Promise<void>;
  active(): number;
}

export function dualProtocolServer(handler: RequestHandler, opts: { headersTimeoutMs?: number } = {}): DualServer {
  const headersTimeout = opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  let active = 0;
  const track: RequestHandler = (req, res) => {
    active++;
    res.once('close', () => active--);
    handler(req, res);
  };
  const h1 = http.createServer(
    { maxHeaderSize: MAX_HEADER_BYTES, headersTimeout, requestTimeout: 0, keepAliveTimeout: 60_000, connectionsCheckingInterval: Math.min(1000, headersTimeout / 2) },
    track,
  );
  // h1 never listens itself (the sniffer hands it sockets), but its header-timeout
  // tracking starts on 'listening': without this, slow headers would never get a 408.
  h1.emit('listening');
  h1.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });
  const h2 = http2.createServer({ maxSessionMemory: 64, settings: { maxHeaderListSize: MAX_HEADER_BYTES } }, track);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('readable', () => {
      const head: Buffer | null = socket.read();
      if (!head) {
        socket.once('end', () => socket.destroy());
        return;
      }
      socket.unshift(head);
      const isH2 = head.length >= 3 && head.subarray(0, Math.min(head.length, H2_PREFACE.length)).equals(H2_PREFACE.subarray(0, Math.min(head.length, H2_PREFACE.length)));
      (isH2 ? h2 : h1).emit('connection', socket);
    });
  });
  return {
    server,
    active: () => active,
    drain(graceMs) {
      server.close();
      h1.close();
      h1.closeIdleConnections();
      return new Promise((resolve) => {
        const deadline = Date.now() + graceMs;
        const tick = () => {
          if (active === 0 || Date.now() >= deadline) {
            for (const s of sockets) s.destroy();
            resolve();
          } else setTimeout(tick, 25);
        };
        tick();
      });
    },
  };
}
