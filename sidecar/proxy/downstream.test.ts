import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { dualProtocolServer, type DualServer } from './downstream';
import type { ListenerLimits } from './limits';

let srv: DualServer;
let port: number;

// Raw bytes in, everything the server wrote out, and whether it closed the connection.
function raw(payload: string | Buffer, waitMs = 2000): Promise<{ out: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(payload));
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    const t = setTimeout(() => {
      s.destroy();
      resolve({ out, closed: false });
    }, waitMs);
    s.on('close', () => {
      clearTimeout(t);
      resolve({ out, closed: true });
    });
  });
}

beforeAll(async () => {
  srv = dualProtocolServer(
    (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => res.end(`${req.httpVersion} ${req.method} ${req.url} ${body}`));
    },
    { limits: { headersTimeoutMs: 600 } },
  );
  await new Promise<void>((r) => srv.server.listen(0, '127.0.0.1', () => r()));
  port = (srv.server.address() as net.AddressInfo).port;
});

afterAll(() => srv.drain(0));

describe('one port, HTTP/1.1 and h2c', () => {
  it('serves HTTP/1.1', async () => {
    const r = await raw('POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi');
    expect(r.out).toMatch(/^HTTP\/1\.1 200/);
    expect(r.out).toContain('1.1 POST /a hi');
  });

  it('serves h2c with prior knowledge', async () => {
    const s = http2.connect(`http://127.0.0.1:${port}`);
    const body = await new Promise<string>((resolve, reject) => {
      const st = s.request({ ':path': '/b', ':method': 'POST' });
      let b = '';
      st.on('data', (c) => (b += c));
      st.on('end', () => resolve(b));
      st.on('error', reject);
      st.end('yo');
    });
    s.close();
    expect(body).toBe('2.0 POST /b yo');
  });
});

describe('malformed requests (SPEC section 7)', () => {
  it('Content-Length with Transfer-Encoding: 400 and a closed connection', async () => {
    const r = await raw('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    expect(r.out).toMatch(/^HTTP\/1\.1 400 /);
    expect(r.closed).toBe(true);
  });

  it('two different Content-Lengths: 400 and a closed connection', async () => {
    const r = await raw('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd');
    expect(r.out).toMatch(/^HTTP\/1\.1 400 /);
    expect(r.closed).toBe(true);
  });

  it('headers over 60 KiB: 431', async () => {
    const r = await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(62 * 1024)}\r\n\r\n`);
    expect(r.out).toMatch(/^HTTP\/1\.1 431 /);
  });

  it('headers that do not arrive in time: 408', async () => {
    const r = await raw('GET / HTTP/1.1\r\nHost: x\r\n', 5000);
    expect(r.out).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.closed).toBe(true);
  });

  it('garbage: 400, never a crash', async () => {
    const r = await raw('\x00\x01\x02 nonsense\r\n\r\n');
    expect(r.out).toMatch(/^HTTP\/1\.1 400 /);
    const ok = await raw('GET /still HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(ok.out).toMatch(/^HTTP\/1\.1 200/);
  });
});

/** A server of its own, for limits that would get in the way of the tests above. */
async function serverWith(limits: Partial<ListenerLimits>, events: { refused: string[]; rapid: number }, hold = false): Promise<{ srv: DualServer; port: number }> {
  const s = dualProtocolServer(
    (req, res) => {
      req.resume();
      if (!hold) req.on('end', () => res.end('ok'));
    },
    { limits, events: { onRefused: (r) => events.refused.push(r), onRapidReset: () => events.rapid++ } },
  );
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', () => r()));
  return { srv: s, port: (s.server.address() as net.AddressInfo).port };
}

function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

describe('connection limits (issue 13)', () => {
  it('a connection that sends nothing is closed at the headers timeout, before its first byte', async () => {
    const events = { refused: [] as string[], rapid: 0 };
    const { srv: s, port: p } = await serverWith({ headersTimeoutMs: 300 }, events);
    const c = net.connect(p, '127.0.0.1');
    c.on('error', () => undefined);
    expect(await closedWithin(c, 3000)).toBe(true);
    expect(events.refused).toEqual(['silent']);
    await s.drain(0);
  });

  it('past the connection cap, one more is refused with a 503 that says so, and the ones taken still work', async () => {
    const events = { refused: [] as string[], rapid: 0 };
    const { srv: s, port: p } = await serverWith({ maxConnections: 3 }, events);
    const held = await Promise.all([0, 1, 2].map(() => new Promise<net.Socket>((r) => { const c = net.connect(p, '127.0.0.1', () => r(c)); })));
    // the server counts a connection once it accepted it
    await new Promise((r) => setTimeout(r, 100));
    const over = await new Promise<string>((resolve) => {
      const c = net.connect(p, '127.0.0.1');
      let out = '';
      c.on('data', (d) => (out += d));
      c.on('close', () => resolve(out));
      c.on('error', () => undefined);
    });
    expect(over).toMatch(/^HTTP\/1\.1 503 /);
    expect(over).toContain('connection limit reached');
    expect(events.refused).toEqual(['limit']);
    const ok = await new Promise<string>((resolve) => {
      let out = '';
      held[0].on('data', (d) => (out += d));
      held[0].on('close', () => resolve(out));
      held[0].write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    expect(ok).toMatch(/^HTTP\/1\.1 200/);
    // one left: room for one more
    await new Promise((r) => setTimeout(r, 100));
    const again = await raw2(p, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(again).toMatch(/^HTTP\/1\.1 200/);
    for (const c of held) c.destroy();
    await s.drain(0);
  });

  it('an HTTP/2 connection with no stream open is closed at the idle timeout (GOAWAY)', async () => {
    const events = { refused: [] as string[], rapid: 0 };
    const { srv: s, port: p } = await serverWith({ idleTimeoutMs: 300 }, events);
    const session = http2.connect(`http://127.0.0.1:${p}`);
    session.on('error', () => undefined);
    const goaway = new Promise<boolean>((r) => session.once('goaway', () => r(true)));
    await new Promise<void>((resolve, reject) => {
      const st = session.request({ ':path': '/' });
      st.resume();
      st.on('end', resolve);
      st.on('error', reject);
    });
    const closed = new Promise<boolean>((r) => session.once('close', () => r(true)));
    expect(await Promise.race([goaway, new Promise<boolean>((r) => setTimeout(() => r(false), 3000))])).toBe(true);
    expect(await closed).toBe(true);
    await s.drain(0);
  });

  it('rapid reset: a client resetting its streams as it opens them loses its connection', async () => {
    const events = { refused: [] as string[], rapid: 0 };
    const { srv: s, port: p } = await serverWith({ prematureResetLimit: 40 }, events, true);
    const session = http2.connect(`http://127.0.0.1:${p}`);
    session.on('error', () => undefined);
    await new Promise((r) => session.once('remoteSettings', r));
    const closed = new Promise<boolean>((r) => session.once('close', () => r(true)));
    for (let i = 0; i < 200 && !session.destroyed && !session.closed; i++) {
      const st = session.request({ ':path': '/' }, { endStream: true });
      st.on('error', () => undefined);
      st.close(http2.constants.NGHTTP2_CANCEL);
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), 3000))])).toBe(true);
    expect(events.rapid).toBe(1);
    await s.drain(0);
  });

  it('streams that end as they should never count against the reset budget', async () => {
    const events = { refused: [] as string[], rapid: 0 };
    const { srv: s, port: p } = await serverWith({ prematureResetLimit: 20 }, events);
    const session = http2.connect(`http://127.0.0.1:${p}`);
    for (let i = 0; i < 60; i++) {
      await new Promise<void>((resolve, reject) => {
        const st = session.request({ ':path': '/' }, { endStream: true });
        st.resume();
        st.on('end', resolve);
        st.on('error', reject);
      });
    }
    expect(session.destroyed).toBe(false);
    expect(events.rapid).toBe(0);
    session.close();
    await s.drain(0);
  });
});

function raw2(p: number, payload: string): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(p, '127.0.0.1', () => c.write(payload));
    let out = '';
    c.on('data', (d) => (out += d));
    c.on('close', () => resolve(out));
    c.on('error', () => undefined);
  });
}
