// Delta and State of the World reach the same config: the sidecar's real XdsClient in both
// modes, against one control plane (AdsServer over real gRPC, with a debounce), through a
// join, a leave, config edits (a burst of them: the last one wins) and a control-plane
// restart. What each client holds is compared whole, decoded.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config';
import { SnapshotCache } from '../control-plane/xds/cache';
import { AdsServer, adsHandlers, type StreamPolicy } from '../control-plane/xds/server';
import { adsService } from '../proto/ads';
import { nodeFromWorkload } from '../proto/node-meta';
import { TypeUrl } from '../proto/type-urls';
import { logger } from '../common/log';
import { waitFor } from '../common/wait';
import { XdsClient, type XdsProtocol } from '../sidecar/xds/client';

const REVIEWS = 'reviews.default.svc.cluster.local';
const C_V1 = `outbound|80|v1|${REVIEWS}`;
const C_V2 = `outbound|80|v2|${REVIEWS}`;
const C_RATINGS = 'outbound|80||ratings.default.svc.cluster.local';

const yaml = (v1: number, ratings = true) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: ${v1}
    - destination: {host: reviews, subset: v2}
      weight: ${100 - v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
${ratings ? `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  ports: [{number: 80, name: http}]
  endpoints: [{address: 10.0.0.9}]` : ''}`;

const config = (v1: number, ratings = true) => parseConfigText(yaml(v1, ratings), 'mesh.yaml');

// every stream is the reviews service account, allowed to be reviews
const policy: StreamPolicy = {
  register: true,
  authenticate: () => ({ spiffeId: 'spiffe://cluster.local/ns/default/sa/reviews', namespace: 'default', serviceAccount: 'reviews', services: ['reviews'], certExpires: new Date(0), serial: '01' }),
};

const quiet = logger('test', { write: () => true } as unknown as NodeJS.WritableStream);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function controlPlane(cfg: ReturnType<typeof config>, port = 0) {
  const cache = new SnapshotCache({ domain: 'cluster.local', trustDomain: 'cluster.local' }, { afterMs: 20, maxMs: 200 });
  cache.setConfig(cfg);
  const ads = new AdsServer(cache);
  const server = new grpc.Server();
  server.addService(adsService, adsHandlers(ads, policy));
  const bound = await new Promise<number>((res, rej) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const stop = () => server.forceShutdown();
  cleanups.push(stop);
  return { cache, ads, port: bound, stop };
}

function sidecar(port: number, protocol: XdsProtocol, version: string, inboundPort: number): XdsClient {
  const node = nodeFromWorkload({ id: `reviews-${protocol}-${inboundPort}`, service: 'reviews', namespace: 'default', serviceAccount: 'reviews', labels: { version }, inboundAddress: `127.0.0.1:${inboundPort}` });
  const c = new XdsClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), node, quiet, { baseMs: 50, maxMs: 200, random: () => 1 }, {}, protocol);
  c.start();
  cleanups.push(() => c.stop());
  return c;
}

/** What a client holds, decoded, as plain data to compare. */
const held = (c: XdsClient) => ({
  clusters: Object.fromEntries([...c.resources.clusters].sort()),
  endpoints: Object.fromEntries([...c.resources.endpoints].sort()),
  listeners: Object.fromEntries([...c.resources.listeners].sort()),
  routes: Object.fromEntries([...c.resources.routes].sort()),
});

const endpoints = (c: XdsClient, cluster: string) =>
  (c.resources.endpoints.get(cluster)?.endpoints ?? []).map((e) => `${e.address}:${e.port}`).sort();

const weights = (c: XdsClient) => c.resources.routes.get('outbound')?.virtualHosts.find((v) => v.name === REVIEWS)?.routes[0].clusters.map((x) => x.weight);

/** Both hold the same, and it satisfies `ok`. */
async function converged(what: string, a: XdsClient, b: XdsClient, ok: (c: XdsClient) => boolean): Promise<void> {
  await waitFor(what, () => {
    if (!ok(a) || !ok(b)) return false;
    expect(held(a)).toEqual(held(b));
    return true;
  });
}

describe('Delta and SotW clients converge to the same state', () => {
  it('through a join, a leave, edits and a control-plane restart', async () => {
    const cp = await controlPlane(config(90));
    const delta = sidecar(cp.port, 'delta', 'v1', 15101);
    const sotw = sidecar(cp.port, 'sotw', 'v1', 15102);
    expect(delta.protocol).toBe('delta');
    await converged('the first config', delta, sotw, (c) => endpoints(c, C_V1).length === 2 && c.resources.routes.has('outbound') && c.resources.clusters.has(C_RATINGS));
    expect(held(delta).clusters).not.toEqual({});
    expect([...cp.ads.streams.values()].map((s) => s.protocol).sort()).toEqual(['delta', 'sotw']);

    // a join: a v2 endpoint registers
    const joiner = sidecar(cp.port, 'delta', 'v2', 15103);
    await converged('the join', delta, sotw, (c) => endpoints(c, C_V2).includes('127.0.0.1:15103'));
    // a leave
    joiner.stop();
    await converged('the leave', delta, sotw, (c) => endpoints(c, C_V2).length === 0 && endpoints(c, C_V1).length === 2);

    // an edit: weights move and a service goes
    cp.cache.setConfig(config(50, false));
    await converged('the edit', delta, sotw, (c) => !c.resources.clusters.has(C_RATINGS) && weights(c)?.[0] === 50);
    // a burst of edits inside the debounce: the last one is what both end with
    for (const w of [10, 20, 30, 40]) cp.cache.setConfig(config(w, w % 20 === 0));
    await converged('the last edit of the burst', delta, sotw, (c) => weights(c)?.[0] === 40 && c.resources.clusters.has(C_RATINGS));

    // a restart: the control plane goes, comes back on the same port with another edit
    cp.stop();
    await waitFor('both to notice', () => !delta.connected && !sotw.connected);
    const cp2 = await controlPlane(config(70, false), cp.port);
    await converged('the state after the restart', delta, sotw, (c) => c.connected && weights(c)?.[0] === 70 && !c.resources.clusters.has(C_RATINGS) && endpoints(c, C_V1).length === 2);
    expect(cp2.ads.streams.size).toBe(2);
    // both ACKed what they hold: nothing is NACKed on either protocol
    for (const c of [delta, sotw]) for (const t of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.ClusterLoadAssignment, TypeUrl.VirtualHost]) expect(c.status.get(t)!.lastError).toBeUndefined();
    // the Delta client took its routes split (VHDS), the SotW one whole: the same table either way
    expect(delta.resources.virtualHosts.size).toBeGreaterThan(0);
    expect(sotw.resources.virtualHosts.size).toBe(0);
  });

  it('a reconnect to a control plane with the same config is sent nothing it holds, on either protocol', async () => {
    const cp = await controlPlane(config(90));
    const delta = sidecar(cp.port, 'delta', 'v1', 15111);
    const sotw = sidecar(cp.port, 'sotw', 'v1', 15112);
    await converged('the first config', delta, sotw, (c) => endpoints(c, C_V1).length === 2 && c.resources.routes.has('outbound'));
    const listenerUpdates = new Map<XdsClient, number>([[delta, 0], [sotw, 0]]);
    for (const c of [delta, sotw]) c.on('update', (t: string) => t === TypeUrl.Listener && listenerUpdates.set(c, listenerUpdates.get(c)! + 1));
    let vhdsUpdates = 0;
    delta.on('update', (t: string) => t === TypeUrl.VirtualHost && vhdsUpdates++);
    cp.stop();
    await waitFor('both to notice', () => !delta.connected && !sotw.connected);
    const cp2 = await controlPlane(config(90), cp.port);
    // each stream's listener request handled: either answered, or found to hold the set already
    const lds = () => [...cp2.ads.streams.values()].map((s) => s.types.get(TypeUrl.Listener));
    await waitFor('both listener requests handled', () => lds().length === 2 && lds().every((st) => st?.sentSet !== undefined));
    expect(lds().map((st) => st!.sentNonce)).toEqual([undefined, undefined]);
    expect([...listenerUpdates.values()]).toEqual([0, 0]);
    await converged('the same state', delta, sotw, (c) => c.connected && endpoints(c, C_V1).length === 2);
    // the virtual hosts it named on reconnecting are not sent again
    const vhds = () => [...cp2.ads.streams.values()].find((s) => s.protocol === 'delta')?.types.get(TypeUrl.VirtualHost);
    await waitFor('the VirtualHost request handled', () => vhds()?.sentSet !== undefined);
    expect(vhds()!.sentNonce).toBeUndefined();
    expect(vhdsUpdates).toBe(0);
  });
});
