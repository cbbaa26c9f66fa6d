// Both xDS protocols in one mesh: a sidecar speaking State of the World (--xds-protocol sotw)
// beside ones speaking Delta (the default) against the real control plane: each is
// configured, routes to the other, follows an edit and a leave, and the control plane's
// /debug/syncz lists each stream with its protocol, SYNCED.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';
import { crowdYaml } from './fixtures/crowd';

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

// VHDS: a Delta sidecar takes its outbound routes split (a RouteConfiguration with vhds and a
// VirtualHost per service), a SotW one the whole table; through an edit, a new service and
// a removed one, both route alike.
const split = (weightV1: number, ratingsPort?: number) => `${edit(weightV1)}
${ratingsPort === undefined ? '' : `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: [ratings.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${ratingsPort}}}]`}`;

describe('a Delta sidecar with VHDS and a SotW sidecar route alike', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let sotw: h.Sidecar;
  let delta: h.Sidecar;
  let ratingsPort: number;

  beforeAll(async () => {
    dir = h.tmpDir('tandem-vhds-e2e-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, split(100));
    cp = await h.startControlPlane(dir, configPath);
    const front = await h.startApp('front');
    const v1App = await h.startApp('v1', (_req, res) => res.end('v1'));
    const v2App = await h.startApp('v2', (_req, res) => res.end('v2'));
    ratingsPort = (await h.startApp('ratings', (_req, res) => res.end('ratings'))).port;
    sotw = await h.startSidecar(cp, 'front', front.port, {}, { args: ['--xds-protocol', 'sotw'] });
    delta = await h.startSidecar(cp, 'front', front.port, {}, { args: ['--xds-protocol', 'delta'] });
    await h.startSidecar(cp, 'backend', v1App.port, { version: 'v1' }, { args: ['--xds-protocol', 'sotw'] });
    await h.startSidecar(cp, 'backend', v2App.port, { version: 'v2' }, { args: ['--xds-protocol', 'sotw'] });
  }, 60_000);

  afterAll(async () => {
    await h.stopAll();
    await h.closeApps();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** what n requests to a host through a sidecar's outbound port answer, counted */
  const answers = async (s: h.Sidecar, host: string, n: number) => {
    const seen: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await h.request(s.outbound, { host, path: '/' });
      const k = r.status === 200 ? r.body : String(r.status);
      seen[k] = (seen[k] ?? 0) + 1;
    }
    return seen;
  };
  const both = async (host: string, n: number) => ({ delta: await answers(delta, host, n), sotw: await answers(sotw, host, n) });

  it('the Delta sidecar holds the split form, the SotW one the whole table', async () => {
    const vhds = async () => (await h.json<Sync[]>(cp.admin, '/debug/syncz')).filter((e) => e.types.VHDS);
    const rows = await h.waitFor('the Delta sidecar synced on VHDS', async () => {
      const r = await vhds();
      return r.length === 1 && r[0].types.VHDS.status === 'SYNCED' && r;
    });
    expect(rows[0].protocol).toBe('delta');
    const d = await h.json<Dump>(delta.admin, '/config_dump');
    expect(d.types.VHDS.version).toBeTruthy();
    const s = await h.json<Dump>(sotw.admin, '/config_dump');
    expect(s.types.VHDS.version).toBe('');
    expect(await both('backend', 10)).toEqual({ delta: { v1: 10 }, sotw: { v1: 10 } });
  });

  it('through a weight edit', async () => {
    fs.writeFileSync(cp.configPath, split(80));
    for (const s of [delta, sotw]) await h.waitFor('the edit', async () => (await h.request(s.outbound, { host: 'backend', path: '/' })).body === 'v2' || undefined);
    // a smooth weighted round robin: any 5 picks in a row at 80/20 are 4 and 1
    expect(await both('backend', 50)).toEqual({ delta: { v1: 40, v2: 10 }, sotw: { v1: 40, v2: 10 } });
  });

  it('through a new service and a removed one', async () => {
    expect(await both('ratings.example.com', 2)).toEqual({ delta: { 404: 2 }, sotw: { 404: 2 } });
    fs.writeFileSync(cp.configPath, split(80, ratingsPort));
    for (const s of [delta, sotw]) await h.waitFor('the new service', async () => (await h.request(s.outbound, { host: 'ratings.example.com', path: '/' })).body === 'ratings' || undefined);
    expect(await both('ratings.example.com', 5)).toEqual({ delta: { ratings: 5 }, sotw: { ratings: 5 } });
    fs.writeFileSync(cp.configPath, split(80));
    for (const s of [delta, sotw]) await h.waitFor('the service gone', async () => (await h.request(s.outbound, { host: 'ratings.example.com', path: '/' })).status === 404 || undefined);
    expect(await both('ratings.example.com', 2)).toEqual({ delta: { 404: 2 }, sotw: { 404: 2 } });
    expect(await both('backend', 50)).toEqual({ delta: { v1: 40, v2: 10 }, sotw: { v1: 40, v2: 10 } });
    // the Delta sidecar was sent the removal as such, and holds no virtual host for ratings
    const d = await h.json<{ routes: { name: string }[] }>(delta.admin, '/config_dump');
    expect(JSON.stringify(d.routes)).not.toContain('ratings.example.com');
  });
});

// A route table of 6,000 small virtual hosts: 3.7 MiB whole (within the sidecars' 4 MiB
// message limit), 4.4 MiB split, so the first VirtualHost push to a Delta sidecar goes in
// parts (control-plane/xds/delta-split.ts) where it was refused at load before: the sidecar
// takes no message over 4 MiB, so it syncs at all only if the push came in parts. The service
// routed to sorts last: its virtual host comes in the last part.
const crowd = (targetPort: number) => {
  return `${crowdYaml()}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: last}
spec:
  hosts: [zzz.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${targetPort}}}]`;
};

describe('a Delta sidecar with VHDS takes a route table too large for one VirtualHost message', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let delta: h.Sidecar;

  beforeAll(async () => {
    dir = h.tmpDir('tandem-vhds-parts-e2e-');
    const configPath = path.join(dir, 'mesh.yaml');
    const last = await h.startApp('zzz', (_req, res) => res.end('zzz'));
    fs.writeFileSync(configPath, crowd(last.port));
    cp = await h.startControlPlane(dir, configPath);
    const front = await h.startApp('front');
    delta = await h.startSidecar(cp, 'front', front.port, {}, { args: ['--xds-protocol', 'delta'] });
  }, 60_000);

  afterAll(async () => {
    await h.stopAll();
    await h.closeApps();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads the config, syncs the sidecar in parts and routes to the service whose virtual host came last', async () => {
    const cfg = await h.json<{ lastError?: unknown; files: string[] }>(cp.admin, '/debug/config');
    expect(cfg.lastError).toBeUndefined();
    const row = await h.waitFor('the sidecar synced on VHDS', async () => {
      const r = (await h.json<(Sync & { types: Record<string, { status: string; sent?: string }> })[]>(cp.admin, '/debug/syncz'))[0];
      return r?.types.VHDS?.status === 'SYNCED' && r;
    });
    // the sidecar holds the push's version, not a part's
    const d = await h.json<Dump>(delta.admin, '/config_dump');
    expect(d.types.VHDS.version).toBe(row.types.VHDS.sent);
    const r = await h.waitFor('zzz routed', async () => {
      const x = await h.request(delta.outbound, { host: 'zzz.example.com', path: '/' });
      return x.status === 200 && x;
    });
    expect(r.body).toBe('zzz');
    expect((await h.request(delta.outbound, { host: 'svc-0.example.com', path: '/r1' })).status).not.toBe(404);
  });
});
