// The limits a sidecar holds its clients to (issue 13, README "Limits"), on real processes:
// silent, idle and slow connections are closed at their timeouts, a connection cap refuses
// the overflow while the rest keeps working, and a rapid-reset flood neither starves normal
// requests nor bloats the sidecar. Timeouts are set short by flag so that the suite is quick;
// the defaults are the same code with other numbers.
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';
import * as frames from './h2-frames';
import { spawn } from 'node:child_process';

/** Resolves true when the socket closes within `ms`, false if it is still open then. */
function closesWithin(s: net.Socket | http2.ClientHttp2Session, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Raw bytes on a connection of its own: what came back, once the sidecar closed it (or `ms` passed). */
function exchange(port: number, send: (s: net.Socket) => void, ms = 8000): Promise<{ out: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => send(s));
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (c: string) => (out += c));
    s.on('error', () => undefined);
    const t = setTimeout(() => {
      s.destroy();
      resolve({ out, closed: false });
    }, ms);
    s.on('close', () => {
      clearTimeout(t);
      resolve({ out, closed: true });
    });
  });
}

function vmRssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

describe('listener limits', () => {
  let dir: string;
  /** short timeouts: 1 s for headers, idle and stream idle, 3 s for a whole request */
  let quick: h.Sidecar;
  /** at most 30 connections per listener, 5 requests in flight (and 5 waiting) to an upstream cluster */
  let capped: h.Sidecar;
  let app: h.App;
  /** bodies the application read to their end, by path */
  const completed = new Map<string, string>();
  const held: (() => void)[] = [];

  beforeAll(async () => {
    dir = h.tmpDir('tandem-limits-e2e-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, '');
    const cp = await h.startControlPlane(dir, configPath);
    app = await h.startApp('app', (req, res) => {
      if (req.url === '/hang') return void held.push(() => res.end('released'));
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('error', () => undefined);
      req.on('end', () => {
        completed.set(req.url!, body);
        res.end('ok');
      });
    });
    const short = ['--request-headers-timeout', '1s', '--idle-timeout', '1s', '--stream-idle-timeout', '1s', '--request-timeout', '3s'];
    [quick, capped] = await Promise.all([
      h.startSidecar(cp, 'quick', app.port, {}, { args: [...short, '--app-protocol', 'http1'] }),
      h.startSidecar(cp, 'capped', app.port, {}, { args: ['--max-connections', '30', '--max-upstream-requests', '5', '--app-protocol', 'http1'] }),
    ]);
    await h.waitFor('quick routes to capped', async () => (await h.request(quick.outbound, { host: 'capped', path: '/' })).status === 200 || undefined, 15_000);
    await h.waitFor('capped routes to quick', async () => (await h.request(capped.outbound, { host: 'quick', path: '/' })).status === 200 || undefined, 15_000);
  }, 60_000);

  afterAll(async () => {
    for (const r of held.splice(0)) r();
    await h.stopAll();
    await h.closeApps();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a connection that never sends a byte is closed at the headers timeout, on the outbound and the mTLS inbound port', async () => {
    for (const port of [quick.outbound, quick.inbound]) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      expect(await closesWithin(s, 6000)).toBe(true);
    }
    const metrics = (await h.request(quick.admin, { path: '/metrics' })).body;
    expect(metrics).toMatch(/tandem_downstream_connections_limited_total\{listener="outbound",reason="silent"\} [1-9]/);
  });

  it('headers that trickle in get 408 at the headers timeout', async () => {
    const r = await exchange(quick.outbound, (s) => s.write('GET / HTTP/1.1\r\nHost: capped\r\n'));
    expect(r.out).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.closed).toBe(true);
  });

  it('an idle keep-alive connection is closed at the idle timeout; an HTTP/2 one is sent a GOAWAY', async () => {
    const r = await exchange(quick.outbound, (s) => s.write('GET / HTTP/1.1\r\nHost: capped\r\n\r\n'));
    expect(r.out).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.closed).toBe(true);
    const session = http2.connect(`http://127.0.0.1:${quick.outbound}`);
    session.on('error', () => undefined);
    const goaway = new Promise<boolean>((resolve) => session.once('goaway', () => resolve(true)));
    const status = await new Promise<number>((resolve, reject) => {
      const st = session.request({ ':path': '/', ':authority': 'capped' });
      st.on('response', (hd) => resolve(Number(hd[':status'])));
      st.on('error', reject);
      st.resume();
      st.end();
    });
    expect(status).toBe(200);
    expect(await closesWithin(session, 6000)).toBe(true);
    expect(await goaway).toBe(true);
  });

  it('a body that stalls gets 408 at the stream idle timeout, and never reaches the application as complete', async () => {
    const r = await exchange(quick.outbound, (s) => s.write('POST /stalled HTTP/1.1\r\nHost: capped\r\nContent-Length: 10\r\n\r\nhello'));
    expect(r.out).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.out.toLowerCase()).toContain('x-tandem-response-flags: si');
    expect(r.closed).toBe(true);
    await new Promise((res) => setTimeout(res, 300));
    expect(completed.has('/stalled')).toBe(false);
  });

  it('a body that trickles in, a byte at a time, gets 408 at the request timeout', async () => {
    let timer: NodeJS.Timeout | undefined;
    const r = await exchange(quick.outbound, (s) => {
      s.write('POST /trickle HTTP/1.1\r\nHost: capped\r\nContent-Length: 100\r\n\r\n');
      timer = setInterval(() => s.writable && s.write('x'), 300);
    });
    clearInterval(timer);
    expect(r.out).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.out.toLowerCase()).toContain('x-tandem-response-flags: dt');
    expect(completed.has('/trickle')).toBe(false);
  });

  it('an HTTP/2 stream that opens and sends no body gets 408 at the stream idle timeout', async () => {
    const session = http2.connect(`http://127.0.0.1:${quick.outbound}`);
    session.on('error', () => undefined);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const st = session.request({ ':path': '/no-body', ':authority': 'capped', ':method': 'POST' });
        st.on('response', (hd) => resolve(Number(hd[':status'])));
        st.on('error', reject);
        st.resume();
      });
      expect(status).toBe(408);
      expect(completed.has('/no-body')).toBe(false);
    } finally {
      session.destroy();
    }
  });

  it('HEADERS that never end (no END_HEADERS) hold nothing: the connection is closed at the idle timeout', async () => {
    const s = await frames.open(quick.outbound);
    s.on('error', () => undefined);
    s.write(frames.headers(1, frames.requestBlock('/', 'capped'), 0));
    expect(await closesWithin(s, 6000)).toBe(true);
  });

  it('past the connection cap, a connection is refused with a 503 that says so, while connections taken, the inbound port and the admin port keep working', async () => {
    // a keep-alive connection taken before the flood
    const early = new net.Socket();
    await new Promise<void>((r) => early.connect(capped.outbound, '127.0.0.1', () => r()));
    const silent: net.Socket[] = [];
    try {
      for (let i = 0; i < 60; i++) {
        const s = net.connect(capped.outbound, '127.0.0.1');
        s.on('error', () => undefined);
        silent.push(s);
      }
      await h.waitFor('the flood to be taken', async () => (await h.request(capped.admin, { path: '/metrics' })).body.match(/reason="limit"\} ([1-9]\d*)/) || undefined, 5000);
      const over = await exchange(capped.outbound, (s) => s.write('GET / HTTP/1.1\r\nHost: quick\r\n\r\n'));
      expect(over.out).toMatch(/^HTTP\/1\.1 503 /);
      expect(over.out).toContain('connection limit reached');
      // the admin port
      expect((await h.request(capped.admin, { path: '/ready' })).status).toBe(200);
      // the connection taken before
      const r = await new Promise<string>((resolve) => {
        let out = '';
        early.setEncoding('latin1');
        early.on('data', (c: string) => {
          out += c;
          if (out.includes('\r\n\r\n')) resolve(out);
        });
        early.write('GET / HTTP/1.1\r\nHost: quick\r\n\r\n');
      });
      expect(r).toMatch(/^HTTP\/1\.1 200 /);
      // the inbound port has a cap of its own: a peer still gets through
      expect((await h.request(quick.outbound, { host: 'capped', path: '/' })).status).toBe(200);
    } finally {
      early.destroy();
      for (const s of silent) s.destroy();
    }
    // once the flood is gone, new connections are taken again
    await h.waitFor('a new connection to be taken', async () => (await h.request(capped.outbound, { host: 'quick', path: '/' }).catch(() => ({ status: 0 }))).status === 200 || undefined, 5000);
  });

  it('an upstream cluster with no circuit breakers of its own takes the default cap of requests in flight, as many waiting, and answers the rest 503 UO', async () => {
    const before = held.length;
    const answers = Array.from({ length: 12 }, () => h.request(capped.outbound, { host: 'quick', path: '/hang' }).then((r) => `${r.status} ${String(r.headers['x-tandem-response-flags'] ?? '-')}`));
    await h.waitFor('5 requests held at the app', () => held.length - before >= 5 || undefined, 10_000);
    // a moment for any request past the cap to (wrongly) reach the app
    await new Promise((r) => setTimeout(r, 300));
    expect(held.length - before).toBe(5);
    while (held.length > before) {
      for (const r of held.splice(before)) r();
      await new Promise((r) => setTimeout(r, 100));
    }
    const got = (await Promise.all(answers)).sort();
    expect(got.filter((a) => a.startsWith('200')).length).toBe(10);
    expect(got.filter((a) => a === '503 UO').length).toBe(2);
  });

  it('a rapid-reset flood over 30 connections: the flooding connections are cut, no reset stream reaches the application, normal requests keep a p99 under 100 ms, the sidecar stays under 200 MB', async () => {
    const pid = quick.proc.child.pid!;
    const hitsBefore = app.hits;
    // the flood runs in a process of its own; the sidecar is what is measured
    const flooder = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'rapid-reset.cjs'), String(quick.outbound), 'capped', '30', '5'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let floodOut = '';
    flooder.stdout.on('data', (c: Buffer) => (floodOut += c));
    const flood = new Promise<{ streams: number; connections: number }>((resolve) => flooder.once('exit', () => resolve(JSON.parse(floodOut || '{"streams":0,"connections":0}'))));
    const latencies: number[] = [];
    let rss = 0;
    const failed: string[] = [];
    let flooding = true;
    void flood.then(() => (flooding = false));
    while (flooding) {
      const t0 = performance.now();
      const r = await h.request(quick.outbound, { host: 'capped', path: '/' }).catch((e: Error) => ({ status: 0, body: e.message }));
      latencies.push(performance.now() - t0);
      if (r.status !== 200) failed.push(`${r.status} ${r.body.slice(0, 80)}`);
      rss = Math.max(rss, vmRssMiB(pid));
      await new Promise((res) => setTimeout(res, 20));
    }
    const sent = await flood;
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)];
    const metrics = (await h.request(quick.admin, { path: '/metrics' })).body;
    const cut = Number(/tandem_downstream_connections_limited_total\{listener="outbound",reason="rapid_reset"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    const summary = `${sent.streams} streams reset over ${sent.connections} connections, ${cut} cut; ${app.hits - hitsBefore} reached the app; p99 ${p99.toFixed(1)} ms over ${latencies.length}; peak RSS ${rss.toFixed(0)} MiB`;
    console.log(`rapid reset: ${summary}`);
    expect(failed, summary).toEqual([]);
    // not one reset stream reached the application: only the normal requests did
    expect(app.hits - hitsBefore, summary).toBe(latencies.length);
    // flooding connections were cut and had to reconnect; the sidecar is alive and well
    expect(sent.connections, summary).toBeGreaterThan(30);
    expect(quick.proc.child.exitCode).toBe(null);
    expect((await h.request(quick.outbound, { host: 'capped', path: '/' })).status).toBe(200);
    expect(cut, summary).toBeGreaterThan(0);
    expect(rss, summary).toBeLessThan(200);
    expect(p99, summary).toBeLessThan(100);
  }, 30_000);
});
