// Draining under load: a server sidecar that is told to go (SIGTERM, or POST /drain on its
// admin port) leaves EDS first, moves its peers off (GOAWAY on the h2 hop, `Connection: close` on HTTP/1.1), finishes what
// is in flight, and exits 0 — and not one of the callers' requests fails meanwhile.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

describe('draining under load', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let client: h.Sidecar;
  const servers: h.Sidecar[] = [];
  const served: Record<string, number> = {};

  const startServer = async (name: string) => {
    const app = await h.startApp(name, (req, res) => {
      req.resume();
      served[name] = (served[name] ?? 0) + 1;
      // slow enough that requests are in flight whenever the drain starts
      setTimeout(() => res.end(name), 40);
    });
    const s = await h.startSidecar(cp, 'svc', app.port, { version: name });
    servers.push(s);
    return s;
  };

  /** how many endpoints of svc the client sidecar knows */
  const endpoints = async () => {
    const clusters = await h.json<{ name: string; endpoints: { address: string }[] }[]>(client.admin, '/clusters');
    return clusters.filter((c) => c.name.endsWith('||svc.default.svc.cluster.local')).flatMap((c) => c.endpoints).length;
  };

  /** `loops` callers, each sending requests one after another until `stop` resolves */
  async function load(loops: number, stop: Promise<unknown>): Promise<{ ok: number; failed: string[] }> {
    let done = false;
    void stop.then(() => (done = true));
    const failed: string[] = [];
    let ok = 0;
    await Promise.all(
      Array.from({ length: loops }, async () => {
        while (!done) {
          const r = await h.request(client.outbound, { host: 'svc', path: '/' }).catch((e: Error) => ({ status: 0, body: e.message, headers: {} }));
          if (r.status === 200) ok++;
          else failed.push(`${r.status} ${String((r.headers as Record<string, unknown>)['x-tandem-response-flags'] ?? '')} ${r.body.slice(0, 100)}`);
        }
      }),
    );
    return { ok, failed };
  }

  beforeAll(async () => {
    dir = h.tmpDir('tandem-drain-e2e-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, '');
    cp = await h.startControlPlane(dir, configPath);
    const clientApp = await h.startApp('client');
    client = await h.startSidecar(cp, 'client', clientApp.port);
    await startServer('a');
    await startServer('b');
    await h.waitFor('the client to know both servers', async () => (await endpoints()) === 2 || undefined, 15_000);
  }, 60_000);

  afterAll(async () => {
    await h.stopAll();
    await h.closeApps();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('SIGTERM: the server leaves, exits 0, and no caller request fails', async () => {
    const [a] = servers;
    const stopped = (async () => {
      await new Promise((r) => setTimeout(r, 500));
      const code = await a.proc.stop('SIGTERM');
      // and a little load after it is gone
      await new Promise((r) => setTimeout(r, 300));
      return code;
    })();
    const r = await load(16, stopped);
    expect(await stopped).toBe(0);
    expect(r.failed).toEqual([]);
    expect(r.ok).toBeGreaterThan(50);
    expect(await endpoints()).toBe(1);
  }, 60_000);

  it('POST /drain: /ready turns 503, the endpoint leaves EDS at its peers, and no request fails', async () => {
    const c = await startServer('c');
    await h.waitFor('the client to know c', async () => (await endpoints()) === 2 || undefined, 15_000);
    const drained = (async () => {
      await new Promise((r) => setTimeout(r, 400));
      const res = await h.request(c.admin, { path: '/drain', method: 'POST' });
      expect(res.status).toBe(202);
      expect((await h.request(c.admin, { path: '/ready' })).status).toBe(503);
      await h.waitFor('c to leave EDS at the client', async () => (await endpoints()) === 1 || undefined, 10_000);
      await new Promise((r) => setTimeout(r, 300));
    })();
    const r = await load(16, drained);
    await drained;
    expect(r.failed).toEqual([]);
    // c stays up (POST /drain does not exit): SIGTERM ends it
    expect(c.proc.child.exitCode).toBeNull();
    expect(await c.proc.stop('SIGTERM')).toBe(0);
  }, 60_000);
});
