// Delta xDS served over a real gRPC server on 127.0.0.1 to a real gRPC client speaking
// DeltaAggregatedResources by hand, so each request and response is the test's to see.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../config';
import { adsService, type DeltaClientStream, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse } from '../../proto/ads';
import { unpack } from '../../proto/any';
import { nodeFromWorkload, type WorkloadInfo } from '../../proto/node-meta';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import { waitFor } from '../../common/wait';
import { CallRefused } from '../identity/peer';
import { syncz } from '../syncz';
import { SnapshotCache } from './cache';
import { AdsServer, adsHandlers, MAX_WRITES_IN_FLIGHT, type StreamPolicy } from './server';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REVIEWS = 'reviews.default.svc.cluster.local';
const C_REVIEWS = `outbound|80||${REVIEWS}`;
const C_V1 = `outbound|80|v1|${REVIEWS}`;
const C_V2 = `outbound|80|v2|${REVIEWS}`;
const C_RATINGS = 'outbound|80||ratings.default.svc.cluster.local';

const yaml = (ratings = true, extra = '') => `
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
  endpoints: [{address: 10.0.0.9}]` : ''}
${extra}`;

const config = (ratings = true, extra = '') => parseConfigText(yaml(ratings, extra), 'mesh.yaml');

const peerPolicy = (sa: string, services = [sa]): StreamPolicy => ({
  register: true,
  authenticate: () => ({ spiffeId: `spiffe://cluster.local/ns/default/sa/${sa}`, namespace: 'default', serviceAccount: sa, services, certExpires: new Date(0), serial: '01' }),
});

const workload = (id: string, version: string, port: number, service = 'reviews'): WorkloadInfo => ({
  id,
  service,
  namespace: 'default',
  serviceAccount: service,
  labels: { version },
  inboundAddress: `127.0.0.1:${port}`,
});

const ADS_CLIENT = grpc.makeGenericClientConstructor(adsService, 'AggregatedDiscoveryService');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** One Delta stream: every response, and what the client holds per type after them. */
class DeltaPeer {
  readonly responses: DeltaDiscoveryResponse[] = [];
  readonly held = new Map<string, Map<string, string>>();
  error?: grpc.ServiceError;
  readonly stream: DeltaClientStream;
  constructor(client: grpc.Client) {
    this.stream = (client as unknown as { DeltaAggregatedResources(): DeltaClientStream }).DeltaAggregatedResources();
    this.stream.on('data', (r: DeltaDiscoveryResponse) => {
      this.responses.push(r);
      const h = this.held.get(r.type_url) ?? new Map<string, string>();
      for (const x of r.resources ?? []) h.set(x.name, x.version);
      for (const n of r.removed_resources ?? []) h.delete(n);
      this.held.set(r.type_url, h);
    });
    this.stream.on('error', (e: grpc.ServiceError) => (this.error = e));
  }
  send(req: DeltaDiscoveryRequest): void {
    this.stream.write(req);
  }
  of(type: XdsTypeUrl): DeltaDiscoveryResponse[] {
    return this.responses.filter((r) => r.type_url === type);
  }
  /** waits for the n-th response of a type (1-based) */
  async nth(type: XdsTypeUrl, n: number): Promise<DeltaDiscoveryResponse> {
    return waitFor(`response ${n} of ${type}`, () => this.of(type)[n - 1]);
  }
  ack(r: DeltaDiscoveryResponse): void {
    this.send({ type_url: r.type_url, response_nonce: r.nonce });
  }
  names(type: XdsTypeUrl): string[] {
    return [...(this.held.get(type)?.keys() ?? [])].sort();
  }
}

async function setup(opts: { policy?: StreamPolicy; warmupMs?: number; maxBytesInFlight?: number; cfg?: ReturnType<typeof config> } = {}) {
  const cache = new SnapshotCache({ domain: 'cluster.local', trustDomain: 'cluster.local' });
  cache.setConfig(opts.cfg ?? config());
  const rec = { acks: [] as { type: XdsTypeUrl; version: string }[], nacks: [] as string[], streams: [] as number[] };
  const ads = new AdsServer(
    cache,
    {
      onAck: (_i, type, version) => rec.acks.push({ type, version }),
      onNack: (_i, _t, m) => rec.nacks.push(m),
      onStreamsChanged: (n) => rec.streams.push(n),
    },
    opts.warmupMs ?? 0,
    opts.maxBytesInFlight,
  );
  const server = new grpc.Server();
  server.addService(adsService, adsHandlers(ads, opts.policy ?? peerPolicy('reviews')));
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  cleanups.push(() => server.forceShutdown());
  const connect = () => {
    const client = new ADS_CLIENT(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanups.push(() => client.close());
    const peer = new DeltaPeer(client);
    cleanups.push(() => peer.stream.cancel());
    return peer;
  };
  return { cache, ads, rec, connect };
}

const endpointsOf = (r: DeltaDiscoveryResponse, cluster: string): string[] => {
  const x = (r.resources ?? []).find((y) => y.name === cluster);
  if (!x?.resource) throw new Error(`no ${cluster} in the response`);
  const cla = unpack<Obj>(x.resource, TypeUrl.ClusterLoadAssignment);
  return (cla.endpoints ?? []).flatMap((l: Obj) => (l.lb_endpoints ?? []).map((e: Obj) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`));
};

describe('Delta xDS server', () => {
  it('serves the wildcard, each resource named and versioned, and records the ACK', async () => {
    const { connect, rec, ads } = await setup();
    const p = connect();
    p.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('r1', 'v1', 15106)) });
    const r = await p.nth(TypeUrl.Cluster, 1);
    expect(r.nonce).toBeTruthy();
    expect(r.system_version_info).toBeTruthy();
    expect(r.resources!.map((x) => x.name).sort()).toEqual([C_RATINGS, C_REVIEWS, C_V1, C_V2].sort());
    for (const x of r.resources!) {
      expect(x.version).toMatch(/^[\w-]{22}$/);
      expect(unpack<Obj>(x.resource!, TypeUrl.Cluster).name).toBe(x.name);
    }
    p.ack(r);
    await waitFor('the ACK', () => rec.acks.length === 1);
    expect(rec.acks[0]).toEqual({ type: TypeUrl.Cluster, version: r.system_version_info });
    const entry = syncz(ads)[0];
    expect(entry.protocol).toBe('delta');
    expect(entry.types.CDS.status).toBe('SYNCED');
    // the stream registered its workload like a SotW one: it is an endpoint of reviews v1
    p.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: [C_V1] });
    expect(endpointsOf(await p.nth(TypeUrl.ClusterLoadAssignment, 1), C_V1)).toEqual(['127.0.0.1:15106']);
  });

  it('answers an explicit "*" and a first wildcard request with nothing in the mesh alike', async () => {
    const { connect } = await setup({ cfg: parseConfigText('', 'empty.yaml') });
    const p = connect();
    p.send({ type_url: TypeUrl.Listener, resource_names_subscribe: ['*'] });
    p.send({ type_url: TypeUrl.Cluster });
    expect((await p.nth(TypeUrl.Cluster, 1)).resources ?? []).toEqual([]);
    expect((await p.nth(TypeUrl.Listener, 1)).resources!.map((x) => x.name)).toEqual(['outbound']);
  });

  it('sends only what is subscribed, and after an unsubscribe no longer that name', async () => {
    const { connect } = await setup();
    const p = connect();
    p.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: [C_V1, C_V2] });
    expect((await p.nth(TypeUrl.ClusterLoadAssignment, 1)).resources!.map((x) => x.name).sort()).toEqual([C_V1, C_V2]);
    p.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: [C_REVIEWS] });
    // the new name only: the others are held already
    expect((await p.nth(TypeUrl.ClusterLoadAssignment, 2)).resources!.map((x) => x.name)).toEqual([C_REVIEWS]);
    p.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_unsubscribe: [C_V1] });
    // both subsets gain an endpoint: the response names v2 and the whole service, never v1
    const joiner = connect();
    joiner.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('j1', 'v1', 15107)) });
    const joiner2 = connect();
    joiner2.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('j2', 'v2', 15108)) });
    const lastWith = (name: string) => p.of(TypeUrl.ClusterLoadAssignment).filter((r) => r.resources?.some((x) => x.name === name)).at(-1)!;
    await waitFor('both joins', () => endpointsOf(lastWith(C_REVIEWS), C_REVIEWS).length === 2 && endpointsOf(lastWith(C_V2), C_V2).length === 1);
    const after = p.of(TypeUrl.ClusterLoadAssignment).slice(2);
    expect(after.flatMap((r) => (r.resources ?? []).map((x) => x.name))).not.toContain(C_V1);
    expect(p.names(TypeUrl.ClusterLoadAssignment)).toEqual([C_REVIEWS, C_V1, C_V2].sort()); // v1 is the client's to drop
  });

  it('names a resource that went in removed_resources and resends nothing unchanged', async () => {
    const { connect, cache } = await setup();
    const p = connect();
    p.send({ type_url: TypeUrl.Cluster });
    p.ack(await p.nth(TypeUrl.Cluster, 1));
    cache.setConfig(config(false));
    const r = await p.nth(TypeUrl.Cluster, 2);
    expect(r.removed_resources).toEqual([C_RATINGS]);
    expect(r.resources ?? []).toEqual([]);
    expect(p.names(TypeUrl.Cluster)).toEqual([C_REVIEWS, C_V1, C_V2].sort());
    // a name subscribed that does not exist is said to be absent
    p.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: ['outbound|80||nowhere.default.svc.cluster.local'] });
    expect((await p.nth(TypeUrl.ClusterLoadAssignment, 1)).removed_resources).toEqual(['outbound|80||nowhere.default.svc.cluster.local']);
  });

  it('honours initial_resource_versions: a reconnecting client is sent only what differs', async () => {
    const { connect, cache } = await setup();
    const first = connect();
    first.send({ type_url: TypeUrl.Cluster });
    first.ack(await first.nth(TypeUrl.Cluster, 1));
    const held = Object.fromEntries(first.held.get(TypeUrl.Cluster)!);
    first.stream.cancel();
    const again = connect();
    again.send({ type_url: TypeUrl.Cluster, initial_resource_versions: held });
    // a request answered after it: a CDS response, had there been one, would come first
    again.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: [C_V1] });
    await again.nth(TypeUrl.ClusterLoadAssignment, 1);
    expect(again.of(TypeUrl.Cluster)).toEqual([]);
    // one version stale, one unknown to the server: that one resent, the other removed
    const third = connect();
    third.send({ type_url: TypeUrl.Cluster, initial_resource_versions: { ...held, [C_V1]: 'old', 'outbound|80||gone.default.svc.cluster.local': 'x' } });
    const r = await third.nth(TypeUrl.Cluster, 1);
    expect(r.resources!.map((x) => x.name)).toEqual([C_V1]);
    expect(r.removed_resources).toEqual(['outbound|80||gone.default.svc.cluster.local']);
    // the reconnected client is still sent later changes
    cache.setConfig(config(false));
    expect((await again.nth(TypeUrl.Cluster, 1)).removed_resources).toEqual([C_RATINGS]);
  });

  it('records a NACK with its message and resends everything with the next change', async () => {
    const { connect, rec, cache, ads } = await setup();
    const p = connect();
    p.send({ type_url: TypeUrl.Cluster });
    const r1 = await p.nth(TypeUrl.Cluster, 1);
    p.send({ type_url: TypeUrl.Cluster, response_nonce: r1.nonce, error_detail: { code: 3, message: 'clusters[0].lb_policy: no' } });
    await waitFor('the NACK', () => rec.nacks.length === 1);
    expect(rec.nacks).toEqual(['clusters[0].lb_policy: no']);
    expect(rec.acks).toEqual([]);
    expect(syncz(ads)[0].types.CDS.status).toBe('NACK');
    cache.setConfig(config(false));
    const r2 = await p.nth(TypeUrl.Cluster, 2);
    expect(r2.resources!.map((x) => x.name).sort()).toEqual([C_REVIEWS, C_V1, C_V2].sort());
    expect(r2.removed_resources).toEqual([C_RATINGS]);
    p.ack(r2);
    await waitFor('the ACK', () => rec.acks.length === 1);
    expect(syncz(ads)[0].types.CDS.status).toBe('SYNCED');
  });

  it('refuses with a real gRPC status, as the SotW stream does', async () => {
    const { connect, rec } = await setup({
      policy: {
        register: true,
        authenticate: () => {
          throw new CallRefused(grpc.status.UNAUTHENTICATED, 'NO_CERTIFICATE', 'ADS on this port needs a workload certificate');
        },
      },
    });
    const p = connect();
    p.send({ type_url: TypeUrl.Cluster });
    await waitFor('the refusal', () => p.error);
    expect(p.error!.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(p.error!.details).toBe('ADS on this port needs a workload certificate');
    expect(rec.streams).toEqual([]);
  });

  it('refuses a node its certificate does not allow, and one naming too many resources', async () => {
    const { connect, ads } = await setup({ policy: peerPolicy('ratings', ['reviews']) });
    const liar = connect();
    liar.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('liar', 'v1', 15106)) });
    await waitFor('the refusal', () => liar.error);
    expect(liar.error!.code).toBe(grpc.status.PERMISSION_DENIED);
    const huge = connect();
    huge.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: Array.from({ length: 50_001 }, (_, i) => `c${i}`) });
    await waitFor('the refusal', () => huge.error);
    expect(huge.error!.code).toBe(grpc.status.INVALID_ARGUMENT);
    // nor may subscriptions pile up over many requests
    const creeping = connect();
    for (let i = 0; i < 3; i++) creeping.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: Array.from({ length: 20_000 }, (_, k) => `c${i}-${k}`) });
    await waitFor('the refusal', () => creeping.error);
    expect(creeping.error!.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(creeping.error!.details).toMatch(/at most 50000 resources of a type/);
    expect([...ads.streams.values()].some((s) => s.registered)).toBe(false);
  });

  it('a client that stops reading pins a bounded number of responses, then is sent the latest state', async () => {
    // clusters large enough that the client's HTTP/2 window fills and writes stop completing
    const many = (n: number, tag: string) =>
      Array.from({ length: 200 }, (_, i) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s${i}, namespace: default}
spec:
  hosts: [s${i}-${'x'.repeat(60)}.example.com]
  ports: [{number: ${n}, name: http}]
  resolution: STATIC
  endpoints: [{address: 10.0.${Math.floor(i / 250)}.${i % 250}, labels: {tag: ${tag}}}]`).join('\n');
    const { connect, cache, ads } = await setup();
    const p = connect();
    p.send({ type_url: TypeUrl.Cluster });
    await p.nth(TypeUrl.Cluster, 1);
    p.stream.pause();
    let peakInFlight = 0;
    let peakBytes = 0;
    for (let i = 0; i < 40; i++) {
      cache.setConfig(config(true, many(1000 + i, `t${i}`)));
      await new Promise((r) => setImmediate(r));
      const info = [...ads.streams.values()][0];
      peakInFlight = Math.max(peakInFlight, info.inFlight);
      peakBytes = Math.max(peakBytes, ads.bytesPending);
    }
    const info = [...ads.streams.values()][0];
    expect(info.owed).toBeDefined(); // the stall was real: pushes were held back, not queued
    expect(peakInFlight).toBeLessThanOrEqual(MAX_WRITES_IN_FLIGHT);
    // each response is under 200 kB here: at most MAX_WRITES_IN_FLIGHT of them are pinned
    expect(peakBytes).toBeLessThan(MAX_WRITES_IN_FLIGHT * 200_000);
    p.stream.resume();
    // read again, the client ends up with the last config's clusters (port 1039), whatever it skipped
    await waitFor('the latest state', () => p.names(TypeUrl.Cluster).includes(`outbound|1039||s0-${'x'.repeat(60)}.example.com`) && !p.names(TypeUrl.Cluster).includes(`outbound|1038||s0-${'x'.repeat(60)}.example.com`));
    expect(p.responses.length).toBeLessThan(40);
    expect(ads.bytesPending).toBe(0);
  });

  it('holds a reconnecting client through the warm-up, a new one not', async () => {
    const { connect, ads } = await setup({ warmupMs: 60_000 });
    const fresh = connect();
    fresh.send({ type_url: TypeUrl.Cluster });
    const r = await fresh.nth(TypeUrl.Cluster, 1);
    const back = connect();
    back.send({ type_url: TypeUrl.Cluster, initial_resource_versions: { [C_V1]: 'old' } });
    const held = await waitFor('the stream held', () => [...ads.streams.values()].find((s) => s.heldUntil !== undefined && s.types.has(TypeUrl.Cluster)));
    // held before anything was pushed to it: the hold is set where the answer would have been written
    expect(held.types.get(TypeUrl.Cluster)!.sentNonce).toBeUndefined();
    expect(back.of(TypeUrl.Cluster)).toEqual([]);
    expect(r.resources!.length).toBe(4);
  });
});
