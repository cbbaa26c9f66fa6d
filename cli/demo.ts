// `tandem demo`: a control plane and a small shop on loopback, steady traffic from a
// load generator in the mesh, the `tandem stat` table live (the sidecars' own metrics),
// and a canary shift from 10% to 50% half way through.
// Everything started here is stopped before it returns.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseDuration } from '../common/duration';
import { parseFlags, UsageError } from './flags';
import { freePort } from '../common/free-port';
import { agentClose, backend, call, frontend, serve, type Server } from './demo-apps';
import { renderStat, StatScraper, type StatResult } from './stat';
import { ROOT_KEY } from '../certs/ca';
import { mintToken } from '../certs/token';
import { waitFor } from '../common/wait';

const TANDEM = path.join(__dirname, 'tandem.js');

export function meshYaml(v2Weight: number): string {
  return `# written by tandem demo
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: reviews-canary
    route:
    - {destination: {host: reviews, subset: v1}, weight: ${100 - v2Weight}}
    - {destination: {host: reviews, subset: v2}, weight: ${v2Weight}}
    mirror: {host: reviews, subset: v3}
    mirrorPercentage: {value: 100}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`;
}

const until = (what: string, fn: () => Promise<boolean>, timeoutMs = 20_000) =>
  waitFor(what, fn, timeoutMs, 100).catch((err: Error) => {
    throw new Error(`demo: ${err.message}`, { cause: err });
  });

const ready = async (port: number) => (await call(port, '127.0.0.1', '/ready')).status === 200;

export async function demoCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { duration: { default: '30s' }, rate: { default: '50' } }, 'demo');
  let durationMs: number;
  try {
    durationMs = parseDuration(f.duration!);
  } catch (err) {
    throw new UsageError(`--duration: ${(err as Error).message}`);
  }
  const rate = Number(f.rate);
  if (!(rate > 0)) throw new UsageError('--rate: requests per second, a positive number');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-demo-'));
  const children: ChildProcess[] = [];
  const servers: Server[] = [];
  let flakyFailures = 0;
  let stopped = false;
  let wake: () => void = () => undefined;
  const stopNow = () => {
    stopped = true;
    wake();
  };
  process.once('SIGINT', stopNow);
  process.once('SIGTERM', stopNow);
  const run = (args: string[], name: string) => {
    const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
    const c = spawn(process.execPath, [TANDEM, ...args], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    children.push(c);
    return c;
  };

  try {
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, meshYaml(10));
    const [listen, admin] = [await freePort(), await freePort()];
    const caDir = path.join(dir, 'certs');
    run(['control-plane', '--config', configPath, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--ca-dir', caDir], 'control-plane');
    await until('the control plane', () => ready(admin));

    let frontendOutbound = 0;
    const apps: { service: string; version: string; server: Server }[] = [];
    for (const [service, version] of [['reviews', 'v1'], ['reviews', 'v2'], ['reviews', 'v3'], ['ratings', 'v1']]) {
      const server = await backend(
        service,
        version,
        () => undefined,
        // ratings is flaky: every 4th answer is a 503, which the mesh's default retries hide
        service === 'ratings' ? 4 : 0,
        () => flakyFailures++,
      );
      apps.push({ service, version, server });
    }
    const fe = await frontend(() => frontendOutbound);
    apps.push({ service: 'frontend', version: 'v1', server: fe });
    // the traffic comes from a workload in the mesh, so the frontend's own sidecar counts it (over mTLS)
    const loadgen = await serve((req, res) => void req.resume().on('end', () => res.end()));
    apps.push({ service: 'loadgen', version: 'v1', server: loadgen });
    let loadgenOutbound = 0;
    servers.push(...apps.map((a) => a.server));

    const sidecarAdmins: number[] = [];
    const where = [
      'where to look while it runs:',
      `  control plane  http://127.0.0.1:${admin}/metrics   http://127.0.0.1:${admin}/debug/syncz   log: ${path.join(dir, 'control-plane.log')}`,
    ];
    // each workload's bootstrap token, as `tandem token` mints them
    const rootKey = fs.readFileSync(path.join(caDir, ROOT_KEY), 'utf8');
    for (const a of apps) {
      const tokenFile = path.join(dir, `${a.service}-${a.version}.token`);
      fs.writeFileSync(tokenFile, mintToken(rootKey, { namespace: 'default', serviceAccount: a.service, ttlMs: 3600e3 }), { mode: 0o600 });
      const [inbound, outbound, sAdmin] = [await freePort(), await freePort(), await freePort()];
      if (a.service === 'frontend') frontendOutbound = outbound;
      if (a.service === 'loadgen') loadgenOutbound = outbound;
      run(
        ['sidecar', '--service', a.service, '--labels', `version=${a.version}`, '--app', `127.0.0.1:${a.server.port}`,
          '--inbound', `127.0.0.1:${inbound}`, '--outbound', `127.0.0.1:${outbound}`, '--admin', `127.0.0.1:${sAdmin}`,
          '--control-plane', `127.0.0.1:${listen}`, '--root-cert', path.join(caDir, 'root-cert.pem'), '--access-log', 'stdout', '--token', tokenFile],
        `sidecar-${a.service}-${a.version}`,
      );
      sidecarAdmins.push(sAdmin);
      where.push(`  ${`${a.service} ${a.version}`.padEnd(12)} http://127.0.0.1:${sAdmin}/metrics   access log: ${path.join(dir, `sidecar-${a.service}-${a.version}.log`)}`);
    }
    await Promise.all(sidecarAdmins.map((p) => until('the sidecars', () => ready(p))));
    // every reviews version must be an endpoint before traffic starts
    await until('endpoints', async () => (await call(frontendOutbound, 'reviews', '/')).status === 200);
    await until('the frontend', async () => (await call(loadgenOutbound, 'frontend', '/')).status === 200);
    where.push(
      `  the same table from another terminal: tandem stat --control-plane-admin 127.0.0.1:${admin} --watch`,
      '  traces: every access-log line carries its trace_id; the sidecars inherit OTEL_* from this environment',
    );

    const out = process.stdout;
    const tty = out.isTTY === true;
    // refreshed in place on a terminal; into a pipe or a file, one table every 5 s
    const everyMs = tty ? 2000 : 5000;
    const started = Date.now();
    let shifted = false;
    const events = [
      `mesh up: control plane, 6 sidecars, each with its own SPIFFE certificate from the mesh CA; every hop mTLS (STRICT); reviews v1 90% / v2 10%, mirrored to v3; logs in ${dir} while it runs`,
    ];
    if (!tty) out.write(`${where.join('\n')}\n\n`);

    const driver = setInterval(() => {
      for (let i = 0; i < Math.max(1, Math.round(rate / 10)); i++) void call(loadgenOutbound, 'frontend', '/');
    }, 100);

    const scraper = new StatScraper(`127.0.0.1:${admin}`, 1500);
    await scraper.tick();
    const render = (r: StatResult) => {
      const rps = (v: string) => r.rows.find((x) => x.name === 'reviews' && x.version === v)?.rps ?? 0;
      const canary = rps('v1') + rps('v2');
      const lines = [
        `tandem demo  ${((Date.now() - started) / 1000).toFixed(0)}s / ${(durationMs / 1000).toFixed(0)}s   tandem stat: what each sidecar's own /metrics counted coming in, over the last ${r.seconds.toFixed(0)}s`,
        '',
        renderStat(r).trimEnd(),
        '',
        canary > 0 ? `reviews split, as measured at its sidecars: v1 ${((100 * rps('v1')) / canary).toFixed(0)}% / v2 ${((100 * rps('v2')) / canary).toFixed(0)}%; v3 gets a mirror copy of each request (answers discarded)` : 'reviews: no traffic measured yet',
        `ratings answers every 4th request with 503 (${flakyFailures} so far): its own sidecar counts them (SUCCESS below 100%), the frontend's sidecar retried each, so frontend stays at 100%`,
        '',
        ...events.map((e) => `* ${e}`),
        ...(tty ? ['', ...where] : []),
      ];
      out.write(tty ? `\x1b[H\x1b[2J${lines.join('\n')}\n` : `${lines.join('\n')}\n\n`);
    };
    if (tty) out.write('\x1b[2J');
    let lastRender = Date.now();
    while (!stopped && Date.now() - started < durationMs) {
      await new Promise<void>((r) => {
        wake = r;
        const next = Math.min(lastRender + everyMs, started + durationMs, shifted ? Infinity : started + durationMs / 2);
        setTimeout(r, Math.max(0, next - Date.now()));
      });
      if (!shifted && Date.now() - started >= durationMs / 2) {
        shifted = true;
        fs.writeFileSync(configPath, meshYaml(50));
        events.push(`${((Date.now() - started) / 1000).toFixed(0)}s: canary shifted to v2 50% by editing ${configPath}`);
      }
      if (Date.now() - lastRender >= everyMs || Date.now() - started >= durationMs || stopped) {
        render(await scraper.tick());
        lastRender = Date.now();
      }
    }
    clearInterval(driver);
    return 0;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => { const t = setTimeout(() => c.kill('SIGKILL'), 6000); c.once('exit', () => { clearTimeout(t); r(null); }); }) : null)));
    for (const s of servers) s.close();
    agentClose();
    process.off('SIGINT', stopNow);
    process.off('SIGTERM', stopNow);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
