// How an HTTP/1.1 upstream connection is made: TCP or TLS (whose options are read for each
// connection, so a rotated certificate applies to the next one), no Nagle, the cluster's
// TCP keepalive, and the request's connect timeout. Any failure here is a connect failure
// (UF): the upstream never saw a byte of the request.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ConnectFailureError } from './errors';
import type { buildConnector } from 'undici';
import { keepalive, type Target } from './dispatch';

export function connector(t: Target, timeoutMs: number): buildConnector.connector {
  return (_opts, done) => {
    const socket = t.tls ? tls.connect(t.tls.options()) : net.connect({ host: t.host, port: t.port });
    socket.setNoDelay(true);
    let settled = false;
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('error', onError);
      if (err) {
        socket.destroy();
        return done(err, null);
      }
      keepalive(socket, t.conn);
      done(null, socket);
    };
    const onError = (err: Error) => settle(new ConnectFailureError(`upstream connect error: ${err.message}`, { cause: err }));
    const timer = setTimeout(() => settle(new ConnectFailureError(`connect to ${t.host}:${t.port} timed out after ${timeoutMs}ms`)), timeoutMs);
    socket.once('error', onError);
    // a TLS connection is made once its handshake is done (a failed handshake is UF too)
    socket.once(t.tls ? 'secureConnect' : 'connect', () => settle(null));
  };
}
