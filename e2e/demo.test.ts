// `tandem demo` end to end, as `make demo` runs it but into a pipe: it starts the shop,
// prints where each sidecar's /metrics and access log are, shows the `tandem stat` table
// (one per interval, not a TTY) with every service and version over mTLS, shifts the
// canary, ends by itself with 0, and leaves nothing listening.
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import * as h from './harness';

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });

describe('tandem demo', () => {
  it('shows the stat table while the canary shifts, stops by itself and leaves nothing running', async () => {
    const r = await h.runTandem(['demo', '--duration', '10s', '--rate', '20'], { timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    // where to look, printed first
    const urls = [...out.matchAll(/http:\/\/127\.0\.0\.1:(\d+)\/metrics/g)].map((m) => Number(m[1]));
    expect(new Set(urls).size).toBe(7); // the control plane and 6 sidecars
    expect(out).toMatch(/access log: \S+sidecar-frontend-v1\.log/);
    expect(out).toMatch(/tandem stat --control-plane-admin 127\.0\.0\.1:\d+ --watch/);
    // the stat table, from the sidecars' own metrics
    expect(out).toMatch(/^NAME\s+VERSION\s+SUCCESS\s+RPS\s+LATENCY_P50\s+LATENCY_P95\s+LATENCY_P99\s+TCP_CONN\s+MTLS$/m);
    const last = out.slice(out.lastIndexOf('NAME '));
    for (const row of ['frontend +v1', 'reviews +v1', 'reviews +v2', 'reviews +v3', 'ratings +v1']) {
      expect(last, row).toMatch(new RegExp(`^${row} +\\d+\\.\\d\\d% +\\d+\\.\\drps .* 100%$`, 'm'));
    }
    // ratings' own sidecar counts its app's 503s; the frontend's sidecar retries them away
    // (a retry that lands on another 4th answer can fail again, so not exactly 100%)
    expect(last).toMatch(/^ratings +v1 +(7\d|8\d)\.\d\d% /m);
    expect(last).toMatch(/^frontend +v1 +(100\.00|99\.\d\d)% /m);
    expect(out).toMatch(/canary shifted to v2 50%/);
    for (const port of urls) expect(await refused(port), `port ${port} still open`).toBe(true);
  }, 150_000);
});
