// What a sidecar brought outlives it by a grace, unless it said goodbye: a service known only
// from its sidecars stays --service-grace after the last one left (a restart does not take
// it out of every other proxy's clusters and bring it back a moment later), and a sidecar
// whose stream broke stays an endpoint for --endpoint-grace (a network blip or a control
// plane restart changes nothing), while one that drains (SIGTERM: it half-closes its xDS
// stream) leaves EDS at once.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

const RATINGS = 'outbound|80||ratings.default.svc.cluster.local';

interface ClusterInfo {
  name: string;
  endpoints: { address: string }[];
}

describe('--service-grace and --endpoint-grace', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let front: h.Sidecar;

  beforeAll(async () => {
    dir = h.tmpDir('tandem-grace-');
    cp = await h.startControlPlane(dir, path.join(dir, 'mesh.yaml'), undefined, ['--service-grace', '3s', '--endpoint-grace', '6s']);
    front = await h.startSidecar(cp, 'front', (await h.startApp('front')).port);
  });

  afterAll(async () => {
    await h.stopAll();
    await h.closeApps();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const ratingsAt = async (): Promise<ClusterInfo | undefined> => (await h.json<ClusterInfo[]>(front.admin, '/clusters')).find((c) => c.name === RATINGS);
  const endpoints = async () => (await ratingsAt())?.endpoints.length;

  it('a draining sidecar leaves EDS at once; its service stays for the grace, with no endpoints, then leaves', async () => {
    const ratings = await h.startSidecar(cp, 'ratings', (await h.startApp('ratings')).port);
    await h.waitFor('front to see one ratings endpoint', async () => (await endpoints()) === 1);
    expect(await ratings.proc.stop('SIGTERM')).toBe(0);
    // well within the 6 s endpoint grace: only its goodbye makes it this quick
    await h.waitFor('the endpoint to go', async () => (await endpoints()) === 0, 3000, 50);
    expect(await ratingsAt()).toBeDefined();
    // back within the grace: the same cluster gets the new endpoint
    const again = await h.startSidecar(cp, 'ratings', (await h.startApp('ratings-2')).port);
    await h.waitFor('front to see the new ratings endpoint', async () => (await endpoints()) === 1);
    expect(await again.proc.stop('SIGTERM')).toBe(0);
    expect(await ratingsAt()).toBeDefined();
    await h.waitFor('the ratings cluster to leave', async () => (await ratingsAt()) === undefined, 15_000, 100);
  });

  it('a sidecar whose stream just broke (killed) stays an endpoint for the endpoint grace, then leaves', async () => {
    const ratings = await h.startSidecar(cp, 'ratings', (await h.startApp('ratings-3')).port);
    await h.waitFor('front to see one ratings endpoint', async () => (await endpoints()) === 1);
    await ratings.proc.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await endpoints()).toBe(1);
    await h.waitFor('the endpoint, then the service, to leave', async () => (await ratingsAt()) === undefined, 20_000, 100);
  });
});
