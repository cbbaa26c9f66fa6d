// Make before break: a config edit that adds a subset and routes to it in one go, and one
// that removes it again, under steady traffic (200 requests/s), never leaves a request
// with a route to a cluster the sidecar cannot use: zero failures. (The mechanism itself —
// routes held until their clusters are warm, removed clusters kept while routed to — is
// pinned down in sidecar/xds/warming.test.ts; on loopback the pushes often arrive together.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

const config = (withV2: boolean) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - retries: {attempts: 0}
    route:
${withV2 ? '    - {destination: {host: reviews, subset: v1}, weight: 50}\n    - {destination: {host: reviews, subset: v2}, weight: 50}' : '    - {destination: {host: reviews, subset: v1}}'}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
${withV2 ? '  - {name: v2, labels: {version: v2}}' : ''}
`;

let dir: string;
let configPath: string;
let caller: h.Sidecar;
let v2: h.App;

beforeAll(async () => {
  dir = h.tmpDir('tandem-subsets-');
  configPath = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(configPath, config(false));
  const cp = await h.startControlPlane(dir, configPath);
  const v1 = await h.startApp('v1');
  v2 = await h.startApp('v2');
  await h.startSidecar(cp, 'reviews', v1.port, { version: 'v1' });
  await h.startSidecar(cp, 'reviews', v2.port, { version: 'v2' });
  caller = await h.startSidecar(cp, 'caller', (await h.startApp('caller')).port);
  await h.waitFor('reviews through the mesh', async () => (await h.request(caller.outbound, { host: 'reviews', path: '/' })).status === 200);
}, 60_000);

afterAll(async () => {
  await h.stopAll();
  await h.closeApps();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('adding and removing a subset under load', () => {
  it('fails no request at 200 requests/s through three add/remove cycles', async () => {
    const failures: string[] = [];
    let sent = 0;
    let stop = false;
    // 200 requests/s: one every 5 ms, each on its own (no waiting for the previous)
    const inflight = new Set<Promise<void>>();
    const driver = setInterval(() => {
      if (stop) return;
      sent++;
      const p = h
        .request(caller.outbound, { host: 'reviews', path: `/r${sent}` })
        .then((r) => {
          if (r.status !== 200) failures.push(`${r.status} ${String(r.headers['x-tandem-response-flags'] ?? '')} ${r.body.slice(0, 80)}`);
        })
        .catch((e: Error) => void failures.push(e.message))
        .finally(() => inflight.delete(p));
      inflight.add(p);
    }, 5);
    try {
      for (let cycle = 0; cycle < 3; cycle++) {
        const before = v2.hits;
        fs.writeFileSync(configPath, config(true));
        await h.waitFor('traffic on v2', () => v2.hits > before + 20, 15_000);
        fs.writeFileSync(configPath, config(false));
        // v2 is out of the route once a stretch of traffic passes it by
        await h.waitFor('v2 out of the route', async () => {
          const seen = v2.hits;
          await new Promise((r) => setTimeout(r, 300));
          return v2.hits === seen;
        }, 15_000);
      }
    } finally {
      stop = true;
      clearInterval(driver);
      await Promise.all([...inflight]);
    }
    expect(sent).toBeGreaterThan(300);
    expect(failures).toEqual([]);
  }, 90_000);
});
