// Hostile and malformed requests against a real sidecar: each gets the status the
// contract names, the application never sees it, and nothing is silently dropped.
// (Issue 13: this suite grows with each of its limits.)
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

const MESH = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {x-last: {exact: "yes"}}}]
    directResponse: {status: 418, body: {string: "the last header was read"}}
  - route: [{destination: {host: echo}}]
`;

/** One raw HTTP/1.1 request on a connection of its own; resolves with the status line's code. */
function raw(port: number, head: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(head));
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      got += c;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m) {
        resolve(Number(m[1]));
        s.destroy();
      }
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed without a status line: ${JSON.stringify(got.slice(0, 200))}`)));
    s.setTimeout(5000, () => s.destroy(new Error('timed out')));
  });
}

const fillers = (n: number) => Array.from({ length: n }, (_, i) => `x-filler-${i}: ${i}\r\n`).join('');

describe('hostile requests', () => {
  let dir: string;
  let echo: h.Sidecar;
  let app: h.App;
  /** requests the application holds open at /hang, and the most it held at once */
  const hanging = { now: 0, max: 0, release: [] as (() => void)[] };
  /** bodies the application read to their end, by path */
  const completed = new Map<string, string>();

  beforeAll(async () => {
    dir = h.tmpDir('tandem-hostile-e2e-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, MESH);
    const cp = await h.startControlPlane(dir, configPath);
    app = await h.startApp('echo', (req, res) => {
      if (req.url?.startsWith('/upload')) {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (body += c));
        req.on('end', () => {
          completed.set(req.url!, body);
          res.end('stored');
        });
        req.on('error', () => undefined);
        return;
      }
      req.resume();
      // a response cut short: its headers promise more than ever comes
      if (req.url === '/cut-length' || req.url === '/cut-chunked') {
        if (req.url === '/cut-length') res.setHeader('content-length', 100);
        res.writeHead(200);
        res.write('hello');
        setTimeout(() => res.socket?.destroy(), 100);
        return;
      }
      if (req.url !== '/hang') return void res.end('ok');
      hanging.now++;
      hanging.max = Math.max(hanging.max, hanging.now);
      const done = () => {
        const i = hanging.release.indexOf(done);
        if (i >= 0) hanging.release.splice(i, 1);
        hanging.now--;
        res.end('released');
      };
      hanging.release.push(done);
      // cut by the sidecar: no longer held
      res.once('close', () => {
        const i = hanging.release.indexOf(done);
        if (i >= 0) {
          hanging.release.splice(i, 1);
          hanging.now--;
        }
      });
    });
    // the application speaks HTTP/1.1 only, whatever the caller spoke
    echo = await h.startSidecar(cp, 'echo', app.port, {}, { args: ['--app-protocol', 'http1'] });
    await h.waitFor('echo routed', async () => (await h.request(echo.outbound, { host: 'echo', path: '/' })).status === 200 || undefined, 10_000);
  }, 60_000);

  afterAll(async () => {
    await h.stopAll();
    await h.closeApps();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('two Host headers on HTTP/1.1 get 400 (RFC 9112), and never reach the application', async () => {
    const before = app.hits;
    expect(await raw(echo.outbound, 'GET / HTTP/1.1\r\nHost: echo\r\nHost: other\r\n\r\n')).toBe(400);
    expect(app.hits).toBe(before);
  });

  it('headers up to the limit (100) are all read, a routing header last among them too; one more gets 431', async () => {
    const before = app.hits;
    // Host + 98 fillers + the routing header: 100
    expect(await raw(echo.outbound, `GET / HTTP/1.1\r\nHost: echo\r\n${fillers(98)}x-last: yes\r\n\r\n`)).toBe(418);
    // Host + 99 fillers + the routing header: 101, and the routing header is never silently dropped
    expect(await raw(echo.outbound, `GET / HTTP/1.1\r\nHost: echo\r\n${fillers(99)}x-last: yes\r\n\r\n`)).toBe(431);
    expect(await raw(echo.outbound, `GET / HTTP/1.1\r\nHost: echo\r\n${fillers(2500)}\r\n`)).toBe(431);
    expect(app.hits).toBe(before);
    // a request at the limit crosses the mesh: the peer's inbound side takes what the sidecars add
    expect(await raw(echo.outbound, `GET / HTTP/1.1\r\nHost: echo\r\n${fillers(99)}\r\n`)).toBe(200);
    expect(app.hits).toBe(before + 1);
  });

  it('over HTTP/2 (h2c), too many headers get 431 as well', async () => {
    const session = http2.connect(`http://127.0.0.1:${echo.outbound}`);
    try {
      const status = (headers: http2.OutgoingHttpHeaders) =>
        new Promise<number>((resolve, reject) => {
          const req = session.request({ ':path': '/', ':authority': 'echo', ...headers });
          req.on('response', (r) => resolve(Number(r[':status'])));
          req.on('error', reject);
          req.end();
        });
      const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-filler-${i}`, String(i)]));
      expect(await status({ ...many(99), 'x-last': 'yes' })).toBe(418);
      expect(await status({ ...many(150), 'x-last': 'yes' })).toBe(431);
    } finally {
      session.close();
    }
  });

  it('one HTTP/2 connection gets at most 100 concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS): 3,000 hanging requests hold at most 100 at the app', async () => {
    const session = http2.connect(`http://127.0.0.1:${echo.outbound}`);
    const settled: Promise<number>[] = [];
    try {
      await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
      expect(session.remoteSettings.maxConcurrentStreams).toBe(100);
      for (let i = 0; i < 3000; i++) {
        settled.push(
          new Promise<number>((resolve) => {
            const req = session.request({ ':path': '/hang', ':authority': 'echo' });
            req.on('response', (r) => resolve(Number(r[':status'])));
            req.on('error', () => resolve(0));
            req.on('close', () => resolve(0));
            req.resume();
            req.end();
          }),
        );
      }
      await h.waitFor('the app to hold 100 requests', () => hanging.now >= 100 || undefined, 15_000).catch((e: Error) => {
        throw new Error(`${e.message} (holding ${hanging.now}, max ${hanging.max}, hits ${app.hits}) ${echo.proc.output().slice(-1500)}`);
      });
      // a moment for any stream past the limit to (wrongly) arrive
      await new Promise((r) => setTimeout(r, 300));
      expect(hanging.max).toBe(100);
      // as slots free, the rest go through: every request is answered in the end
      while (hanging.release.length || settled.length > 0) {
        for (const r of [...hanging.release]) r();
        const done = await Promise.race([Promise.all(settled).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 50))]);
        if (done) break;
      }
      expect((await Promise.all(settled)).every((s) => s === 200)).toBe(true);
      expect(hanging.max).toBe(100);
    } finally {
      session.close();
    }
  }, 60_000);

  describe('a client that goes away cancels its request on every hop: nothing is left waiting at the application', () => {
    const hangAll = async (n: number) => {
      await h.waitFor(`the app to hold ${n} requests`, () => hanging.now >= n || undefined, 15_000);
    };
    const allGone = () =>
      h.waitFor('every cancelled request to be gone from the application', () => hanging.now === 0 || undefined, 5_000, 50).catch((e: Error) => {
        throw new Error(`${e.message}: ${hanging.now} still held`);
      });

    it('100 HTTP/1.1 callers that close their connections (the HTTP/1.1 hop between sidecars carries the cancel: its connection is closed)', async () => {
      expect(hanging.now).toBe(0);
      const sockets = Array.from({ length: 100 }, () => {
        const s = net.connect(echo.outbound, '127.0.0.1', () => s.write('GET /hang HTTP/1.1\r\nHost: echo\r\n\r\n'));
        s.on('error', () => undefined);
        return s;
      });
      await hangAll(100);
      for (const s of sockets) s.destroy();
      await allGone();
    });

    it('100 HTTP/2 callers that reset their streams (CANCEL)', async () => {
      expect(hanging.now).toBe(0);
      const session = http2.connect(`http://127.0.0.1:${echo.outbound}`);
      try {
        const streams = Array.from({ length: 100 }, () => {
          const req = session.request({ ':path': '/hang', ':authority': 'echo' });
          req.on('error', () => undefined);
          req.end();
          return req;
        });
        await hangAll(100);
        for (const r of streams) r.close(http2.constants.NGHTTP2_CANCEL);
        await allGone();
      } finally {
        session.close();
      }
    });
  });

  describe('a request body that does not complete never reaches the application as complete', () => {
    /** a chunked POST that sends "hello" and then `then` */
    const truncated = (p: string, then: (s: net.Socket) => void) =>
      new Promise<void>((resolve) => {
        const s = net.connect(echo.outbound, '127.0.0.1', () => {
          s.write(`POST ${p} HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
          setTimeout(() => then(s), 200);
        });
        s.on('error', () => undefined);
        s.on('close', () => resolve());
        s.setTimeout(5000, () => s.destroy());
      });

    it('HTTP/1.1 chunked: garbage, a FIN, or a reset after "hello"', async () => {
      const before = app.hits;
      await truncated('/upload/garbage', (s) => s.write('zz\r\nnot a chunk\r\n'));
      await truncated('/upload/fin', (s) => s.end());
      await truncated('/upload/reset', (s) => s.resetAndDestroy());
      // a complete one goes through, so the path works
      const ok = await h.request(echo.outbound, { host: 'echo', path: '/upload/complete', method: 'POST', body: 'hello' });
      expect(ok.status).toBe(200);
      await new Promise((r) => setTimeout(r, 500));
      expect(completed.get('/upload/complete')).toBe('hello');
      expect([...completed.keys()].filter((k) => k !== '/upload/complete')).toEqual([]);
      expect(app.hits).toBeGreaterThan(before);
    });

    it('HTTP/2: a stream reset mid-body', async () => {
      const session = http2.connect(`http://127.0.0.1:${echo.outbound}`);
      try {
        const req = session.request({ ':path': '/upload/h2-cancel', ':authority': 'echo', ':method': 'POST' });
        req.on('error', () => undefined);
        req.write('hello');
        await new Promise((r) => setTimeout(r, 300));
        // destroy, not close(): Node's close() sends END_STREAM before its RST_STREAM, which
        // would make "hello" a complete body; a reset alone is a body cut short
        req.destroy(new Error('the caller gave up'));
        await new Promise((r) => setTimeout(r, 500));
        expect(completed.has('/upload/h2-cancel')).toBe(false);
      } finally {
        session.close();
      }
    });
  });
  describe('a response that does not complete never reaches the client as complete', () => {
    /** everything the client got on a connection of its own, until the sidecar closed it */
    const rawResponse = (p: string) =>
      new Promise<string>((resolve) => {
        const s = net.connect(echo.outbound, '127.0.0.1', () => s.write(`GET ${p} HTTP/1.1\r\nHost: echo\r\n\r\n`));
        let got = '';
        s.setEncoding('latin1');
        s.on('data', (c: string) => (got += c));
        s.on('error', () => undefined);
        s.on('close', () => resolve(got));
        s.setTimeout(5000, () => s.destroy());
      });

    it('HTTP/1.1: a declared length is never made up for, a chunked body never gets its last chunk', async () => {
      const length = await rawResponse('/cut-length');
      expect(length).toMatch(/^HTTP\/1\.1 200 /);
      expect(length.toLowerCase()).toContain('content-length: 100');
      expect(length.split('\r\n\r\n')[1]).toBe('hello');
      const chunked = await rawResponse('/cut-chunked');
      expect(chunked).toMatch(/^HTTP\/1\.1 200 /);
      expect(chunked).toContain('hello');
      expect(chunked.endsWith('0\r\n\r\n')).toBe(false);
    });

    it('HTTP/2: the stream is reset, never ended', async () => {
      const session = http2.connect(`http://127.0.0.1:${echo.outbound}`);
      try {
        const outcome = await new Promise<string>((resolve) => {
          const req = session.request({ ':path': '/cut-chunked', ':authority': 'echo' });
          let body = '';
          req.setEncoding('utf8');
          req.on('data', (c: string) => (body += c));
          req.on('end', () => resolve(`ended cleanly with ${JSON.stringify(body)}`));
          req.on('error', () => resolve(`reset after ${JSON.stringify(body)}`));
          req.on('close', () => resolve(`closed with code ${req.rstCode} after ${JSON.stringify(body)}`));
          req.end();
        });
        expect(outcome).not.toMatch(/^ended cleanly/);
        expect(outcome).toContain('hello');
      } finally {
        session.close();
      }
    });
  });
});
