import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { dualProtocolServer, type DualServer } from './downstream';

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
    { headersTimeoutMs: 600 },
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
