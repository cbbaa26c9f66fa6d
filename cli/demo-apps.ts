// The demo shop's applications, in the demo process: reviews v1/v2/v3 and ratings
// answer; frontend calls reviews and ratings through its sidecar's outbound port. What
// they see is counted by their sidecars (`tandem stat`), not here.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

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

export function frontend(outboundPort: () => number): Promise<Server> {
  return serve(async (req, res) => {
    req.resume();
    const [reviews, ratings] = await Promise.all(
      ['reviews', 'ratings'].map(async (svc) => (await call(outboundPort(), svc, '/')).status),
    );
    res.statusCode = reviews === 200 && ratings === 200 ? 200 : 502;
    res.end();
  });
}

export function agentClose(): void {
  agent.destroy();
}
