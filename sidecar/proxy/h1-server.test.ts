// The raw HTTP/1.1 listener (h1-server.ts, h1-parse.ts, h1-chunked.ts) against hostile and
// odd clients, byte for byte over a real socket: what is refused, how bodies are framed both
// ways, keep-alive and pipelining, 100-continue, and the timeouts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { dualProtocolServer, type DualServer } from './downstream';

let srv: DualServer;
let port: number;
let seen: { url: string; headers: Record<string, unknown>; body: string; complete: boolean }[] = [];

/** Raw bytes in (each string a separate write, `gapMs` apart), everything written back, and whether the server closed. */
function raw(payload: string | string[], o: { waitMs?: number; gapMs?: number; halfOpen?: boolean } = {}): Promise<{ out: string; closed: boolean }> {
  const parts = Array.isArray(payload) ? payload : [payload];
  return new Promise((resolve) => {
    // halfOpen: the client goes on writing after the server has closed its side
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: o.halfOpen ?? false }, async () => {
      for (const p of parts) {
        if (s.destroyed) break;
        s.write(p, 'latin1');
        if (o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
      }
    });
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('error', () => undefined);
    const t = setTimeout(() => {
      s.destroy();
      resolve({ out, closed: false });
    }, o.waitMs ?? 1500);
    const closed = () => {
      clearTimeout(t);
      resolve({ out, closed: true });
    };
    s.on('close', closed);
    // a half-open client sees the server's side closed as its end
    if (o.halfOpen) s.on('end', closed);
  });
}

/** everything after the (first) head */
const bodyOf = (out: string): string => out.slice(out.indexOf('\r\n\r\n') + 4);
const statusOf = (out: string): number[] => [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

beforeAll(async () => {
  srv = dualProtocolServer(
    (req, res) => {
      // answered before its body is read, as a local reply (a timeout, a denial) is
      if (req.url === '/early') {
        req.on('data', () => undefined);
        return void res.writeHead(403, { 'content-length': 0 }).end();
      }
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('latin1')));
      req.on('error', () => undefined);
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: { ...req.headers }, body, complete: true });
        const url = req.url ?? '';
        if (url === '/chunked') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write(Buffer.from('ab'));
          return void res.end(Buffer.from('cd'));
        }
        if (url === '/nocontent') return void res.writeHead(204, { 'x-a': '1' }).end();
        if (url === '/badstatus') {
          try {
            res.writeHead(1000, {});
          } catch (err) {
            return void res.writeHead(500, { 'content-length': 0, 'x-error': (err as Error).name }).end();
          }
        }
        if (url === '/badlength') {
          try {
            res.writeHead(200, { 'content-length': '5, 5' });
          } catch (err) {
            return void res.writeHead(500, { 'content-length': 0, 'x-error': (err as { code?: string }).code ?? '' }).end();
          }
        }
        if (url === '/inject') {
          try {
            res.writeHead(200, { 'x-bad': 'a\r\nset-cookie: evil=1' });
          } catch (err) {
            return void res.writeHead(500, { 'content-length': 0, 'x-error': (err as { code?: string }).code ?? '' }).end();
          }
        }
        res.writeHead(200, { 'content-length': String(Buffer.byteLength(`${req.method} ${url} ${body}`)) });
        res.end(Buffer.from(`${req.method} ${url} ${body}`));
      });
    },
    { limits: { headersTimeoutMs: 400, idleTimeoutMs: 600 } },
  );
  await new Promise<void>((r) => srv.server.listen(0, '127.0.0.1', () => r()));
  port = (srv.server.address() as net.AddressInfo).port;
});

afterAll(() => srv.drain(0));

describe('heads that two parsers could read two ways are refused (400), and the connection closed', () => {
  const refused: [string, string][] = [
    ['Content-Length twice, even the same', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc'],
    ['Transfer-Encoding twice', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['chunked not the last coding', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'],
    ['a Transfer-Encoding that is not chunked', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
    ['Content-Length with a sign', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc'],
    ['Content-Length as a list', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc'],
    ['Content-Length in hex', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x3\r\n\r\nabc'],
    ['a folded header line', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n'],
    ['a folded Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n'],
    ['a space before the colon', 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'],
    ['a bare LF ending a line', 'GET / HTTP/1.1\nHost: x\r\n\r\n'],
    ['a bare CR inside a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n'],
    ['a NUL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'],
    ['an unknown version', 'GET / HTTP/1.2\r\nHost: x\r\n\r\n'],
    ['HTTP/0.9', 'GET /\r\n\r\n'],
    ['an unknown method', 'FETCH / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'],
    ['a control character in the target', 'GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n'],
  ];
  it.each(refused)('%s', async (_what, payload) => {
    const before = seen.length;
    const r = await raw(payload);
    expect(statusOf(r.out)).toEqual([400]);
    expect(r.closed).toBe(true);
    expect(seen.length).toBe(before);
  });

  it('a transfer coding other than chunked before it: 501', async () => {
    const r = await raw('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n');
    expect(statusOf(r.out)).toEqual([501]);
    expect(r.closed).toBe(true);
  });

  it('an expectation other than 100-continue: 417', async () => {
    const r = await raw('GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n');
    expect(statusOf(r.out)).toEqual([417]);
  });

  it('a head over the size limit: 431, even one that never ends its lines', async () => {
    expect(statusOf((await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(61 * 1024)}\r\n\r\n`)).out)).toEqual([431]);
    expect(statusOf((await raw(`GET /${'a'.repeat(61 * 1024)}`)).out)).toEqual([431]);
  });
});

describe('chunked request bodies', () => {
  it('are read across pieces, a byte at a time, with extensions and trailers', async () => {
    seen = [];
    const msg = 'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3;ext=1\r\nabc\r\n02 \t;e\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n';
    const r = await raw([...msg], { gapMs: 1, waitMs: 3000 });
    expect(statusOf(r.out)).toEqual([200]);
    expect(r.out).toContain('POST /c abcde');
    expect(seen.at(-1)).toMatchObject({ url: '/c', body: 'abcde' });
  });

  const malformed: [string, string][] = [
    ['a size that is not hex', 'zz\r\nhello\r\n0\r\n\r\n'],
    ['data not followed by CRLF', '5\r\nhelloX\r\n0\r\n\r\n'],
    ['a size line ending in a bare LF', '5\nhello\r\n0\r\n\r\n'],
    ['a size too large', 'fffffffffffffff\r\n'],
    ['a control character in an extension', '5;a\x01\r\nhello\r\n0\r\n\r\n'],
  ];
  it.each(malformed)('%s: 400, the connection closed, the body never complete', async (_what, body) => {
    seen = [];
    const r = await raw(`POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
    expect(statusOf(r.out)).toEqual([400]);
    expect(r.closed).toBe(true);
    expect(seen).toEqual([]);
  });
});

describe('keep-alive, pipelining, framing', () => {
  it('pipelined requests are answered one after another, in order, on one connection', async () => {
    const r = await raw(
      'GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(statusOf(r.out)).toEqual([200, 200, 200]);
    expect(r.out.indexOf('GET /one')).toBeLessThan(r.out.indexOf('POST /two hi'));
    expect(r.out.indexOf('POST /two hi')).toBeLessThan(r.out.indexOf('GET /three'));
    expect(r.closed).toBe(true);
  });

  it('leading blank lines before a request line are skipped (RFC 9112 2.2)', async () => {
    const r = await raw('\r\n\r\nGET /lead HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(statusOf(r.out)).toEqual([200]);
  });

  it('HTTP/1.0 closes after its answer unless it asks to keep the connection', async () => {
    const once = await raw('GET /ten HTTP/1.0\r\nHost: x\r\n\r\n');
    expect(once.out).toMatch(/^HTTP\/1\.1 200 [^]*connection: close/i);
    expect(once.closed).toBe(true);
    const kept = await raw('GET /ten HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n', { waitMs: 300 });
    expect(kept.out).toMatch(/connection: keep-alive/i);
    expect(kept.closed).toBe(false);
  });

  it('a response of no known length is chunked; HEAD and 204 get no body', async () => {
    const chunked = await raw('GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(chunked.out).toMatch(/transfer-encoding: chunked\r\n/);
    expect(bodyOf(chunked.out)).toBe('2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n');
    const head = await raw('HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(head.out).toMatch(/content-length: 8\r\n/);
    expect(bodyOf(head.out)).toBe('');
    const none = await raw('GET /nocontent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(statusOf(none.out)).toEqual([204]);
    expect(none.out).not.toMatch(/transfer-encoding/);
    expect(bodyOf(none.out)).toBe('');
  });

  it('a response header with CR or LF is never written (no response splitting)', async () => {
    const r = await raw('GET /inject HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(statusOf(r.out)).toEqual([500]);
    expect(r.out).toMatch(/x-error: ERR_INVALID_CHAR/);
    expect(r.out).not.toMatch(/evil/);
  });

  it('a response Content-Length that is not one plain number is never written (the body could not be framed by it)', async () => {
    const r = await raw('GET /badlength HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(statusOf(r.out)).toEqual([500]);
    expect(r.out).toMatch(/x-error: ERR_INVALID_CHAR/);
    expect(r.out).not.toMatch(/5, 5/);
  });

  it('a status outside 100-999 is never written (a status line that is not three digits)', async () => {
    const r = await raw('GET /badstatus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(statusOf(r.out)).toEqual([500]);
    expect(r.out).toMatch(/x-error: RangeError/);
    expect(r.out).not.toMatch(/1000/);
  });

  it('Expect: 100-continue is answered before the body is sent', async () => {
    const r = await raw(['POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', 'ok'], { gapMs: 100 });
    expect(statusOf(r.out)).toEqual([100, 200]);
    expect(r.out).toContain('POST /e ok');
  });

  it('headers are read as node:http reads them: names lower-cased, duplicates joined, Host and the like kept first', async () => {
    seen = [];
    await raw('GET /h HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nx-dup: 2\r\nCookie: a=1\r\nCookie: b=2\r\nUser-Agent: one\r\nUser-Agent: two\r\nSet-Cookie: s=1\r\nConnection: close\r\n\r\n');
    expect(seen[0].headers).toMatchObject({ host: 'a', 'x-dup': '1, 2', cookie: 'a=1; b=2', 'user-agent': 'one', 'set-cookie': ['s=1'] });
  });
});

describe('a request answered before its body is read', () => {
  it('closes the connection after the answer, and bytes the client still sends are dropped, never read as a request', async () => {
    const before = seen.length;
    const r = await raw(['POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab', 'cd', 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n', 'ef'], { gapMs: 50, halfOpen: true });
    expect(statusOf(r.out)).toEqual([403]);
    expect(r.out).toMatch(/connection: close\r\n/);
    expect(r.closed).toBe(true);
    expect(seen.length).toBe(before);
    // the listener is still there
    expect(statusOf((await raw('GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).out)).toEqual([200]);
  });
});

describe('timeouts', () => {
  it('a head that trickles in past the headers timeout gets 408', async () => {
    const r = await raw(['GET / HTTP/1.1\r\n', 'Host: x\r\n', 'X-A: 1\r\n', 'X-B: 2\r\n'], { gapMs: 200, waitMs: 2500 });
    expect(statusOf(r.out)).toEqual([408]);
    expect(r.closed).toBe(true);
  });

  it('an idle kept-alive connection is closed at the idle timeout', async () => {
    const t0 = Date.now();
    const r = await raw('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n', { waitMs: 3000 });
    expect(statusOf(r.out)).toEqual([200]);
    expect(r.closed).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
  });
});

describe('draining', () => {
  it('a response given while the listener drains says Connection: close, and its connection closes after it', async () => {
    const d = dualProtocolServer((_req, res) => void setTimeout(() => res.writeHead(200, { 'content-length': 2 }).end('ok'), 150));
    await new Promise<void>((r) => d.server.listen(0, '127.0.0.1', () => r()));
    const p = (d.server.address() as net.AddressInfo).port;
    const answer = new Promise<{ out: string; closed: boolean }>((resolve) => {
      const s = net.connect(p, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = '';
      s.on('data', (b) => (out += b.toString('latin1')));
      const t = setTimeout(() => (s.destroy(), resolve({ out, closed: false })), 1500);
      s.on('close', () => (clearTimeout(t), resolve({ out, closed: true })));
    });
    await new Promise((r) => setTimeout(r, 50));
    const drained = d.drain(2000, 500);
    const r = await answer;
    await drained;
    expect(statusOf(r.out)).toEqual([200]);
    expect(r.out).toMatch(/connection: close\r\n/);
    expect(r.closed).toBe(true);
  });
});
