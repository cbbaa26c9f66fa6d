// A real Prometheus scrapes the sidecars and answers Istio's standard Grafana queries.
// productpage v1 calls reviews v1 and v2 through the mesh; reviews v2 fails a quarter of
// its requests with 500. Prometheus (Debian's `prometheus` package; the suite is skipped
// when no `prometheus` is on PATH) scrapes the three sidecars' admin /metrics every
// second, and Istio's success-rate-by-version query must say 1 for v1 and 0.75 for v2.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

const PROMETHEUS = (process.env.PATH ?? '')
  .split(path.delimiter)
  .filter(Boolean)
  .map((d) => path.join(d, 'prometheus'))
  .find((f) => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  });
if (!PROMETHEUS) console.warn('e2e/prometheus.test.ts skipped: no `prometheus` binary on PATH (Debian: apt-get install prometheus)');

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
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
`;

// Istio's Grafana dashboards (istio-service-dashboard, istio-mesh-dashboard), reduced to this mesh.
const SUCCESS_RATE_BY_VERSION =
  'sum(rate(istio_requests_total{reporter="destination",response_code!~"5.*"}[1m])) by (destination_version)' +
  ' / sum(rate(istio_requests_total{reporter="destination"}[1m])) by (destination_version)';
const P99 = 'histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination"}[1m])) by (le))';
const CLIENT_RPS_BY_CODE = 'sum(rate(istio_requests_total{reporter="source",source_workload="productpage-v1"}[1m])) by (response_code)';
const CLIENT_TOTAL_BY_CODE = 'sum(istio_requests_total{reporter="source",source_workload="productpage-v1"}) by (response_code)';
const TOTAL_BY_VERSION = 'sum(istio_requests_total{reporter="destination"}) by (destination_version)';

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

interface Prometheus {
  port: number;
  child: ChildProcess;
  output: () => string;
}

async function startPrometheus(dir: string, targets: number[]): Promise<Prometheus> {
  const config = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '- job_name: tandem-sidecars',
      '  metrics_path: /metrics',
      '  static_configs:',
      `  - targets: [${targets.map((p) => `'127.0.0.1:${p}'`).join(', ')}]`,
      '',
    ].join('\n'),
  );
  // a port from freePort can be taken before Prometheus binds it: try again on another
  let last: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await h.freePort();
    const child = spawn(
      PROMETHEUS!,
      [`--config.file=${config}`, `--web.listen-address=127.0.0.1:${port}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const p: Prometheus = { port, child, output: () => out };
    try {
      await h.waitFor('prometheus ready', async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${out.slice(-2000)}`);
        return (await h.request(port, { path: '/-/ready' })).status === 200;
      }, 20_000, 100);
      return p;
    } catch (err) {
      last = err as Error;
      await stopPrometheus(p);
    }
  }
  throw new Error(`prometheus did not start: ${last?.message}`, { cause: last });
}

async function stopPrometheus(p: Prometheus): Promise<void> {
  const { child } = p;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 8000);
  await exited;
  clearTimeout(t);
}

async function query(p: Prometheus, promql: string): Promise<Sample[]> {
  const r = await h.request(p.port, { path: `/api/v1/query?query=${encodeURIComponent(promql)}` });
  const body = JSON.parse(r.body) as { status: string; error?: string; data?: { resultType: string; result: Sample[] } };
  if (body.status !== 'success' || body.data?.resultType !== 'vector') throw new Error(`${promql}: ${r.status} ${body.error ?? r.body}`);
  return body.data.result;
}

const byLabel = (samples: Sample[], label: string): Record<string, number> =>
  Object.fromEntries(samples.map((s) => [s.metric[label] ?? '', Number(s.value[1])]));

describe.skipIf(!PROMETHEUS)('prometheus e2e: a real Prometheus scrapes the sidecars and answers Istio dashboard queries', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let product: h.Sidecar;
  const sidecars: h.Sidecar[] = [];
  let prom: Prometheus | undefined;

  const failing = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    req.resume();
    req.on('end', () => {
      res.statusCode = req.url?.startsWith('/fail') ? 500 : 200;
      res.end('reviews-v2');
    });
  };
  const call = (version: 'v1' | 'v2', p: string) =>
    h.request(product.outbound, { host: 'reviews', path: p, headers: version === 'v2' ? { 'end-user': 'jason' } : {} });
  const sidecarTotals = async () => {
    const total = (sc: h.Sidecar) => h.request(sc.admin, { path: '/metrics' }).then((r) => {
      let n = 0;
      for (const line of r.body.split('\n')) if (line.startsWith('istio_requests_total{') && line.includes('reporter="destination"')) n += Number(line.split(' ').pop());
      return n;
    });
    return { v1: await total(sidecars[0]), v2: await total(sidecars[1]) };
  };

  beforeAll(async () => {
    dir = h.tmpDir('tandem-prometheus-e2e-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, MESH);
    cp = await h.startControlPlane(dir, configPath);
    const v1App = await h.startApp('reviews-v1');
    const v2App = await h.startApp('reviews-v2', failing);
    const productApp = await h.startApp('productpage');
    sidecars.push(await h.startSidecar(cp, 'reviews', v1App.port, { version: 'v1' }));
    sidecars.push(await h.startSidecar(cp, 'reviews', v2App.port, { version: 'v2' }));
    product = await h.startSidecar(cp, 'productpage', productApp.port, { version: 'v1' });
    sidecars.push(product);
    await h.waitFor('productpage reaches both versions', async () => {
      const [a, b] = await Promise.all([call('v1', '/warm'), call('v2', '/warm')]);
      return a.status === 200 && b.status === 200 && a.body.includes('reviews-v1') && b.body.includes('reviews-v2');
    }, 15_000);
    // Every series exists before Prometheus first scrapes it, so rate() sees all of the
    // traffic below as increase (a series first seen mid-traffic loses its first value).
    await call('v2', '/fail');
    await h.waitFor('warm-up counted', async () => {
      const t = await sidecarTotals();
      return t.v1 >= 1 && t.v2 >= 2 ? t : undefined;
    }, 10_000);
    prom = await startPrometheus(path.join(dir), sidecars.map((s) => s.admin));
  }, 90_000);

  afterAll(async () => {
    if (prom) await stopPrometheus(prom);
    await h.closeApps();
    await h.stopAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it("answers Istio's success rate by destination_version, p99 latency and client RPS by code for known traffic", async () => {
    const p = prom!;
    // two scrapes of every sidecar before the traffic: rate() starts from the warm-up counts
    await h.waitFor('two scrapes of each sidecar', async () => {
      const s = await query(p, 'count_over_time(up[1m]) >= 2 and up == 1');
      return s.length === 3 ? s : undefined;
    }, 20_000, 200);
    const before = await sidecarTotals();

    const OK = 40;
    const V2_OK = 30;
    const V2_FAIL = 10;
    const answers = await h.pool(OK + V2_OK + V2_FAIL, 4, (i) =>
      i < OK ? call('v1', `/ok/${i}`) : i < OK + V2_OK ? call('v2', `/ok/${i}`) : call('v2', `/fail/${i}`),
    );
    expect(answers.filter((a) => a.status === 200)).toHaveLength(OK + V2_OK);
    expect(answers.filter((a) => a.status === 500)).toHaveLength(V2_FAIL);

    const want = { v1: before.v1 + OK, v2: before.v2 + V2_OK + V2_FAIL };
    await h.waitFor('the sidecars counted the traffic', async () => {
      const t = await sidecarTotals();
      return t.v1 === want.v1 && t.v2 === want.v2;
    }, 10_000, 100);
    // and Prometheus has scraped those counts
    const totals = await h.waitFor('prometheus scraped the traffic', async () => {
      const t = byLabel(await query(p, TOTAL_BY_VERSION), 'destination_version');
      return t.v1 === want.v1 && t.v2 === want.v2 ? t : undefined;
    }, 20_000, 200);
    expect(totals).toEqual(want);

    const success = byLabel(await query(p, SUCCESS_RATE_BY_VERSION), 'destination_version');
    expect(Object.keys(success).sort()).toEqual(['v1', 'v2']);
    expect(success.v1).toBeCloseTo(1, 5);
    expect(success.v2).toBeGreaterThan(0.73);
    expect(success.v2).toBeLessThan(0.77);

    const p99 = await query(p, P99);
    expect(p99).toHaveLength(1);
    const ms = Number(p99[0].value[1]);
    expect(Number.isFinite(ms)).toBe(true);
    expect(ms).toBeGreaterThan(0);

    // the client side, as the mesh dashboard's "requests by response code" — once Prometheus has
    // scraped productpage's sidecar after the traffic too (its scrapes are not in step with the others')
    const clientOwn = async () => {
      const text = (await h.request(product.admin, { path: '/metrics' })).body;
      const out: Record<string, number> = {};
      for (const line of text.split('\n')) {
        if (!line.startsWith('istio_requests_total{') || !line.includes('reporter="source"') || !line.includes('source_workload="productpage-v1"')) continue;
        const code = /response_code="(\d+)"/.exec(line)?.[1] ?? '';
        out[code] = (out[code] ?? 0) + Number(line.split(' ').pop());
      }
      return out;
    };
    await h.waitFor('prometheus has the client side as its sidecar counts it now', async () => {
      const [own, scraped] = await Promise.all([clientOwn(), query(p, CLIENT_TOTAL_BY_CODE).then((r) => byLabel(r, 'response_code'))]);
      return own['200'] > 0 && own['200'] === scraped['200'] && own['500'] === scraped['500'] ? true : undefined;
    }, 20_000, 200);
    const codes = byLabel(await query(p, CLIENT_RPS_BY_CODE), 'response_code');
    expect(codes['200']).toBeGreaterThan(0);
    const failed = codes['500'] / (codes['200'] + codes['500']);
    expect(failed).toBeGreaterThan(0.1);
    expect(failed).toBeLessThan(0.15);
  }, 90_000);
});
