// The demo shop's applications, in the demo process: reviews v1/v2/v3 and ratings
// answer; frontend calls reviews and ratings through its sidecar's outbound port and
// records, per service and version, what came back and how long it took.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Sample {
  at: number;
  ok: boolean;
  ms: number;
  /** the backend's sidecar vouched for the caller (XFCC with the caller's SPIFFE ID): the hop was mTLS */
  mtls: boolean;
}

export class Stats {
  readonly samples = new Map<string, Sample[]>();
  record(key: string, s: Sample): void {
    let list = this.samples.get(key);
    if (!list) this.samples.set(key, (list = []));
    list.push(s);
  }
  /** rows for the last windowMs */
  window(windowMs: number, now = Date.now()): { key: string; n: number; ok: number; mtls: number; rps: number; p50: number; p95: number; p99: number }[] {
    const out = [];
    for (const [key, list] of [...this.samples].sort()) {
      const recent = list.filter((s) => now - s.at <= windowMs);
      const ms = recent.map((s) => s.ms).sort((a, b) => a - b);
      const q = (p: number) => (ms.length ? ms[Math.min(ms.length - 1, Math.floor(p * ms.length))] : 0);
      out.push({ key, n: recent.length, ok: recent.filter((s) => s.ok).length, mtls: recent.filter((s) => s.mtls).length, rps: recent.length / (windowMs / 1000), p50: q(0.5), p95: q(0.95), p99: q(0.99) });
    }
    return out;
  }
}

export interface Server {
  port: number;
  close(): void;
}

export function serve(handler: http.RequestListener): Promise<Server> {
  const s = http.createServer({ keepAliveTimeout: 30_000 }, handler);
  return new Promise((resolve) =>
    s.listen(0, '127.0.0.1', () =>
      resolve({
        port: (s.address() as AddressInfo).port,
        close: () => {
          s.closeAllConnections();
          s.close();
        },
      }),
    ),
  );
}

/**
 * A backend that says who it is; the host it was called by tells shadow copies apart. A
 * flaky one answers every `flakyEvery`th request with 503, for the mesh's retries to hide.
 */
export function backend(service: string, version: string, onHit: (shadow: boolean) => void, flakyEvery = 0, onFail?: () => void): Promise<Server> {
  let n = 0;
  return serve((req, res) => {
    req.resume();
    onHit(String(req.headers.host ?? '').includes('-shadow'));
    if (flakyEvery > 0 && ++n % flakyEvery === 0) {
      onFail?.();
      res.statusCode = 503;
      return void res.end('flaky\n');
    }
    res.setHeader('content-type', 'application/json');
    // what the sidecar in front of this app says about the caller
    const caller = /URI=([^;,]+)/.exec(String(req.headers['x-forwarded-client-cert'] ?? ''))?.[1] ?? null;
    res.end(JSON.stringify({ service, version, caller }));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export function call(port: number, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host }, agent }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.setTimeout(5000, () => req.destroy());
    req.end();
  });
}

export function frontend(outboundPort: () => number, stats: Stats): Promise<Server> {
  return serve(async (req, res) => {
    req.resume();
    const [reviews, ratings] = await Promise.all(
      ['reviews', 'ratings'].map(async (svc) => {
        const t0 = Date.now();
        const r = await call(outboundPort(), svc, '/');
        let version = '?';
        let caller: string | null = null;
        try {
          ({ version, caller } = JSON.parse(r.body) as { version: string; caller: string | null });
        } catch {
          /* error bodies are plain text */
        }
        stats.record(`${svc} ${version}`, { at: Date.now(), ok: r.status === 200, ms: Date.now() - t0, mtls: !!caller });
        return r.status;
      }),
    );
    res.statusCode = reviews === 200 && ratings === 200 ? 200 : 502;
    res.end();
  });
}

export function agentClose(): void {
  agent.destroy();
}
