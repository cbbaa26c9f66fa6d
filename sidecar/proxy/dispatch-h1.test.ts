// The HTTP/1.1 dispatcher against raw local servers that misbehave on cue: what a request
// learns (the final answer past 1xx, trailers, repeated headers) and which error class a
// failure becomes (a reset as a kept-alive connection is reused, a reset on a fresh one, a
// connect that never completes), since the retry layer decides on those classes.
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { H1Dispatcher } from './dispatch-h1';
import { ConnectFailureError, ReusedConnectionResetError, UpstreamResetError } from './errors';
import type { Target, UpstreamResponse } from './dispatch';
import { responseHeaders } from './h1-headers';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

/** a server that, for the n-th request (from 1) on each connection, writes what `answer` says, or resets it */
async function rawServer(answer: (n: number, connection: number, head: string) => string | 'reset' | 'silent') {
  const seen = { connections: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    const connection = ++seen.connections;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let n = 0;
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        const head = buf.slice(0, buf.indexOf('\r\n\r\n'));
        buf = buf.slice(head.length + 4);
        const a = answer(++n, connection, head);
        if (a === 'reset') return void s.resetAndDestroy();
        if (a !== 'silent') s.write(a);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { seen, port: (server.address() as AddressInfo).port };
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

function dispatcher(): H1Dispatcher {
  const d = new H1Dispatcher();
  cleanup.push(() => d.close());
  return d;
}

const get = (d: H1Dispatcher, t: Target, connectTimeoutMs = 1000) =>
  d.dispatch(t, { method: 'GET', path: '/', authority: 'backend', headers: {}, body: null, connectTimeoutMs }).response;

async function read(r: UpstreamResponse): Promise<string> {
  let s = '';
  for await (const c of r.body) s += (c as Buffer).toString();
  return s;
}

describe('H1Dispatcher', () => {
  it('reads past informational answers to the final one', async () => {
    const b = await rawServer(() => 'HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n' + OK);
    const r = await get(dispatcher(), { host: '127.0.0.1', port: b.port });
    expect(r.status).toBe(200);
    expect(await read(r)).toBe('ok');
  });

  it('takes response headers up to 60 KiB, as the listeners take request headers', async () => {
    const big = 'x'.repeat(40 * 1024);
    const b = await rawServer(() => `HTTP/1.1 200 OK\r\nx-big: ${big}\r\ncontent-length: 2\r\n\r\nok`);
    const r = await get(dispatcher(), { host: '127.0.0.1', port: b.port });
    expect(r.headers['x-big']).toBe(big);
    expect(await read(r)).toBe('ok');
  });

  it('hands over a chunked body and its trailers', async () => {
    const b = await rawServer(() => 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: grpc-status\r\n\r\n2\r\nhi\r\n0\r\ngrpc-status: 0\r\n\r\n');
    const r = await get(dispatcher(), { host: '127.0.0.1', port: b.port });
    expect(await read(r)).toBe('hi');
    expect(await r.trailers).toEqual({ 'grpc-status': '0' });
  });

  it('a kept-alive connection reset as it is reused is a ReusedConnectionResetError (retried), a fresh one reset is not', async () => {
    const b = await rawServer((n, connection) => (n === 1 && connection === 1 ? OK : 'reset'));
    const d = dispatcher();
    const t = { host: '127.0.0.1', port: b.port };
    const first = await get(d, t);
    expect(await read(first)).toBe('ok');
    await expect(get(d, t)).rejects.toBeInstanceOf(ReusedConnectionResetError);
    // the next goes on a new connection, which the server resets at once: the upstream may have seen it
    const err = await get(d, t).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamResetError);
    expect(err).not.toBeInstanceOf(ReusedConnectionResetError);
    expect(b.seen.connections).toBe(2);
  });

  it('a HEAD answer and a 204 carry no body; after a HEAD the next request takes a new connection (undici closes it)', async () => {
    const b = await rawServer((_n, _c, head) =>
      head.startsWith('HEAD') ? 'HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: 5\r\n\r\n' : head.startsWith('GET /204') ? 'HTTP/1.1 204 No Content\r\n\r\n' : OK,
    );
    const d = dispatcher();
    const t = { host: '127.0.0.1', port: b.port };
    const send = (method: string, path: string) => d.dispatch(t, { method, path, authority: 'b', headers: {}, body: null, connectTimeoutMs: 1000 }).response;
    const head = await send('HEAD', '/');
    expect([head.status, head.headers['content-length'], await read(head)]).toEqual([200, '5', '']);
    const none = await send('GET', '/204');
    expect([none.status, await read(none)]).toEqual([204, '']);
    expect(await read(await send('GET', '/'))).toBe('ok');
    // the 204's connection carried the last request too
    expect(b.seen.connections).toBe(2);
  });

  it('a response set aside unread, then cut by its upstream, ends quietly (no unheard error)', async () => {
    const b = await rawServer(() => 'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial');
    const d = dispatcher();
    const r = await get(d, { host: '127.0.0.1', port: b.port });
    cleanup.splice(0).forEach((c) => c());
    await new Promise((res) => r.body.once('close', res));
    expect(r.body.destroyed).toBe(true);
  }, 5000);

  it('a response framed two ways (Content-Length and Transfer-Encoding) is refused as an upstream reset, never relayed', async () => {
    const b = await rawServer(() => 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    const err = await get(dispatcher(), { host: '127.0.0.1', port: b.port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamResetError);
  });

  it('a response that says connection: close is the last on its connection', async () => {
    const b = await rawServer((n) => (n === 1 ? 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok' : OK));
    const d = dispatcher();
    const t = { host: '127.0.0.1', port: b.port };
    expect(await read(await get(d, t))).toBe('ok');
    expect(await read(await get(d, t))).toBe('ok');
    expect(b.seen.connections).toBe(2);
  });

  it('a TLS handshake that never completes is a connect failure at the connect timeout', async () => {
    const b = await rawServer(() => 'silent');
    const t: Target = { host: '127.0.0.1', port: b.port, tls: { key: 'silent', options: () => ({ host: '127.0.0.1', port: b.port, rejectUnauthorized: false }) } };
    await expect(get(dispatcher(), t, 150)).rejects.toBeInstanceOf(ConnectFailureError);
  });

  it('a refused connection is a connect failure', async () => {
    const b = await rawServer(() => OK);
    const port = b.port;
    cleanup.splice(0).forEach((c) => c());
    await expect(get(dispatcher(), { host: '127.0.0.1', port })).rejects.toBeInstanceOf(ConnectFailureError);
  });

  it('an abort while connecting rejects with its reason', async () => {
    const b = await rawServer(() => 'silent');
    const t: Target = { host: '127.0.0.1', port: b.port, tls: { key: 'silent', options: () => ({ host: '127.0.0.1', port: b.port, rejectUnauthorized: false }) } };
    const f = dispatcher().dispatch(t, { method: 'GET', path: '/', authority: 'b', headers: {}, body: null, connectTimeoutMs: 5000 });
    const reason = new Error('the route timed out');
    f.abort(reason);
    await expect(f.response).rejects.toBe(reason);
  });
});

describe('H1Dispatcher bodies', () => {
  it('streams a request body of unknown length chunked, and a large response with back-pressure', async () => {
    const http = await import('node:http');
    const big = Buffer.alloc(4 << 20, 7);
    let received = '';
    let framing = '';
    const server = http.createServer((req, res) => {
      framing = String(req.headers['transfer-encoding']);
      req.setEncoding('utf8');
      req.on('data', (c: string) => (received += c));
      req.on('end', () => res.end(big));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => server.close());
    const { Readable } = await import('node:stream');
    const f = dispatcher().dispatch(
      { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
      { method: 'POST', path: '/', authority: 'b', headers: {}, body: Readable.from(['one ', 'two']), connectTimeoutMs: 1000 },
    );
    const r = await f.response;
    // read slowly: the upstream is paused rather than the body buffering all 4 MiB (a read takes what waits)
    let bytes = 0;
    let most = 0;
    for await (const c of r.body) {
      bytes += (c as Buffer).length;
      most = Math.max(most, (c as Buffer).length);
      await new Promise((res) => setTimeout(res, 2));
    }
    expect(bytes).toBe(big.length);
    expect(most, `at most ${most} bytes waited`).toBeLessThan(1 << 20);
    expect(received).toBe('one two');
    expect(framing).toBe('chunked');
  });
});

describe('responseHeaders', () => {
  it('reads raw lines as node:http does', () => {
    const raw = ['Set-Cookie', 'a=1', 'X-A', '1', 'set-cookie', 'b=2', 'x-a', '2', 'Content-Type', 'text/plain', 'content-type', 'text/html', 'Cookie', 'c=1', 'cookie', 'd=2'];
    expect(responseHeaders(raw.map((s) => Buffer.from(s)))).toEqual({
      'set-cookie': ['a=1', 'b=2'],
      'x-a': '1, 2',
      'content-type': 'text/plain',
      cookie: 'c=1; d=2',
    });
  });
});
