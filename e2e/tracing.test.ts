// Trace context and the access log through two sidecars, with real processes on
// 127.0.0.1: a caller's sidecar (outbound) -> mTLS h2 -> the backend's sidecar (inbound)
// -> the backend app. Every hop is a span of the caller's trace: the backend sees the
// caller's trace id with a parent span id that is neither the caller's nor the first
// sidecar's; both sidecars log the request under one request id and one trace id.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';
const SPAN = /^[0-9a-f]{16}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

const SPEC_FIELDS = [
  'start_time', 'method', 'path', 'protocol', 'response_code', 'response_flags', 'bytes_received', 'bytes_sent', 'duration_ms',
  'upstream_service_time_ms', 'upstream_host', 'upstream_cluster', 'route_name', 'request_id', 'trace_id', 'authority',
  'x_forwarded_for', 'user_agent', 'peer_principal',
];

let dir: string;
let backend: h.App;
let caller: h.Sidecar;
let callerLog: string;
let backendLog: string;

beforeAll(async () => {
  dir = h.tmpDir('tandem-tracing-');
  const config = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(config, '');
  const cp = await h.startControlPlane(dir, config);
  backend = await h.startApp('backend');
  backendLog = path.join(dir, 'backend-access.log');
  callerLog = path.join(dir, 'caller-access.log');
  // the backend app speaks HTTP/1.1 only: an h2 caller's request still crosses the mesh as h2
  await h.startSidecar(cp, 'backend', backend.port, {}, { accessLog: backendLog, args: ['--app-protocol', 'http1'] });
  caller = await h.startSidecar(cp, 'caller', (await h.startApp('caller')).port, {}, { accessLog: callerLog });
  await h.waitFor('backend reachable', async () => (await h.request(caller.outbound, { host: 'backend', path: '/' })).status === 200);
}, 60_000);

afterAll(async () => {
  await h.stopAll();
  await h.closeApps();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** What the backend app received for one request made over HTTP/1.1. */
async function viaMeshH1(headers: Record<string, string>): Promise<Record<string, string>> {
  const r = await h.request(caller.outbound, { host: 'backend', path: '/trace', headers });
  expect(r.status).toBe(200);
  return (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
}

/** The same, made by an HTTP/2 (h2c) caller. */
async function viaMeshH2(headers: Record<string, string>): Promise<Record<string, string>> {
  const session = http2.connect(`http://127.0.0.1:${caller.outbound}`);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({ ':path': '/trace', ':authority': 'backend', ...headers });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        try {
          resolve((JSON.parse(body) as { headers: Record<string, string> }).headers);
        } catch (err) {
          reject(err);
        }
      });
      req.once('error', reject);
      req.end();
    });
  } finally {
    session.close();
  }
}

/** The access-log line a sidecar wrote for a request id. */
function logged(file: string, requestId: string): Promise<Record<string, unknown>> {
  return h.waitFor(`access-log line for ${requestId} in ${path.basename(file)}`, () => {
    const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : [];
    const line = lines.find((l) => l.includes(`"request_id":"${requestId}"`));
    return line ? (JSON.parse(line) as Record<string, unknown>) : undefined;
  });
}

describe('W3C trace context', () => {
  it.each([
    ['HTTP/1.1', viaMeshH1],
    ['HTTP/2', viaMeshH2],
  ])('an %s caller: same trace id, a new parent span id, the sampled flag and tracestate kept', async (_, via) => {
    for (const flags of ['01', '00']) {
      const seen = await via({ traceparent: `00-${T}-${S}-${flags}`, tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE' });
      const m = TRACEPARENT.exec(seen.traceparent ?? '');
      expect(m, seen.traceparent).not.toBeNull();
      expect(m![1]).toBe(T);
      expect(m![2]).not.toBe(S);
      expect(m![3]).toBe(flags);
      expect(seen.tracestate).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    }
  });

  it('a new span id at each hop (B3 alongside shows both): neither the caller\'s nor the first sidecar\'s reaches the app as parent', async () => {
    const seen = await viaMeshH1({ traceparent: `00-${T}-${S}-01`, 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1' });
    const [, trace, parent] = TRACEPARENT.exec(seen.traceparent ?? '')!;
    expect(trace).toBe(T);
    // the backend's sidecar made the app's parent span; its own parent is the caller's sidecar's span
    expect(seen['x-b3-spanid']).toBe(parent);
    const firstHop = seen['x-b3-parentspanid']!;
    expect(firstHop).toMatch(SPAN);
    expect(new Set([S, firstHop, parent]).size).toBe(3);
  });

  it('no traceparent, or a malformed one: a new sampled trace, the one both sidecars log', async () => {
    for (const sent of [undefined, `00-${T.toUpperCase()}-${S}-01`, `ff-${T}-${S}-01`, `00-${'0'.repeat(32)}-${S}-01`]) {
      const id = `new-trace-${Math.random().toString(36).slice(2)}`;
      const seen = await viaMeshH1(sent ? { traceparent: sent, 'x-request-id': id } : { 'x-request-id': id });
      const m = TRACEPARENT.exec(seen.traceparent ?? '');
      expect(m, seen.traceparent).not.toBeNull();
      expect(m![1]).not.toBe(T);
      expect(m![3]).toBe('01');
      expect((await logged(callerLog, id)).trace_id).toBe(m![1]);
      expect((await logged(backendLog, id)).trace_id).toBe(m![1]);
    }
  });
});

describe('B3', () => {
  it('multi: the trace id kept (64-bit as given), a new span per hop with the previous as parent, sampled kept', async () => {
    const t64 = T.slice(16);
    for (const via of [viaMeshH1, viaMeshH2]) {
      const seen = await via({ 'x-b3-traceid': t64, 'x-b3-spanid': S, 'x-b3-sampled': '0' });
      expect(seen['x-b3-traceid']).toBe(t64);
      expect(seen['x-b3-sampled']).toBe('0');
      expect(seen['x-b3-spanid']).toMatch(SPAN);
      expect(new Set([S, seen['x-b3-parentspanid'], seen['x-b3-spanid']]).size).toBe(3);
      // traceparent agrees with it
      expect(seen.traceparent).toBe(`00-${t64.padStart(32, '0')}-${seen['x-b3-spanid']}-00`);
    }
  });

  it('single: {trace}-{span}-{sampled}-{parent}, rewritten per hop', async () => {
    const seen = await viaMeshH1({ b3: `${T}-${S}-1` });
    const [trace, span, sampled, parent] = (seen.b3 ?? '').split('-');
    expect(trace).toBe(T);
    expect(sampled).toBe('1');
    expect(span).toMatch(SPAN);
    expect(new Set([S, span, parent]).size).toBe(3);
    expect(seen.traceparent).toBe(`00-${T}-${span}-01`);
  });
});

describe('request id and the access log', () => {
  it('bytes_received counts the body, also one that comes chunked with no Content-Length to tell it', async () => {
    const id = `bytes-${Date.now()}`;
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ port: caller.outbound, host: '127.0.0.1', method: 'POST', path: '/trace', headers: { host: 'backend', 'x-request-id': id, 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write('hello');
      req.end('world!');
    });
    expect(status).toBe(200);
    expect(await logged(callerLog, id)).toMatchObject({ method: 'POST', bytes_received: 11 });
    expect(await logged(backendLog, id)).toMatchObject({ method: 'POST', bytes_received: 11 });
  });

  it('a request without x-request-id gets one: the same at the app and in both sidecars\' logs', async () => {
    const seen = await viaMeshH1({ 'user-agent': 'tracing-e2e' });
    const id = seen['x-request-id']!;
    expect(id).toMatch(/^[0-9a-zA-Z-]{8,}$/);
    const out = await logged(callerLog, id);
    const inb = await logged(backendLog, id);
    for (const e of [out, inb]) {
      expect(Object.keys(e)).toEqual(expect.arrayContaining(SPEC_FIELDS));
      expect(e).toMatchObject({ method: 'GET', path: '/trace', response_code: 200, response_flags: '-', authority: 'backend', user_agent: 'tracing-e2e' });
      expect(e.trace_id).toBe(TRACEPARENT.exec(seen.traceparent!)![1]);
    }
    expect(out).toMatchObject({ direction: 'outbound', protocol: 'HTTP/1.1' });
    // an HTTP/1.1 caller's request crosses the sidecar-to-sidecar hop as HTTP/1.1 (over mTLS), an HTTP/2 caller's as HTTP/2 (below)
    expect(inb).toMatchObject({ direction: 'inbound', protocol: 'HTTP/1.1' });
    // the backend's sidecar knows who called (mTLS); the app's request was forwarded for it
    expect(inb.peer_principal).toBe('spiffe://cluster.local/ns/default/sa/caller');
    expect(out.x_forwarded_for).toBeNull();
    expect(inb.x_forwarded_for).toBe('127.0.0.1');
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
  });

  it('a caller\'s x-request-id is kept end to end', async () => {
    const seen = await viaMeshH2({ 'x-request-id': 'kept-h2-1' });
    expect(seen['x-request-id']).toBe('kept-h2-1');
    expect((await logged(callerLog, 'kept-h2-1')).protocol).toBe('HTTP/2');
    expect((await logged(backendLog, 'kept-h2-1')).protocol).toBe('HTTP/2');
  });

  it('a log file rotated away (renamed) is reopened at its path', async () => {
    await viaMeshH1({ 'x-request-id': 'before-rotation' });
    await logged(callerLog, 'before-rotation');
    fs.renameSync(callerLog, `${callerLog}.1`);
    let n = 0;
    // the sidecar looks at most once a second: keep asking until a line lands in the new file
    const id = await h.waitFor('a line in the reopened log', async () => {
      const rid = `after-rotation-${++n}`;
      await viaMeshH1({ 'x-request-id': rid });
      await new Promise((r) => setTimeout(r, 200));
      return fs.existsSync(callerLog) && fs.readFileSync(callerLog, 'utf8').includes(`"request_id":"${rid}"`) ? rid : undefined;
    });
    expect(id).toMatch(/^after-rotation-/);
    expect(fs.readFileSync(`${callerLog}.1`, 'utf8')).toContain('"request_id":"before-rotation"');
    expect(fs.readFileSync(callerLog, 'utf8')).not.toContain('before-rotation');
  });
});
