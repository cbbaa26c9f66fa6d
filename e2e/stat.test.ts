// `tandem stat` end to end: the CLI finds the sidecars through the control plane's
// /debug/syncz, scrapes their /metrics twice and prints, per service and version, what
// came in. productpage calls reviews v1 and v2 on /fail for as long as the command runs;
// v2's application fails that path with a 500, so v1 is 100% and v2 0% whatever part of
// the traffic the interval catches. A sidecar that does not answer (stopped with SIGSTOP)
// is reported as not scraped, and the command still ends.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

const MESH = `${h.REVIEWS_SUBSETS}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - match:
    - headers:
        x-version:
          exact: v2
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
`;

interface Row {
  name: string;
  version: string;
  success: string;
  rps: string;
  p50: string;
  p95: string;
  p99: string;
  tcp: string;
  mtls: string;
}

function table(stdout: string): Row[] {
  const lines = stdout.trim().split('\n');
  expect(lines[0].split(/\s+/)).toEqual(['NAME', 'VERSION', 'SUCCESS', 'RPS', 'LATENCY_P50', 'LATENCY_P95', 'LATENCY_P99', 'TCP_CONN', 'MTLS']);
  return lines
    .slice(1)
    .filter((l) => !l.includes('not scraped'))
    .map((l) => {
      const [name, version, success, rps, p50, p95, p99, tcp, mtls] = l.split(/\s+/);
      return { name, version, success, rps, p50, p95, p99, tcp, mtls };
    });
}

describe('tandem stat', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let product: h.Sidecar;
  let v1: h.Sidecar;

  beforeAll(async () => {
    dir = h.tmpDir('tandem-stat-e2e-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, MESH);
    cp = await h.startControlPlane(dir, configPath);
    const v1App = await h.startApp('reviews-v1');
    const v2App = await h.startApp('reviews-v2', (req, res) => {
      req.resume();
      res.writeHead(req.url === '/fail' ? 500 : 200).end('v2');
    });
    v1 = await h.startSidecar(cp, 'reviews', v1App.port, { version: 'v1' });
    await h.startSidecar(cp, 'reviews', v2App.port, { version: 'v2' });
    product = await h.startSidecar(cp, 'productpage', (await h.startApp('productpage')).port, { version: 'v1' });
    const reaches = async (v: string, answer: (r: h.HttpResult) => boolean) =>
      h.waitFor(`productpage reaches reviews ${v}`, async () => (answer(await h.request(product.outbound, { host: 'reviews', path: '/', headers: { 'x-version': v } })) ? true : undefined), 10_000);
    await reaches('v1', (r) => r.status === 200 && r.body.includes('"app":"reviews-v1"'));
    await reaches('v2', (r) => r.status === 200 && r.body === 'v2');
  }, 60_000);

  afterAll(async () => {
    await h.closeApps();
    await h.stopAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** runs `tandem stat` while productpage sends /fail to both versions, one after the other */
  async function statUnderTraffic(args: string[]) {
    let done = false;
    const sent = { v1: 0, v2: 0 };
    const traffic = (async () => {
      for (let i = 0; !done; i++) {
        const v = i % 2 ? 'v2' : 'v1';
        const r = await h.request(product.outbound, { host: 'reviews', path: '/fail', headers: { 'x-version': v } });
        expect(r.status).toBe(v === 'v2' ? 500 : 200);
        sent[v]++;
        // steady, not flat out: the machine is shared
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      return await h.runTandem(['stat', '--control-plane-admin', `127.0.0.1:${cp.admin}`, ...args], { timeoutMs: 30_000 });
    } finally {
      done = true;
      await traffic;
      expect(sent.v1 + sent.v2).toBeGreaterThan(0);
    }
  }

  it('prints each service and version with its success rate, over mTLS, from the sidecars it found through the control plane', async () => {
    const r = await statUnderTraffic(['--interval', '2s']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rows = table(r.stdout);
    expect(rows.map((x) => `${x.name} ${x.version}`)).toEqual(['productpage v1', 'reviews v1', 'reviews v2']);
    const [pp, rv1, rv2] = rows;
    // nothing calls productpage: a row without figures
    expect(pp).toMatchObject({ success: '-', rps: '0.0rps', p50: '-', mtls: '-' });
    expect(rv1).toMatchObject({ success: '100.00%', mtls: '100%' });
    expect(rv2).toMatchObject({ success: '0.00%', mtls: '100%' });
    for (const x of [rv1, rv2]) {
      expect(Number.parseFloat(x.rps)).toBeGreaterThan(0);
      for (const q of [x.p50, x.p95, x.p99]) expect(q).toMatch(/^\d+(\.\d+)?ms$/);
      // productpage's sidecar keeps its mTLS connection to each version open
      expect(Number(x.tcp)).toBeGreaterThanOrEqual(1);
    }
  }, 60_000);

  it('--watch prints a table each interval until Ctrl-C, then exits 0', async () => {
    const p = h.start(['stat', '--control-plane-admin', `127.0.0.1:${cp.admin}`, '--interval', '500ms', '--watch']);
    await h.waitFor('two tables', () => (p.output().match(/^NAME +VERSION/gm) ?? []).length >= 2, 20_000, 100);
    expect(await p.stop('SIGINT')).toBe(0);
    expect(p.output()).toMatch(/^reviews +v2 /m);
  }, 30_000);

  it('--namespace keeps to that namespace; usage errors exit 2', async () => {
    const other = await h.runTandem(['stat', '--control-plane-admin', `127.0.0.1:${cp.admin}`, '--interval', '200ms', '--namespace', 'elsewhere']);
    expect(other.code).toBe(0);
    expect(other.stdout.trim().split('\n')).toHaveLength(1);
    const bad = await h.runTandem(['stat', '--interval', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--interval/);
    const down = await h.runTandem(['stat', '--control-plane-admin', `127.0.0.1:${await h.freePort()}`, '--interval', '200ms']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach the control plane admin/);
  }, 30_000);

  it('a sidecar that does not answer is shown as not scraped, and the command ends', async () => {
    v1.proc.child.kill('SIGSTOP');
    try {
      const r = await h.runTandem(['stat', '--control-plane-admin', `127.0.0.1:${cp.admin}`, '--interval', '1s'], { timeoutMs: 20_000 });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`reviews\\.default v1 \\(admin 127\\.0\\.0\\.1:${v1.admin}\\): not scraped: no answer within 1000ms`));
      expect(table(r.stdout).map((x) => `${x.name} ${x.version}`)).toEqual(['productpage v1', 'reviews v2']);
    } finally {
      v1.proc.child.kill('SIGCONT');
    }
  }, 30_000);
});
