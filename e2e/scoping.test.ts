// Per-node translation on a real mesh: what each sidecar is sent depends on who it is.
// A control plane, reviews v1 and v2, ratings, and three callers: frontend (a Sidecar
// limits it to reviews, and a DestinationRule selecting it redefines a subset) and two
// productpage versions (a sourceLabels match sends v1's calls to reviews v1).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

interface ConfigDump {
  clusters: { name: string }[];
}

const REVIEWS = 'reviews.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';

/** `frontendHosts`: what frontend's Sidecar lets it reach. */
const yaml = (frontendHosts: string[]) => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: frontend}
spec:
  workloadSelector:
    labels: {app: frontend}
  egress:
  - hosts: [${frontendHosts.map((x) => JSON.stringify(x)).join(', ')}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: v1-callers
    match:
    - sourceLabels: {version: v1}
    route: [{destination: {host: reviews, subset: v1}}]
    headers: {response: {set: {x-route: v1-callers}}}
  - name: stable
    route: [{destination: {host: reviews, subset: stable}}]
    headers: {response: {set: {x-route: stable}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: stable, labels: {version: v2}}
---
# frontend keeps to v1 while everyone else has moved on
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-frontend}
spec:
  host: reviews
  workloadSelector:
    matchLabels: {app: frontend}
  subsets:
  - {name: stable, labels: {version: v1}}
`;

let dir: string;
let config: string;
let frontend: h.Sidecar;
let productV1: h.Sidecar;
let productV2: h.Sidecar;

/** Which app answered, and by which route; `flags` for the sidecar's own answers. */
async function call(from: h.Sidecar, host: string): Promise<{ status: number; app?: string; route?: string; flags?: string }> {
  const r = await h.request(from.outbound, { host, path: '/' });
  const app = r.status === 200 ? (JSON.parse(r.body) as { app: string }).app : undefined;
  return { status: r.status, app, route: r.headers['x-route'] as string | undefined, flags: r.headers['x-tandem-response-flags'] as string | undefined };
}

/** Waits until `from` gets what is expected from `host` (its config and the endpoints have arrived). */
async function until(from: h.Sidecar, host: string, want: Partial<Awaited<ReturnType<typeof call>>>): Promise<void> {
  await h.waitFor(`${from.service} -> ${host}: ${JSON.stringify(want)}`, async () => {
    const got = await call(from, host);
    return Object.entries(want).every(([k, v]) => got[k as keyof typeof got] === v);
  });
}

const clusterNames = async (s: h.Sidecar) => (await h.json<ConfigDump>(s.admin, '/config_dump')).clusters.map((c) => c.name);

beforeAll(async () => {
  dir = h.tmpDir('tandem-scoping-');
  config = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(config, yaml([`./${REVIEWS}`]));
  const cp = await h.startControlPlane(dir, config);
  const side = async (service: string, labels: Record<string, string>, appName = service) => h.startSidecar(cp, service, (await h.startApp(appName)).port, labels);
  await side('reviews', { app: 'reviews', version: 'v1' }, 'reviews-v1');
  await side('reviews', { app: 'reviews', version: 'v2' }, 'reviews-v2');
  await side('ratings', { app: 'ratings' });
  frontend = await side('frontend', { app: 'frontend' });
  productV1 = await side('productpage', { app: 'productpage', version: 'v1' }, 'productpage-v1');
  productV2 = await side('productpage', { app: 'productpage', version: 'v2' }, 'productpage-v2');
  // every caller has its routes, and reviews its endpoints (each test says which)
  for (const s of [productV1, productV2, frontend]) await until(s, 'reviews', { status: 200 });
});

afterAll(async () => {
  await h.stopAll();
  await h.closeApps();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('Sidecar egress hosts', () => {
  it('gives the selected workload only the services its hosts name: ratings is no route there (404 NR)', async () => {
    const r = await call(frontend, 'ratings');
    expect(r.status).toBe(404);
    expect(r.flags).toBe('NR');
    const names = await clusterNames(frontend);
    expect(names.filter((n) => n.endsWith(`|${RATINGS}`))).toEqual([]);
    expect(names.some((n) => n.endsWith(`|${REVIEWS}`))).toBe(true);
  });

  it('leaves every other workload the whole mesh', async () => {
    expect(await call(productV2, 'ratings')).toMatchObject({ status: 200, app: 'ratings' });
    expect((await clusterNames(productV2)).some((n) => n.endsWith(`|${RATINGS}`))).toBe(true);
  });

  it("follows an edit of the Sidecar: the service added reaches the workload's sidecar", async () => {
    fs.writeFileSync(config, yaml([`./${REVIEWS}`, `./${RATINGS}`]));
    await until(frontend, 'ratings', { status: 200, app: 'ratings' });
    fs.writeFileSync(config, yaml([`./${REVIEWS}`]));
    await until(frontend, 'ratings', { status: 404, flags: 'NR' });
  });
});

describe('VirtualService sourceLabels', () => {
  it('routes the calls of v1 callers by their own rule, and everyone else by the next', async () => {
    for (let i = 0; i < 10; i++) {
      expect(await call(productV1, 'reviews')).toMatchObject({ status: 200, app: 'reviews-v1', route: 'v1-callers' });
      expect(await call(productV2, 'reviews')).toMatchObject({ status: 200, app: 'reviews-v2', route: 'stable' });
    }
  });
});

describe('DestinationRule workloadSelector', () => {
  it("gives the selected workload its own subset: frontend's stable is v1, everyone else's v2", async () => {
    for (let i = 0; i < 10; i++) {
      expect(await call(frontend, 'reviews')).toMatchObject({ status: 200, app: 'reviews-v1', route: 'stable' });
      expect(await call(productV2, 'reviews')).toMatchObject({ status: 200, app: 'reviews-v2', route: 'stable' });
    }
  });
});
