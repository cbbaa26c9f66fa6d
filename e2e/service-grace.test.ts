// A service known only from its sidecars outlives the last one by --service-grace: a sidecar
// restarting does not take the service out of every other proxy's clusters (and bring it
// back a moment later), and one gone for good leaves once the grace is over.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

const RATINGS = 'outbound|80||ratings.default.svc.cluster.local';

interface ClusterInfo {
  name: string;
  endpoints: { address: string }[];
}

describe('--service-grace', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let front: h.Sidecar;

  beforeAll(async () => {
    dir = h.tmpDir('tandem-grace-');
    cp = await h.startControlPlane(dir, path.join(dir, 'mesh.yaml'), undefined, ['--service-grace', '3s']);
    front = await h.startSidecar(cp, 'front', (await h.startApp('front')).port);
  });

  afterAll(async () => {
    await h.stopAll();
    await h.closeApps();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const ratingsAt = async (): Promise<ClusterInfo | undefined> => (await h.json<ClusterInfo[]>(front.admin, '/clusters')).find((c) => c.name === RATINGS);

  it('keeps a service whose last sidecar left for the grace, with no endpoints, then drops it', async () => {
    const ratings = await h.startSidecar(cp, 'ratings', (await h.startApp('ratings')).port);
    await h.waitFor('front to see one ratings endpoint', async () => (await ratingsAt())?.endpoints.length === 1);
    expect(await ratings.proc.stop('SIGTERM')).toBe(0);
    // its endpoint goes at once (it left EDS as it drained), the service does not
    await h.waitFor('the endpoint to go', async () => (await ratingsAt())?.endpoints.length === 0);
    expect(await ratingsAt()).toBeDefined();
    // back within the grace: the same cluster gets the new endpoint
    const again = await h.startSidecar(cp, 'ratings', (await h.startApp('ratings-2')).port);
    await h.waitFor('front to see the new ratings endpoint', async () => (await ratingsAt())?.endpoints.length === 1);
    // gone for good: the cluster outlives it by the grace, then leaves
    expect(await again.proc.stop('SIGTERM')).toBe(0);
    expect(await ratingsAt()).toBeDefined();
    await h.waitFor('the ratings cluster to leave', async () => (await ratingsAt()) === undefined, 15_000, 100);
  });
});
