import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as client from 'prom-client';
import { AccessLogWriter, fileSink, openAccessLog, type AccessEntry, type AccessLogSink } from './access-log';

const entry = (request_id: string): AccessEntry => ({
  start_time: '2024-01-01T00:00:00.000Z',
  method: 'GET',
  path: '/',
  protocol: 'HTTP/1.1',
  response_code: 200,
  response_flags: '-',
  bytes_received: 0,
  bytes_sent: 2,
  duration_ms: 1,
  upstream_service_time_ms: 1,
  upstream_host: '127.0.0.1:1',
  upstream_cluster: 'c',
  route_name: 'r',
  request_id,
  trace_id: 'a'.repeat(32),
  authority: 'svc',
  x_forwarded_for: '127.0.0.1',
  user_agent: 'ua',
  peer_principal: null,
  direction: 'outbound',
});

/** a sink whose writes finish when the test says so */
function heldSink() {
  const writes: string[] = [];
  const pending: (() => void)[] = [];
  const sink: AccessLogSink = {
    write: (d) => new Promise<void>((r) => {
      writes.push(d.toString());
      pending.push(r);
    }),
    close: async () => undefined,
  };
  return { sink, writes, release: () => pending.splice(0).forEach((r) => r()) };
}

/** timers the test fires by hand */
function manualTimers() {
  const due: (() => void)[] = [];
  return { setTimer: (fn: () => void) => (due.push(fn), {}), fire: () => due.splice(0).forEach((f) => f()), count: () => due.length };
}

const tick = () => new Promise((r) => setImmediate(r));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('access log batching', () => {
  it('nothing is written on the request path: lines wait for one timer and go as one batch', async () => {
    const s = heldSink();
    const t = manualTimers();
    const w = new AccessLogWriter(s.sink, { setTimer: t.setTimer });
    for (let i = 0; i < 5; i++) w.write(entry(`r${i}`));
    expect(s.writes).toHaveLength(0);
    expect(t.count()).toBe(1);
    t.fire();
    await tick();
    expect(s.writes).toHaveLength(1);
    const lines = s.writes[0]!.trimEnd().split('\n').map((l) => JSON.parse(l) as AccessEntry);
    expect(lines.map((l) => l.request_id)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
  });

  it('one write at a time; what arrives meanwhile is the next batch', async () => {
    const s = heldSink();
    const t = manualTimers();
    const w = new AccessLogWriter(s.sink, { setTimer: t.setTimer });
    w.write(entry('a'));
    t.fire();
    await tick();
    w.write(entry('b'));
    w.write(entry('c'));
    await tick();
    expect(s.writes).toHaveLength(1);
    s.release();
    await tick();
    await tick();
    expect(s.writes).toHaveLength(2);
    expect(s.writes[1]).toContain('"request_id":"b"');
    expect(s.writes[1]).toContain('"request_id":"c"');
  });

  it('a sink that cannot keep up: the buffer stays bounded and drops are counted', async () => {
    const s = heldSink();
    const t = manualTimers();
    const drops: number[] = [];
    const w = new AccessLogWriter(s.sink, { setTimer: t.setTimer, maxBufferedLines: 3, onDrop: (n) => drops.push(n) });
    for (let i = 0; i < 10; i++) w.write(entry(`r${i}`));
    expect(w.dropped).toBe(7);
    expect(drops.reduce((a, b) => a + b, 0)).toBe(7);
  });

  it('a failing sink drops (counted) and carries on', async () => {
    let fail = true;
    const got: string[] = [];
    const sink: AccessLogSink = { write: async (d) => { if (fail) throw new Error('disk full'); got.push(d.toString()); }, close: async () => undefined };
    const errors: string[] = [];
    const w = new AccessLogWriter(sink, { onError: (e) => errors.push(e.message), flushDelayMs: 1 });
    w.write(entry('x'));
    await w.flush();
    expect(w.dropped).toBe(1);
    expect(errors).toEqual(['disk full']);
    fail = false;
    w.write(entry('y'));
    await w.flush();
    expect(got.join('')).toContain('"request_id":"y"');
  });

  it('close writes out what is buffered, and later lines are dropped', async () => {
    const got: string[] = [];
    const w = new AccessLogWriter({ write: async (d) => void got.push(d.toString()), close: async () => undefined }, { setTimer: () => ({}) });
    w.write(entry('last'));
    await w.close();
    expect(got.join('')).toContain('"request_id":"last"');
    w.write(entry('after'));
    expect(w.dropped).toBe(1);
  });

  it('the drop counter is tandem_access_log_dropped_total', async () => {
    const registry = new client.Registry();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-al-'));
    dirs.push(dir);
    const a = await openAccessLog(path.join(dir, 'a.log'), { registry, maxBufferedLines: 1, setTimer: () => ({}) });
    a.log!(entry('1'));
    a.log!(entry('2'));
    a.log!(entry('3'));
    expect(await registry.getSingleMetricAsString('tandem_access_log_dropped_total')).toMatch(/tandem_access_log_dropped_total 2$/m);
    await a.close();
    expect(fs.readFileSync(path.join(dir, 'a.log'), 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('off is no log at all; a file that cannot be opened names the flag', async () => {
    expect((await openAccessLog('off')).log).toBeNull();
    await expect(openAccessLog('/nonexistent-dir/x/a.log')).rejects.toThrow(/--access-log: cannot open/);
  });
});

describe('access log file rotation', () => {
  it('a file renamed away (logrotate) is reopened at its path once the check is due', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-al-'));
    dirs.push(dir);
    const file = path.join(dir, 'access.log');
    let now = 0;
    const w = new AccessLogWriter(await fileSink(file), { now: () => now, reopenCheckMs: 1000, setTimer: () => ({}) });
    w.write(entry('before'));
    await w.flush();
    fs.renameSync(file, `${file}.1`);
    // logrotate's `create`: a new empty file at the path
    fs.writeFileSync(file, '');
    // not yet due: still the renamed file, as logrotate expects of a writer
    w.write(entry('during'));
    await w.flush();
    now = 1000;
    w.write(entry('after'));
    await w.flush();
    await w.close();
    expect(fs.readFileSync(`${file}.1`, 'utf8')).toMatch(/before[\s\S]*during/);
    const fresh = fs.readFileSync(file, 'utf8');
    expect(fresh).toContain('"request_id":"after"');
    expect(fresh).not.toContain('before');
  });

  it('a file removed is made again', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-al-'));
    dirs.push(dir);
    const file = path.join(dir, 'access.log');
    let now = 0;
    const w = new AccessLogWriter(await fileSink(file), { now: () => now, setTimer: () => ({}) });
    fs.rmSync(file);
    now = 5000;
    w.write(entry('again'));
    await w.close();
    expect(fs.readFileSync(file, 'utf8')).toContain('"request_id":"again"');
  });
});
