// Both xDS protocols in one mesh: a sidecar speaking State of the World (--xds-protocol sotw)
// beside ones speaking Delta (the default) against the real control plane: each is
// configured, routes to the other, follows an edit and a leave, and the control plane's
// /debug/syncz lists each stream with its protocol, SYNCED.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

interface Sync {
  id: string;
  protocol: 'sotw' | 'delta';
  types: Record<string, { status: string }>;
}

interface Dump {
  types: Record<string, { version: string }>;
  clusters: { name: string; version: string }[];
  routes: { name: string; version: string }[];
}

const edit = (weightV1: number) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend}
spec:
  hosts: [backend]
  http:
  - route:
    - destination: {host: backend, subset: v1}
      weight: ${weightV1}
    - destination: {host: backend, subset: v2}
      weight: ${100 - weightV1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend}
spec:
  host: backend
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

describe('Delta and State of the World sidecars in one mesh', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let sotw: h.Sidecar;
  let delta: h.Sidecar;
  let v2: h.Sidecar;

  beforeAll(async () => {
    dir = h.tmpDir('tandem-xds-protocols-e2e-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, edit(100));
    cp = await h.startControlPlane(dir, configPath);
    const front = await h.startApp('front');
    const v1App = await h.startApp('v1', (_req, res) => res.end('v1'));
    const v2App = await h.startApp('v2', (_req, res) => res.end('v2'));
    sotw = await h.startSidecar(cp, 'front', front.port, {}, { args: ['--xds-protocol', 'sotw'] });
    delta = await h.startSidecar(cp, 'backend', v1App.port, { version: 'v1' }, { args: ['--xds-protocol', 'delta'] });
    v2 = await h.startSidecar(cp, 'backend', v2App.port, { version: 'v2' });
  }, 60_000);

  afterAll(async () => {
    await h.stopAll();
    await h.closeApps();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists each stream with its protocol, all SYNCED', async () => {
    const rows = await h.waitFor('every stream synced', async () => {
      const s = await h.json<Sync[]>(cp.admin, '/debug/syncz');
      return s.length === 3 && s.every((e) => ['CDS', 'LDS', 'EDS', 'RDS'].every((t) => e.types[t]?.status === 'SYNCED')) && s;
    });
    expect(rows.map((r) => r.protocol).sort()).toEqual(['delta', 'delta', 'sotw']);
  });

  it('the SotW sidecar routes by the config it was sent, and follows an edit', async () => {
    const r = await h.request(sotw.outbound, { host: 'backend', path: '/' });
    expect(r.body).toBe('v1');
    fs.writeFileSync(cp.configPath, edit(0));
    await h.waitFor('the edit to reach the SotW sidecar', async () => (await h.request(sotw.outbound, { host: 'backend', path: '/' })).body === 'v2' || undefined);
    for (let i = 0; i < 20; i++) expect((await h.request(sotw.outbound, { host: 'backend', path: '/' })).body).toBe('v2');
    // State of the World: every resource is held at its type's version
    const d = await h.json<Dump>(sotw.admin, '/config_dump');
    for (const c of d.clusters) expect(c.version).toBe(d.types.CDS.version);
    for (const rc of d.routes) expect(rc.version).toBe(d.types.RDS.version);
  });

  it('a Delta sidecar and the SotW one see a leave alike', async () => {
    const subsetEndpoints = async (port: number) => {
      const clusters = await h.json<{ name: string; endpoints: unknown[] }[]>(port, '/clusters');
      return clusters.find((c) => c.name.startsWith('outbound|80|v2|backend.'))?.endpoints.length;
    };
    expect(await subsetEndpoints(sotw.admin)).toBe(1);
    expect(await subsetEndpoints(delta.admin)).toBe(1);
    await v2.proc.stop('SIGTERM');
    await h.waitFor('both to drop the endpoint that left', async () => (await subsetEndpoints(sotw.admin)) === 0 && (await subsetEndpoints(delta.admin)) === 0);
  });
});
