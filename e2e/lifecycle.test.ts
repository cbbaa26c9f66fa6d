// Process lifecycle through the contract: exit codes, SIGTERM draining, the CA directory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as http2 from 'node:http2';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as h from './harness';

let dir: string;
let cp: h.ControlPlane;

beforeAll(async () => {
  dir = h.tmpDir('tandem-lifecycle-');
  const config = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(config, '');
  cp = await h.startControlPlane(dir, config);
});

afterAll(async () => {
  await h.stopAll();
  await h.closeApps();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('exit status', () => {
  it('2 for bad usage, with a one-line error naming what was wrong', async () => {
    for (const args of [['no-such-command'], ['sidecar'], ['sidecar', '--service', 'x', '--bogus', '1'], ['control-plane', '--listen', 'nope']]) {
      const r = await h.runTandem(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    expect((await h.runTandem(['sidecar'])).stderr).toMatch(/--service is required/);
    expect((await h.runTandem(['control-plane', '--listen', 'nope'])).stderr).toMatch(/--listen: expected HOST:PORT/);
  });

  it('1 for anything else: a root that already exists is not overwritten', async () => {
    const before = fs.readFileSync(path.join(cp.caDir, 'root-cert.pem'), 'utf8');
    const r = await h.runTandem(['certs', 'init', '--dir', cp.caDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already exists; refusing to overwrite/);
    expect(fs.readFileSync(path.join(cp.caDir, 'root-cert.pem'), 'utf8')).toBe(before);
  });

  it('2 when the sidecar has no bootstrap token', async () => {
    const r = await h.runTandem(['sidecar', '--service', 'x', '--inbound', '127.0.0.1:0', '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--token .* is required/);
  });

  it('1 when the sidecar cannot read its root certificate', async () => {
    const r = await h.runTandem(['sidecar', '--service', 'x', '--token', 'a.b.c', '--root-cert', path.join(dir, 'missing.pem'), '--inbound', '127.0.0.1:0', '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--root-cert: cannot read/);
  });

  it('1 when the control plane cannot read its root (it never starts on a root it cannot use)', async () => {
    const bad = path.join(dir, 'bad-ca');
    fs.mkdirSync(bad, { recursive: true });
    fs.writeFileSync(path.join(bad, 'root-cert.pem'), 'garbage');
    fs.writeFileSync(path.join(bad, 'root-key.pem'), 'garbage');
    const r = await h.runTandem(['control-plane', '--ca-dir', bad, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--config', path.join(dir, 'none.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/root-cert\.pem: not a PEM certificate/);
  });

  it('0 for --help on every command, with its usage on stdout', async () => {
    for (const cmd of [['control-plane'], ['sidecar'], ['certs'], ['certs', 'init'], ['token'], ['status'], ['stat'], ['demo'], []]) {
      const r = await h.runTandem([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout, cmd.join(' ')).toMatch(/^usage: tandem/);
      expect(r.stderr, cmd.join(' ')).toBe('');
    }
    const sc = await h.runTandem(['sidecar', '--help']);
    expect(sc.stdout).toMatch(/--service VALUE\s+\(required\)/);
    expect(sc.stdout).toMatch(/--token VALUE\s+\(default: \$TANDEM_TOKEN\)/);
  });

  it('0 for certs init in a fresh directory', async () => {
    const r = await h.runTandem(['certs', 'init', '--dir', path.join(dir, 'fresh')]);
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(dir, 'fresh', 'root-key.pem'))).toBe(true);
  });
});

describe('SIGTERM', () => {
  it('a sidecar stops accepting, finishes what is in flight (over the mTLS hop, HTTP/1.1 and h2), and exits 0', async () => {
    const waiting: (() => void)[] = [];
    const release = () => waiting.splice(0).forEach((f) => f());
    const slow = await h.startApp('slow', (req, res) => {
      req.resume();
      if (req.url === '/wait') waiting.push(() => res.end('finished'));
      else res.end('pong');
    });
    // the app speaks HTTP/1.1 only: the h2 caller's request reaches it as HTTP/1.1 too
    const sc = await h.startSidecar(cp, 'slow', slow.port, {}, { args: ['--app-protocol', 'http1'] });
    const caller = await h.startSidecar(cp, 'caller', (await h.startApp('caller')).port);
    await h.waitFor('the caller to see slow', async () => (await h.request(caller.outbound, { host: 'slow', path: '/ping' })).status === 200);
    slow.hits = 0;
    // an HTTP/1.1 request crosses caller sidecar -> mTLS HTTP/1.1 -> slow's sidecar, an h2c
    // one the multiplexed mTLS h2 session; both wait on the app
    const inflight = h.request(caller.outbound, { host: 'slow', path: '/wait' });
    const session = http2.connect(`http://127.0.0.1:${caller.outbound}`);
    session.on('error', () => undefined);
    const inflightH2 = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = session.request({ ':path': '/wait', ':authority': 'slow' });
      let body = '';
      let status = 0;
      s.on('response', (hd) => (status = Number(hd[':status'])));
      s.on('data', (c: Buffer) => (body += c));
      s.on('end', () => resolve({ status, body }));
      s.on('error', reject);
    });
    await h.waitFor('both requests to reach the app', () => slow.hits === 2);
    sc.proc.child.kill('SIGTERM');
    const exited = new Promise<number | null>((r) => sc.proc.child.once('exit', (code) => r(code)));
    // no longer accepting
    await h.waitFor('the listener to close', async () => {
      try {
        await h.request(sc.outbound, { host: 'slow', path: '/ping' });
        return false;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
      }
    });
    release();
    const r = await inflight;
    expect(r.status).toBe(200);
    expect(r.body).toBe('finished');
    expect(await inflightH2).toEqual({ status: 200, body: 'finished' });
    session.close();
    expect(await exited).toBe(0);
  });

  it('the control plane exits 0', async () => {
    const other = h.tmpDir('tandem-lifecycle-cp-');
    try {
      const cp2 = await h.startControlPlane(other, path.join(other, 'absent.yaml'));
      expect(await cp2.proc.stop('SIGTERM')).toBe(0);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
