import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../config';
import type { AdsStream, DiscoveryRequest, DiscoveryResponse } from '../../proto/ads';
import { unpack } from '../../proto/any';
import { leavingNode, nodeFromWorkload, type WorkloadInfo } from '../../proto/node-meta';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import { SnapshotCache, type Graces } from './cache';
import { AdsServer, MAX_WRITES_IN_FLIGHT, type AdsEvents, type StreamPolicy } from './server';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REVIEWS = 'reviews.default.svc.cluster.local';
const C_REVIEWS = `outbound|80||${REVIEWS}`;
const C_V1 = `outbound|80|v1|${REVIEWS}`;
const C_V2 = `outbound|80|v2|${REVIEWS}`;
const C_RATINGS = 'outbound|80||ratings.default.svc.cluster.local';

const meshYaml = (v1: number, v2: number, extra = '') => `
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
      weight: ${v2}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  ports: [{number: 80, name: http}]
  endpoints: [{address: 10.0.0.9}]
${extra}`;

const config = (v1 = 90, v2 = 10, extra = '') => parseConfigText(meshYaml(v1, v2, extra), 'mesh.yaml');

class FakeStream extends EventEmitter {
  readonly sent: DiscoveryResponse[] = [];
  /** the status a refusal ended the call with (grpc-js turns an 'error' event into it) */
  status?: { code: number; details: string };
  constructor() {
    super();
    this.on('error', (e: { code: number; details: string }) => (this.status ??= { code: e.code, details: e.details }));
  }
  ended = false;
  destroyed?: Error;
  metadataSent = 0;
  sendMetadata(): void {
    this.metadataSent++;
  }
  /** a client that stopped reading: writes are not taken (their callbacks wait) */
  stalled = false;
  private readonly untaken: (() => void)[] = [];
  write(msg: DiscoveryResponse, taken?: () => void): boolean {
    this.sent.push(msg);
    if (!taken) return true;
    if (this.stalled) this.untaken.push(taken);
    else taken();
    return !this.stalled;
  }
  /** the client reads again: what it had not taken is taken, in order */
  resume(): void {
    this.stalled = false;
    for (const t of this.untaken.splice(0)) t();
  }
  end(): void {
    this.ended = true;
  }
  destroy(err?: Error): void {
    this.destroyed = err ?? new Error('destroyed');
  }
  send(req: DiscoveryRequest): void {
    this.emit('data', req);
  }
  /** responses of one type, in order */
  of(type: XdsTypeUrl): DiscoveryResponse[] {
    return this.sent.filter((r) => r.type_url === type);
  }
  last(type: XdsTypeUrl): DiscoveryResponse | undefined {
    return this.of(type).at(-1);
  }
  /**
   * What a client holds of a type after every response so far: for Listener and Cluster the
   * last response; for RouteConfiguration and ClusterLoadAssignment each resource as last
   * sent, since those responses may carry only what changed.
   */
  held(type: XdsTypeUrl): DiscoveryResponse | undefined {
    const all = this.of(type);
    if (!all.length || type === TypeUrl.Listener || type === TypeUrl.Cluster) return all.at(-1);
    const byName = new Map<string, DiscoveryResponse['resources'][number]>();
    for (const r of all) {
      for (const a of r.resources) {
        const o = unpack<Obj>(a, type);
        byName.set((o.name ?? o.cluster_name) as string, a);
      }
    }
    return { ...all.at(-1)!, resources: [...byName.values()] };
  }
  /** the responses written since the mark */
  since(mark: number): DiscoveryResponse[] {
    return this.sent.slice(mark);
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

interface Recorded {
  pushes: XdsTypeUrl[];
  nacks: { type: XdsTypeUrl; message: string }[];
  acks: { type: XdsTypeUrl; version: string }[];
  /** ACKs that ended a push caused by a change, with when that change happened */
  converged: { type: XdsTypeUrl; since: number }[];
  streams: number[];
}

async function setup(cfg = config(), maxBytesInFlight?: number, graces?: Graces) {
  const cache = new SnapshotCache({ domain: 'cluster.local', trustDomain: 'cluster.local' }, undefined, undefined, graces);
  cache.setConfig(cfg);
  await tick();
  const rec: Recorded = { pushes: [], nacks: [], acks: [], converged: [], streams: [] };
  const events: AdsEvents = {
    onPush: (t) => rec.pushes.push(t),
    onNack: (_i, t, m) => rec.nacks.push({ type: t, message: m }),
    onAck: (_i, t, v, since) => {
      rec.acks.push({ type: t, version: v });
      if (since !== undefined) rec.converged.push({ type: t, since });
    },
    onStreamsChanged: (n) => rec.streams.push(n),
  };
  const server = new AdsServer(cache, events, 0, maxBytesInFlight);
  const connect = (policy: StreamPolicy = peerPolicy('reviews')) => {
    const s = new FakeStream();
    server.handle(s as unknown as AdsStream, policy);
    return s;
  };
  return { cache, server, rec, connect };
}

// A stream whose certificate (checked by grpc-js and peerIdentity, tested elsewhere) says
// default/<sa> and allows the given services.
const peerPolicy = (sa: string, services = [sa], register = true): StreamPolicy => ({
  register,
  authenticate: () => ({ spiffeId: `spiffe://cluster.local/ns/default/sa/${sa}`, namespace: 'default', serviceAccount: sa, services, certExpires: new Date(0), serial: '01' }),
});

const infoOf = (server: AdsServer, i = 0) => [...server.streams.values()][i];

const names = (res: DiscoveryResponse | undefined, type: XdsTypeUrl) =>
  (res?.resources ?? []).map((a) => {
    const o = unpack<Obj>(a, type);
    return (o.name ?? o.cluster_name) as string;
  });

const endpointsOf = (res: DiscoveryResponse | undefined, cluster: string): string[] => {
  const cla = (res?.resources ?? []).map((a) => unpack<Obj>(a, TypeUrl.ClusterLoadAssignment)).find((c) => c.cluster_name === cluster);
  if (!cla) throw new Error(`no assignment for ${cluster}`);
  return (cla.endpoints ?? []).flatMap((l: Obj) =>
    (l.lb_endpoints ?? []).map((e: Obj) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`),
  );
};

const workload = (id: string, version: string, port: number, service = 'reviews'): WorkloadInfo => ({
  id,
  service,
  namespace: 'default',
  serviceAccount: service,
  labels: { version },
  inboundAddress: `127.0.0.1:${port}`,
});

/** ACK the last response of a type */
function ack(s: FakeStream, type: XdsTypeUrl, resourceNames: string[] = []): void {
  const r = s.last(type)!;
  s.send({ type_url: type, version_info: r.version_info, response_nonce: r.nonce, resource_names: resourceNames });
}

describe('AdsServer: versions, nonces, ACK and NACK', () => {
  it('answers a first request with the resources, a version and a nonce', async () => {
    const { server, cache, connect, rec } = await setup();
    const s = connect();
    expect(rec.streams).toEqual([1]);
    expect(s.metadataSent).toBe(1); // headers at once: the client knows it is connected
    s.send({ type_url: TypeUrl.Cluster, resource_names: [] });
    expect(s.sent).toHaveLength(1);
    const r = s.sent[0];
    expect(r.type_url).toBe(TypeUrl.Cluster);
    expect(r.version_info).toBe(cache.snapshot.served(TypeUrl.Cluster, null).version);
    expect(r.version_info).not.toBe('');
    expect(r.nonce).not.toBe('');
    expect(names(r, TypeUrl.Cluster).sort()).toEqual([C_RATINGS, C_REVIEWS, C_V1, C_V2].sort());
    const st = infoOf(server).types.get(TypeUrl.Cluster)!;
    expect(st.names).toBeNull();
    expect(st.sentVersion).toBe(r.version_info);
    expect(st.sentNonce).toBe(r.nonce);
    expect(st.ackedVersion).toBeUndefined();
    expect(rec.pushes).toEqual([TypeUrl.Cluster]);
  });

  it('gives each response a fresh nonce', async () => {
    const { connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Cluster });
    s.send({ type_url: TypeUrl.Listener });
    expect(s.sent).toHaveLength(2);
    expect(s.sent[0].nonce).not.toBe(s.sent[1].nonce);
  });

  it('records an ACK and sends nothing again', async () => {
    const { server, connect, rec } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Cluster });
    const r = s.sent[0];
    ack(s, TypeUrl.Cluster);
    expect(s.sent).toHaveLength(1);
    const st = infoOf(server).types.get(TypeUrl.Cluster)!;
    expect(st.ackedVersion).toBe(r.version_info);
    expect(st.lastNack).toBeUndefined();
    expect(rec.acks).toEqual([{ type: TypeUrl.Cluster, version: r.version_info }]);
    // a repeated ACK is just as quiet
    ack(s, TypeUrl.Cluster);
    expect(s.sent).toHaveLength(1);
  });

  it('records a NACK and does not resend the version it rejected', async () => {
    const { server, connect, rec } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Cluster });
    const r = s.sent[0];
    s.send({ type_url: TypeUrl.Cluster, version_info: '', response_nonce: r.nonce, error_detail: { code: 3, message: 'outbound|80||x: lb_policy: no' } });
    expect(s.sent).toHaveLength(1);
    const st = infoOf(server).types.get(TypeUrl.Cluster)!;
    expect(st.lastNack).toMatchObject({ version: r.version_info, message: 'outbound|80||x: lb_policy: no' });
    expect(st.ackedVersion).toBeUndefined();
    expect(rec.nacks).toEqual([{ type: TypeUrl.Cluster, message: 'outbound|80||x: lb_policy: no' }]);
    expect(rec.acks).toEqual([]);
    await tick();
    expect(s.sent).toHaveLength(1);
  });

  it('sends a new version after a NACK once the config changes', async () => {
    const { cache, connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'] });
    const r = s.sent[0];
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'], response_nonce: r.nonce, error_detail: { message: 'bad' } });
    cache.setConfig(config(50, 50));
    await tick();
    expect(s.sent).toHaveLength(2);
    expect(s.sent[1].version_info).not.toBe(r.version_info);
  });

  it('ignores a request carrying a stale nonce', async () => {
    const { server, cache, connect, rec } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'] });
    const first = s.sent[0];
    cache.setConfig(config(50, 50));
    await tick();
    expect(s.sent).toHaveLength(2);
    const second = s.sent[1];
    // the client answers the first response after the second was sent: neither an ACK nor a NACK
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'], version_info: first.version_info, response_nonce: first.nonce });
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'], response_nonce: first.nonce, error_detail: { message: 'old' } });
    const st = infoOf(server).types.get(TypeUrl.RouteConfiguration)!;
    expect(st.ackedVersion).toBeUndefined();
    expect(st.lastNack).toBeUndefined();
    expect(rec.acks).toEqual([]);
    expect(rec.nacks).toEqual([]);
    expect(s.sent).toHaveLength(2);
    // a stale request that names other resources changes nothing either (the case the guard is for)
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['reviews'], version_info: first.version_info, response_nonce: first.nonce });
    expect(st.names).toEqual(['outbound']);
    expect(s.sent).toHaveLength(2);
    // the current nonce is still accepted
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'], version_info: second.version_info, response_nonce: second.nonce });
    expect(st.ackedVersion).toBe(second.version_info);
  });

  it('pushes a change in Envoy\'s order, clusters and endpoints before listeners and routes, whatever order the client subscribed in', async () => {
    const { cache, connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'] });
    s.send({ type_url: TypeUrl.Listener });
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [C_V1, C_V2] });
    s.send({ type_url: TypeUrl.Cluster });
    const mark = s.sent.length;
    cache.setConfig(config(50, 50, '---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: details}\nspec:\n  hosts: [details.default.svc.cluster.local]\n  ports: [{number: 80, name: http}]\n  endpoints: [{address: 10.0.0.7}]\n'));
    await tick();
    const order = s.since(mark).map((r) => r.type_url);
    expect(order.filter((t, i) => order.indexOf(t) === i)).toEqual([TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.RouteConfiguration].filter((t) => order.includes(t)));
    expect(order.indexOf(TypeUrl.Cluster)).toBeLessThan(order.indexOf(TypeUrl.RouteConfiguration));
  });

  it('takes "*" as the wildcard, also beside named resources', async () => {
    const { connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Cluster, resource_names: ['*', C_V1] });
    expect(names(s.last(TypeUrl.Cluster), TypeUrl.Cluster)).toContain(C_RATINGS);
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['*', C_V1] });
    expect(names(s.last(TypeUrl.ClusterLoadAssignment), TypeUrl.ClusterLoadAssignment)).toEqual([C_V1]);
  });

  it('answers a type it does not serve with no resources, once, and ignores a request without a type', async () => {
    const { connect } = await setup();
    const s = connect();
    const SECRET = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
    s.send({ type_url: SECRET, resource_names: ['default'] });
    s.send({ type_url: SECRET, resource_names: ['default'], response_nonce: s.sent[0]?.nonce });
    s.send({});
    expect(s.sent.map((r) => [r.type_url, r.resources.length])).toEqual([[SECRET, 0]]);
  });
});

describe('AdsServer: reconnecting clients', () => {
  it('sends nothing to a client whose first request carries the current version', async () => {
    const { server, cache, connect } = await setup();
    const snap = cache.snapshot;
    const s = connect();
    const cds = snap.served(TypeUrl.Cluster, null).version;
    const rds = snap.served(TypeUrl.RouteConfiguration, ['outbound']).version;
    s.send({ type_url: TypeUrl.Cluster, version_info: cds, response_nonce: '41' });
    s.send({ type_url: TypeUrl.RouteConfiguration, version_info: rds, resource_names: ['outbound'], response_nonce: '42' });
    await tick();
    expect(s.sent).toEqual([]);
    const info = infoOf(server);
    expect(info.types.get(TypeUrl.Cluster)!.ackedVersion).toBe(cds);
    expect(info.types.get(TypeUrl.RouteConfiguration)!.ackedVersion).toBe(rds);
  });

  it('sends the current resources to a client whose first request carries an older version', async () => {
    const { cache, connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Cluster, version_info: 'old-version' });
    expect(s.sent).toHaveLength(1);
    expect(s.sent[0].version_info).toBe(cache.snapshot.served(TypeUrl.Cluster, null).version);
  });

  it('pushes a later change to a client whose reconnect was honoured', async () => {
    const { cache, connect } = await setup();
    const s = connect();
    const rds = cache.snapshot.served(TypeUrl.RouteConfiguration, ['outbound']).version;
    s.send({ type_url: TypeUrl.RouteConfiguration, version_info: rds, resource_names: ['outbound'] });
    expect(s.sent).toEqual([]);
    cache.setConfig(config(50, 50));
    await tick();
    expect(s.sent).toHaveLength(1);
    expect(s.sent[0].version_info).not.toBe(rds);
  });

  // A nonce can only be stale relative to one this stream has sent. After an honoured
  // reconnect nothing has been sent for the type, so a request carrying a nonce from the
  // previous stream (the sidecar's XdsClient keeps st.nonce across reconnects) must still
  // be acted on; otherwise its later subscription changes are silently dropped.
  it('acts on a subscription change after an honoured reconnect even if it carries a nonce from the old stream', async () => {
    const { cache, connect } = await setup();
    const s = connect();
    const eds = cache.snapshot.served(TypeUrl.ClusterLoadAssignment, [C_V1]).version;
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, version_info: eds, resource_names: [C_V1], response_nonce: '7' });
    expect(s.sent).toEqual([]);
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, version_info: eds, resource_names: [C_V1, C_V2], response_nonce: '7' });
    expect(s.sent).toHaveLength(1);
    // it holds C_V1 at the version it named: only what it lacks is sent
    expect(names(s.sent[0], TypeUrl.ClusterLoadAssignment)).toEqual([C_V2]);
    expect(s.sent[0].version_info).toBe(cache.snapshot.served(TypeUrl.ClusterLoadAssignment, [C_V1, C_V2]).version);
  });
});

describe('AdsServer: subscriptions', () => {
  it('sends EDS only for the subscribed clusters', async () => {
    const { connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [C_V1] });
    expect(names(s.last(TypeUrl.ClusterLoadAssignment), TypeUrl.ClusterLoadAssignment)).toEqual([C_V1]);
    ack(s, TypeUrl.ClusterLoadAssignment, [C_V1]);
    expect(s.sent).toHaveLength(1);
    // widening the subscription re-sends with the new set
    const last = s.last(TypeUrl.ClusterLoadAssignment)!;
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, version_info: last.version_info, response_nonce: last.nonce, resource_names: [C_V2, C_V1] });
    expect(s.sent).toHaveLength(2);
    // only what it lacks: it holds C_V1 already
    expect(names(s.sent[1], TypeUrl.ClusterLoadAssignment)).toEqual([C_V2]);
    expect(names(s.held(TypeUrl.ClusterLoadAssignment), TypeUrl.ClusterLoadAssignment)).toEqual([C_V1, C_V2]);
    // the same names in another order are no change
    ack(s, TypeUrl.ClusterLoadAssignment, [C_V1, C_V2]);
    expect(s.sent).toHaveLength(2);
  });

  it('sends RDS only for the subscribed route configurations', async () => {
    const { connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'] });
    expect(names(s.sent[0], TypeUrl.RouteConfiguration)).toEqual(['outbound']);
    const s2 = connect();
    s2.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['reviews'] });
    expect(names(s2.sent[0], TypeUrl.RouteConfiguration)).toEqual(['reviews']);
  });

  it('treats empty resource names as a wildcard for CDS and LDS only', async () => {
    const { server, connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Listener, resource_names: [] });
    expect(names(s.sent[0], TypeUrl.Listener)).toEqual(['outbound']);
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: [] });
    expect(infoOf(server).types.get(TypeUrl.RouteConfiguration)!.names).toEqual([]);
    expect(s.last(TypeUrl.RouteConfiguration)?.resources ?? []).toEqual([]);
  });

  it('serves a proxyless client the listener it names, on demand', async () => {
    const { connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Listener, resource_names: ['reviews'] });
    expect(names(s.sent[0], TypeUrl.Listener)).toEqual(['reviews']);
    expect(unpack<Obj>(s.sent[0].resources[0], TypeUrl.Listener).api_listener).toBeDefined();
  });

  it('does not push EDS when only an unsubscribed cluster changes', async () => {
    const { cache, connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [C_RATINGS] });
    ack(s, TypeUrl.ClusterLoadAssignment, [C_RATINGS]);
    const mark = s.sent.length;
    cache.addWorkload('other', { ...workload('r1', 'v1', 15106), identity: '' });
    await tick();
    expect(s.since(mark)).toEqual([]);
  });
});

describe('AdsServer: pushes on change', () => {
  async function subscribedToAll() {
    const env = await setup();
    const s = env.connect();
    s.send({ type_url: TypeUrl.Cluster });
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [C_REVIEWS, C_V1, C_V2, C_RATINGS] });
    s.send({ type_url: TypeUrl.Listener });
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'] });
    expect(s.sent.map((r) => r.type_url)).toEqual([TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration]);
    ack(s, TypeUrl.Cluster);
    ack(s, TypeUrl.ClusterLoadAssignment, [C_REVIEWS, C_V1, C_V2, C_RATINGS]);
    ack(s, TypeUrl.Listener);
    ack(s, TypeUrl.RouteConfiguration, ['outbound']);
    expect(s.sent).toHaveLength(4);
    return { ...env, s };
  }

  it('pushes only RDS when a weight changes', async () => {
    const { cache, s, rec } = await subscribedToAll();
    const mark = s.sent.length;
    const pushes = rec.pushes.length;
    cache.setConfig(config(50, 50));
    await tick();
    const pushed = s.since(mark);
    expect(pushed.map((r) => r.type_url)).toEqual([TypeUrl.RouteConfiguration]);
    const rc = unpack<Obj>(pushed[0].resources[0], TypeUrl.RouteConfiguration);
    const vh = rc.virtual_hosts.find((v: Obj) => v.name === REVIEWS);
    expect(vh.routes[0].route.weighted_clusters.clusters.map((c: Obj) => c.weight.value)).toEqual([50, 50]);
    expect(rec.pushes.slice(pushes)).toEqual([TypeUrl.RouteConfiguration]);
  });

  it('pushes nothing when the config is set again unchanged', async () => {
    const { cache, s } = await subscribedToAll();
    const mark = s.sent.length;
    cache.setConfig(config());
    await tick();
    expect(s.since(mark)).toEqual([]);
  });

  it('pushes CDS and RDS, but neither LDS nor unchanged EDS, when a service is added', async () => {
    const extra = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: details, namespace: default}
spec:
  hosts: [details.default.svc.cluster.local]
  ports: [{number: 80, name: http}]
  endpoints: [{address: 10.0.0.10}]
`;
    const { cache, s } = await subscribedToAll();
    const mark = s.sent.length;
    cache.setConfig(config(90, 10, extra));
    await tick();
    // EDS is subscribed by name: the new cluster's assignment is not sent until asked for
    expect(s.since(mark).map((r) => r.type_url).sort()).toEqual([TypeUrl.Cluster, TypeUrl.RouteConfiguration].sort());
    expect(names(s.last(TypeUrl.Cluster), TypeUrl.Cluster)).toContain('outbound|80||details.default.svc.cluster.local');
  });

  it('coalesces several changes in one tick into one push', async () => {
    const { cache, s } = await subscribedToAll();
    const mark = s.sent.length;
    cache.setConfig(config(50, 50));
    cache.setConfig(config(20, 80));
    await tick();
    const pushed = s.since(mark);
    expect(pushed).toHaveLength(1);
    const rc = unpack<Obj>(pushed[0].resources[0], TypeUrl.RouteConfiguration);
    const vh = rc.virtual_hosts.find((v: Obj) => v.name === REVIEWS);
    expect(vh.routes[0].route.weighted_clusters.clusters.map((c: Obj) => c.weight.value)).toEqual([20, 80]);
  });

  it('keeps the config in force when a new one cannot be built', async () => {
    const { cache } = await subscribedToAll();
    const before = cache.snapshot;
    const bad = { ...config(), virtualServices: null } as never;
    expect(() => cache.setConfig(bad)).toThrow();
    await tick();
    expect(cache.snapshot).toBe(before);
  });
});

describe('AdsServer: push convergence', () => {
  it('does not count the first answers to a subscription as convergence', async () => {
    const { connect, rec } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Cluster });
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'] });
    ack(s, TypeUrl.Cluster);
    ack(s, TypeUrl.RouteConfiguration, ['outbound']);
    expect(rec.acks.map((a) => a.type)).toEqual([TypeUrl.Cluster, TypeUrl.RouteConfiguration]);
    expect(rec.converged).toEqual([]);
  });

  it('times a config change from when it was made to the ACK of the push it caused', async () => {
    const { cache, connect, rec } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'] });
    ack(s, TypeUrl.RouteConfiguration, ['outbound']);
    const madeAt = Date.now() - 1234;
    cache.setConfig(config(50, 50), madeAt);
    await tick();
    expect(rec.converged).toEqual([]); // pushed, not yet acknowledged
    ack(s, TypeUrl.RouteConfiguration, ['outbound']);
    expect(rec.converged).toEqual([{ type: TypeUrl.RouteConfiguration, since: madeAt }]);
    // the next ACK (a resubscription, say) converges nothing new
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'], version_info: s.last(TypeUrl.RouteConfiguration)!.version_info, response_nonce: s.last(TypeUrl.RouteConfiguration)!.nonce });
    expect(rec.converged).toHaveLength(1);
  });

  it('times a push unacknowledged through later changes from the first of them', async () => {
    const { cache, connect, rec } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'] });
    ack(s, TypeUrl.RouteConfiguration, ['outbound']);
    const first = Date.now() - 5000;
    cache.setConfig(config(50, 50), first);
    await tick();
    cache.setConfig(config(20, 80), first + 1000);
    await tick();
    ack(s, TypeUrl.RouteConfiguration, ['outbound']);
    expect(rec.converged).toEqual([{ type: TypeUrl.RouteConfiguration, since: first }]);
  });

  it('times a push held for a client that stopped reading from the change, not from when it read again', async () => {
    const { cache, connect, rec } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'] });
    ack(s, TypeUrl.RouteConfiguration, ['outbound']);
    s.stalled = true;
    const first = Date.now() - 9000;
    for (let i = 0; i < MAX_WRITES_IN_FLIGHT + 3; i++) {
      cache.setConfig(config(10 + i, 90 - i), first + i * 1000);
      await tick();
    }
    s.resume();
    await tick();
    ack(s, TypeUrl.RouteConfiguration, ['outbound']);
    expect(rec.converged).toEqual([{ type: TypeUrl.RouteConfiguration, since: first }]);
  });

  it('times an endpoint event from the moment the sidecar registered', async () => {
    const { connect, rec } = await setup();
    const watcher = connect();
    watcher.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [C_V1] });
    ack(watcher, TypeUrl.ClusterLoadAssignment, [C_V1]);
    const before = Date.now();
    connect().send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('reviews-v1-abc', 'v1', 15106)) });
    await tick();
    ack(watcher, TypeUrl.ClusterLoadAssignment, [C_V1]);
    const eds = rec.converged.filter((c) => c.type === TypeUrl.ClusterLoadAssignment);
    expect(eds).toHaveLength(1);
    expect(eds[0].since).toBeGreaterThanOrEqual(before);
  });
});

describe('AdsServer: sidecar registration', () => {
  it("registers a sidecar's workload, shows its endpoint to others, and removes it when the stream ends", async () => {
    const { server, connect, rec } = await setup();
    const watcher = connect();
    watcher.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [C_REVIEWS, C_V1, C_V2] });
    expect(endpointsOf(watcher.last(TypeUrl.ClusterLoadAssignment), C_V1)).toEqual([]);
    ack(watcher, TypeUrl.ClusterLoadAssignment, [C_REVIEWS, C_V1, C_V2]);

    const w = workload('reviews-v1-abc', 'v1', 15106);
    const sidecar = connect();
    sidecar.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(w) });
    const info = infoOf(server, 1);
    expect(info.workload).toEqual({ ...w, identity: 'spiffe://cluster.local/ns/default/sa/reviews' });
    expect(info.registered).toBe(true);
    expect(info.node?.id).toBe('reviews-v1-abc');
    await tick();

    const eds = watcher.held(TypeUrl.ClusterLoadAssignment);
    expect(watcher.of(TypeUrl.ClusterLoadAssignment)).toHaveLength(2);
    // only the assignments that changed are sent: C_V2 has no endpoint before or after
    expect(names(watcher.last(TypeUrl.ClusterLoadAssignment), TypeUrl.ClusterLoadAssignment).sort()).toEqual([C_REVIEWS, C_V1].sort());
    expect(endpointsOf(eds, C_REVIEWS)).toEqual(['127.0.0.1:15106']);
    expect(endpointsOf(eds, C_V1)).toEqual(['127.0.0.1:15106']);
    expect(endpointsOf(eds, C_V2)).toEqual([]);
    ack(watcher, TypeUrl.ClusterLoadAssignment, [C_REVIEWS, C_V1, C_V2]);

    sidecar.emit('end');
    expect(sidecar.ended).toBe(true);
    expect(server.streams.size).toBe(1);
    expect(rec.streams).toEqual([1, 2, 1]);
    await tick();
    const after = watcher.last(TypeUrl.ClusterLoadAssignment);
    expect(watcher.of(TypeUrl.ClusterLoadAssignment)).toHaveLength(3);
    expect(endpointsOf(after, C_REVIEWS)).toEqual([]);
    expect(endpointsOf(after, C_V1)).toEqual([]);
  });

  it('takes the node only from the first request that carries one', async () => {
    const { server, connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('a', 'v1', 15106)) });
    s.send({ type_url: TypeUrl.Listener, node: nodeFromWorkload(workload('b', 'v2', 15206)) });
    expect(infoOf(server).workload?.id).toBe('a');
  });

  it('a sidecar that says goodbye (draining) leaves EDS at once; one whose stream just ends or breaks stays for the endpoint grace', async () => {
    const { cache, connect } = await setup(config(), undefined, { endpointMs: 60_000 });
    const node = (id: string, v: string, port: number) => nodeFromWorkload(workload(id, v, port));
    const leaving = connect();
    leaving.send({ type_url: TypeUrl.Cluster, node: node('a', 'v1', 15106) });
    const ended = connect();
    ended.send({ type_url: TypeUrl.Cluster, node: node('b', 'v2', 15206) });
    const broken = connect();
    broken.send({ type_url: TypeUrl.Cluster, node: node('c', 'v2', 15306) });
    await tick();
    expect(cache.snapshot.workloads.map((w) => w.id).sort()).toEqual(['a', 'b', 'c']);
    leaving.send({ type_url: TypeUrl.Cluster, node: leavingNode(node('a', 'v1', 15106)) });
    await tick();
    // gone on the goodbye itself, before the stream ends
    expect(cache.snapshot.workloads.map((w) => w.id).sort()).toEqual(['b', 'c']);
    leaving.emit('end');
    expect(leaving.ended).toBe(true);
    // an end without a goodbye is what a dropped connection looks like too
    ended.emit('end');
    broken.emit('error', new Error('reset'));
    broken.emit('close');
    await tick();
    expect(cache.snapshot.workloads.map((w) => w.id).sort()).toEqual(['b', 'c']);
  });

  it('registers nothing for a proxyless client', async () => {
    const { server, cache, connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Listener, resource_names: ['reviews'], node: { id: 'grpc-client', user_agent_name: 'grpc-node-js' } });
    expect(infoOf(server).workload).toBeUndefined();
    await tick();
    expect(cache.snapshot.workloads).toEqual([]);
  });

  it('removes the workload when the stream errors or closes, once', async () => {
    const { server, cache, connect, rec } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('a', 'v1', 15106)) });
    await tick();
    expect(cache.snapshot.workloads.map((w) => w.id)).toEqual(['a']);
    s.emit('error', new Error('reset'));
    s.emit('close');
    expect(server.streams.size).toBe(0);
    expect(rec.streams).toEqual([1, 0]);
    await tick();
    expect(cache.snapshot.workloads).toEqual([]);
  });

  it('keeps both endpoints while two sidecars of one subset are connected', async () => {
    const { connect } = await setup();
    const watcher = connect();
    watcher.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [C_V1] });
    const a = connect();
    const b = connect();
    a.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('a', 'v1', 15106)) });
    b.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('b', 'v1', 15107)) });
    await tick();
    expect(endpointsOf(watcher.last(TypeUrl.ClusterLoadAssignment), C_V1)).toEqual(['127.0.0.1:15106', '127.0.0.1:15107']);
    a.emit('end');
    await tick();
    expect(endpointsOf(watcher.last(TypeUrl.ClusterLoadAssignment), C_V1)).toEqual(['127.0.0.1:15107']);
  });
});

describe('AdsServer: who may register', () => {
  const endpointsSeen = async (connect: (p?: StreamPolicy) => FakeStream) => {
    const watcher = connect();
    watcher.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [C_REVIEWS] });
    await tick();
    return endpointsOf(watcher.last(TypeUrl.ClusterLoadAssignment), C_REVIEWS);
  };

  it('refuses a stream the port does not authenticate with the status the policy says, and registers nothing', async () => {
    const { server, connect, rec } = await setup();
    const { CallRefused } = await import('../identity/peer');
    const s = connect({
      register: true,
      authenticate: () => {
        throw new CallRefused(16, 'NO_CERTIFICATE', 'ADS on this port needs a workload certificate');
      },
    });
    expect(s.status).toEqual({ code: 16, details: 'ADS on this port needs a workload certificate' });
    s.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('x', 'v1', 15106)) });
    expect(server.streams.size).toBe(0);
    expect(rec.streams).toEqual([]);
    expect(await endpointsSeen(connect)).toEqual([]);
  });

  it('refuses, with PERMISSION_DENIED, a node whose service account differs from its certificate', async () => {
    const { server, connect } = await setup();
    const s = connect(peerPolicy('ratings', ['reviews']));
    s.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('liar', 'v1', 15106)) });
    expect(s.status?.code).toBe(7);
    expect(s.status?.details).toMatch(/service account reviews.*spiffe:\/\/cluster.local\/ns\/default\/sa\/ratings/);
    expect([...server.streams.values()].some((i) => i.registered)).toBe(false);
    expect(await endpointsSeen(connect)).toEqual([]);
  });

  it('refuses, with PERMISSION_DENIED, a service the bootstrap token did not allow', async () => {
    const { connect } = await setup();
    const s = connect(peerPolicy('reviews', ['details']));
    s.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('r', 'v1', 15106)) });
    expect(s.status?.code).toBe(7);
    expect(s.status?.details).toMatch(/claims service reviews.*allowed: details/);
    expect(await endpointsSeen(connect)).toEqual([]);
  });

  it('refuses, with INVALID_ARGUMENT, an inbound address peers could not use', async () => {
    const { connect } = await setup();
    for (const addr of ['bad host!:15006', '127.0.0.1:99999999', '127.0.0.1:0', '127.0.0.1', ':80', '[10.0.0.1]:80', `${'a'.repeat(64)}.example:80`]) {
      const s = connect();
      s.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload({ ...workload('r', 'v1', 1), inboundAddress: addr }) });
      expect(s.status?.code, addr).toBe(3);
      expect(s.status?.details, addr).toContain(`metadata.INBOUND_ADDRESS ${JSON.stringify(addr)}`);
    }
    expect(await endpointsSeen(connect)).toEqual([]);
  });

  it('serves a sidecar on a port that never registers, without making it an endpoint', async () => {
    const { server, connect } = await setup();
    const s = connect({ register: false, authenticate: () => undefined });
    s.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('plain', 'v1', 15106)) });
    expect(s.status).toBeUndefined();
    expect(s.last(TypeUrl.Cluster)?.resources.length).toBeGreaterThan(0);
    expect(infoOf(server).registered).toBe(false);
    expect(await endpointsSeen(connect)).toEqual([]);
  });

  it('refuses a stream that would grow its bookkeeping without bound', async () => {
    const { connect } = await setup();
    const many = connect();
    for (let i = 0; i < 20 && !many.status; i++) many.send({ type_url: `type.googleapis.com/x.Y${i}` });
    expect(many.status?.code).toBe(3);
    const huge = connect();
    huge.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: Array.from({ length: 50_001 }, (_, i) => `c${i}`) });
    expect(huge.status?.code).toBe(3);
  });

  it('registers the certificate identity with the endpoint, for peers to check', async () => {
    const { connect } = await setup();
    const s = connect();
    s.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('r', 'v1', 15106)) });
    const watcher = connect();
    watcher.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [C_REVIEWS] });
    await tick();
    const cla = unpack<Obj>(watcher.last(TypeUrl.ClusterLoadAssignment)!.resources[0], TypeUrl.ClusterLoadAssignment);
    const meta = cla.endpoints[0].lb_endpoints[0].metadata.filter_metadata.tandem.fields;
    expect(meta.identity).toEqual({ stringValue: 'spiffe://cluster.local/ns/default/sa/reviews' });
  });
});

/**
 * A client that acknowledges everything, as a sidecar does, subscribed to every cluster's
 * endpoints and to the outbound routes.
 */
function follow(s: FakeStream): { sync(): void } {
  const acked = new Map<XdsTypeUrl, string>();
  s.send({ type_url: TypeUrl.Cluster });
  s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: [C_REVIEWS, C_V1, C_V2] });
  s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['outbound'] });
  return {
    sync() {
      for (const type of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration] as XdsTypeUrl[]) {
        const r = s.last(type);
        if (!r || acked.get(type) === r.nonce) continue;
        acked.set(type, r.nonce);
        ack(s, type, type === TypeUrl.Cluster ? [] : type === TypeUrl.RouteConfiguration ? ['outbound'] : [C_REVIEWS, C_V1, C_V2]);
      }
    },
  };
}

/** The resources of a type as name -> bytes, to compare what a client holds with what is served. */
const contents = (res: DiscoveryResponse | undefined, type: XdsTypeUrl) =>
  new Map((res?.resources ?? []).map((a) => [names({ ...res!, resources: [a] }, type)[0], Buffer.from(a.value).toString('base64')]));

describe('AdsServer: sending only what changed', () => {
  it('sends only the endpoint sets and routes that changed, and a client folding them holds the full state through joins, leaves, edits and reconnects', async () => {
    const { cache, connect } = await setup();
    const watcher = connect();
    const client = follow(watcher);
    client.sync();
    const held = new Map<XdsTypeUrl, Map<string, string>>();
    const seen = new Map<XdsTypeUrl, number>();
    const check = async (step: string) => {
      await tick();
      client.sync();
      for (const [type, names] of [[TypeUrl.ClusterLoadAssignment, [C_REVIEWS, C_V1, C_V2]], [TypeUrl.RouteConfiguration, ['outbound']]] as const) {
        const before = held.get(type) ?? new Map<string, string>();
        const full = contents({ ...watcher.last(type)!, resources: cache.snapshot.served(type, [...names]).resources.map((r) => r.any) }, type);
        // what the client holds, folded from every response, is the whole of what is served
        expect(contents(watcher.held(type), type), step).toEqual(full);
        // and no response since carried anything the client already held
        for (const r of watcher.of(type).slice(seen.get(type) ?? 0)) {
          if (before.size) for (const [name, bytes] of contents(r, type)) expect(before.get(name), `${step}: ${name} re-sent unchanged`).not.toBe(bytes);
        }
        seen.set(type, watcher.of(type).length);
        held.set(type, full);
      }
    };
    await check('start');
    const v1 = connect();
    v1.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('reviews-v1', 'v1', 15106)) });
    await check('a v1 endpoint joins');
    expect(names(watcher.last(TypeUrl.ClusterLoadAssignment), TypeUrl.ClusterLoadAssignment)).not.toContain(C_V2);
    const v2 = connect();
    v2.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('reviews-v2', 'v2', 15206)) });
    await check('a v2 endpoint joins');
    expect(names(watcher.last(TypeUrl.ClusterLoadAssignment), TypeUrl.ClusterLoadAssignment)).not.toContain(C_V1);
    cache.setConfig(config(50, 50));
    await check('a weight is edited');
    v1.emit('end');
    await check('the v1 endpoint leaves');
    const again = connect();
    again.send({ type_url: TypeUrl.Cluster, node: nodeFromWorkload(workload('reviews-v1', 'v1', 15106)) });
    await check('it reconnects');
    // the watcher itself reconnects, naming what it holds: it is sent nothing it has
    const eds = watcher.last(TypeUrl.ClusterLoadAssignment)!.version_info;
    const back = connect();
    back.send({ type_url: TypeUrl.ClusterLoadAssignment, version_info: eds, resource_names: [C_REVIEWS, C_V1, C_V2] });
    expect(back.sent).toEqual([]);
    v2.emit('end');
    await tick();
    expect(names(back.last(TypeUrl.ClusterLoadAssignment), TypeUrl.ClusterLoadAssignment).sort()).toEqual([C_REVIEWS, C_V2].sort());
  });

  it('does not queue a version per change for a client that stops reading, and brings it to the latest state when it reads again', async () => {
    const { cache, connect } = await setup();
    const s = connect();
    const client = follow(s);
    client.sync();
    s.stalled = true;
    const mark = s.sent.length;
    for (let v1 = 1; v1 <= 60; v1++) {
      cache.setConfig(config(v1, 100 - v1));
      await tick();
      client.sync();
    }
    // at most that many responses wait on the client: not one per change
    expect(s.since(mark).length).toBeLessThanOrEqual(MAX_WRITES_IN_FLIGHT);
    s.resume();
    await tick();
    client.sync();
    expect(s.since(mark).length).toBeLessThanOrEqual(MAX_WRITES_IN_FLIGHT + 1);
    // the last response is the last change
    const latest = cache.snapshot.served(TypeUrl.RouteConfiguration, ['outbound']);
    expect(s.last(TypeUrl.RouteConfiguration)!.version_info).toBe(latest.version);
    expect(contents(s.held(TypeUrl.RouteConfiguration), TypeUrl.RouteConfiguration)).toEqual(
      contents({ ...s.last(TypeUrl.RouteConfiguration)!, resources: latest.resources.map((r) => r.any) }, TypeUrl.RouteConfiguration),
    );
  });
});

describe('AdsServer: a byte budget over all streams', () => {
  it('holds pushes past the budget until a client reads or leaves, then answers the streams that waited, in order', async () => {
    // a budget one response fills
    const { connect } = await setup(config(), 1);
    const a = connect();
    a.stalled = true;
    a.send({ type_url: TypeUrl.Cluster });
    expect(a.sent).toHaveLength(1);
    const b = connect();
    b.send({ type_url: TypeUrl.Cluster });
    const c = connect();
    c.send({ type_url: TypeUrl.Cluster });
    expect([b.sent.length, c.sent.length]).toEqual([0, 0]);
    a.resume();
    expect(b.sent).toHaveLength(1);
    expect(c.sent).toHaveLength(1);
    // a client that stops reading and then leaves frees what it held
    const d = connect();
    d.stalled = true;
    d.send({ type_url: TypeUrl.Cluster });
    const e = connect();
    e.send({ type_url: TypeUrl.Cluster });
    expect(e.sent).toHaveLength(0);
    d.emit('close');
    expect(e.sent).toHaveLength(1);
    expect(names(e.sent[0], TypeUrl.Cluster).length).toBeGreaterThan(0);
  });
});
