// A cluster's connection settings, as the dispatchers keep them, observed at real local
// servers: idle connections closed, requests and lifetime per connection, h2 streams
// per connection and PINGs.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConnectionOptions, Dispatcher, Target } from './dispatch';
import { H1Dispatcher } from './dispatch-h1';
import { H2Dispatcher } from './dispatch-h2';

async function waitFor(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const conn = (o: Omit<ConnectionOptions, 'key'>): ConnectionOptions => ({ ...o, key: JSON.stringify(o) });

async function get(d: Dispatcher, t: Target, path = '/'): Promise<number> {
  const r = await d.dispatch(t, { method: 'GET', path, authority: 'backend', headers: {}, body: null, connectTimeoutMs: 1000 }).response;
  r.body.resume();
  await new Promise((res) => r.body.once('close', res));
  return r.status;
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

/** an HTTP/1.1 backend counting the connections it was opened and that were closed */
async function h1Backend() {
  const seen = { opened: 0, closed: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    res.end('ok');
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    seen.opened++;
    s.once('close', () => seen.closed++);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { seen, port: (server.address() as AddressInfo).port };
}

/** an h2c backend counting its sessions and the PINGs it was sent; `hold` answers only when released */
async function h2Backend() {
  const seen = { sessions: 0, closed: 0, pings: 0 };
  const held: (() => void)[] = [];
  const server = http2.createServer();
  server.on('session', (s) => {
    seen.sessions++;
    s.on('ping', () => seen.pings++);
    s.once('close', () => seen.closed++);
  });
  server.on('stream', (stream, headers) => {
    const answer = () => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    };
    if (headers[':path'] === '/hold') held.push(answer);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => server.close());
  return { seen, held, port: (server.address() as AddressInfo).port };
}

describe('HTTP/1.1 upstream connections', () => {
  it('an idle timeout closes the kept-alive connection', async () => {
    const b = await h1Backend();
    const d = new H1Dispatcher();
    cleanup.push(() => d.close());
    expect(await get(d, { host: '127.0.0.1', port: b.port, conn: conn({ idleTimeoutMs: 100 }) })).toBe(200);
    await waitFor('the backend to see its connection closed', () => b.seen.closed === 1);
  });

  it('without one, the connection stays open', async () => {
    const b = await h1Backend();
    const d = new H1Dispatcher();
    cleanup.push(() => d.close());
    await get(d, { host: '127.0.0.1', port: b.port, conn: conn({ maxRequestsPerConnection: 100 }) });
    await new Promise((r) => setTimeout(r, 300));
    expect(b.seen).toEqual({ opened: 1, closed: 0 });
  });

  it('maxRequestsPerConnection: a connection carries that many requests, then a new one is made', async () => {
    const b = await h1Backend();
    const d = new H1Dispatcher();
    cleanup.push(() => d.close());
    const t = { host: '127.0.0.1', port: b.port, conn: conn({ maxRequestsPerConnection: 2 }) };
    for (let i = 0; i < 5; i++) await get(d, t);
    expect(b.seen.opened).toBe(3);
  });

  it('maxConnectionDuration: an older connection is not reused', async () => {
    const b = await h1Backend();
    const d = new H1Dispatcher();
    cleanup.push(() => d.close());
    const t = { host: '127.0.0.1', port: b.port, conn: conn({ maxConnectionDurationMs: 100 }) };
    await get(d, t);
    await waitFor('the connection to age out', () => b.seen.closed === 1);
    await get(d, t);
    expect(b.seen.opened).toBe(2);
  });
});

describe('HTTP/2 upstream sessions', () => {
  it('an idle timeout closes the session once its last stream is over', async () => {
    const b = await h2Backend();
    const d = new H2Dispatcher();
    cleanup.push(() => d.close());
    const t = { host: '127.0.0.1', port: b.port, conn: conn({ idleTimeoutMs: 100 }) };
    await get(d, t);
    await get(d, t);
    await waitFor('the backend to see the session closed', () => b.seen.closed === 1);
    expect(b.seen.sessions).toBe(1);
  });

  it('without settings, one session per peer, kept', async () => {
    const b = await h2Backend();
    const d = new H2Dispatcher();
    cleanup.push(() => d.close());
    const t = { host: '127.0.0.1', port: b.port };
    await Promise.all([get(d, t), get(d, t), get(d, t)]);
    await new Promise((r) => setTimeout(r, 200));
    expect(b.seen).toMatchObject({ sessions: 1, closed: 0 });
  });

  it('maxRequestsPerConnection: a new session after that many streams', async () => {
    const b = await h2Backend();
    const d = new H2Dispatcher();
    cleanup.push(() => d.close());
    const t = { host: '127.0.0.1', port: b.port, conn: conn({ maxRequestsPerConnection: 2 }) };
    for (let i = 0; i < 5; i++) await get(d, t);
    expect(b.seen.sessions).toBe(3);
    await waitFor('the used-up sessions to close', () => b.seen.closed >= 2);
  });

  it('maxConcurrentStreams: another session when one is full', async () => {
    const b = await h2Backend();
    const d = new H2Dispatcher();
    cleanup.push(() => d.close());
    const t = { host: '127.0.0.1', port: b.port, conn: conn({ maxConcurrentStreams: 1 }) };
    const first = get(d, t, '/hold');
    await waitFor('the first stream to arrive', () => b.held.length === 1);
    const second = get(d, t, '/hold');
    await waitFor('the second stream to arrive', () => b.held.length === 2);
    expect(b.seen.sessions).toBe(2);
    for (const answer of b.held) answer();
    expect(await first).toBe(200);
    expect(await second).toBe(200);
    // once free, the first session takes the next stream
    await get(d, t);
    expect(b.seen.sessions).toBe(2);
  });

  it('limits hold for requests that wait for the same new session', async () => {
    const b = await h2Backend();
    const d = new H2Dispatcher();
    cleanup.push(() => d.close());
    const one = { host: '127.0.0.1', port: b.port, conn: conn({ maxConcurrentStreams: 1 }) };
    const both = [get(d, one, '/hold'), get(d, one, '/hold')];
    await waitFor('both streams to arrive', () => b.held.length === 2);
    expect(b.seen.sessions).toBe(2);
    for (const answer of b.held) answer();
    expect(await Promise.all(both)).toEqual([200, 200]);
    const each = { host: '127.0.0.1', port: b.port, conn: conn({ maxRequestsPerConnection: 1 }) };
    expect(await Promise.all([get(d, each), get(d, each), get(d, each)])).toEqual([200, 200, 200]);
    expect(b.seen.sessions).toBe(5);
  });

  it('http2 keepalive: PINGs go out on the session', async () => {
    const b = await h2Backend();
    const d = new H2Dispatcher();
    cleanup.push(() => d.close());
    await get(d, { host: '127.0.0.1', port: b.port, conn: conn({ h2Keepalive: { intervalMs: 30, timeoutMs: 1000 } }) });
    await waitFor('two PINGs', () => b.seen.pings >= 2);
    expect(b.seen.closed).toBe(0);
  });

  it('settings that differ never share a session', async () => {
    const b = await h2Backend();
    const d = new H2Dispatcher();
    cleanup.push(() => d.close());
    await get(d, { host: '127.0.0.1', port: b.port, conn: conn({ idleTimeoutMs: 60_000 }) });
    await get(d, { host: '127.0.0.1', port: b.port, conn: conn({ idleTimeoutMs: 30_000 }) });
    await get(d, { host: '127.0.0.1', port: b.port });
    expect(b.seen.sessions).toBe(3);
  });
});
