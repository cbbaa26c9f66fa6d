// VHDS (vhds.ts) served over real gRPC on 127.0.0.1: a Delta client that declares the
// feature gets its outbound routes split, every other client the whole table as before.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../config';
import {
  adsService,
  type AdsClientStream,
  type DeltaClientStream,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryResponse,
  type XdsNode,
} from '../../proto/ads';
import { unpack } from '../../proto/any';
import { nodeFromWorkload, withVhds } from '../../proto/node-meta';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import { waitFor } from '../../common/wait';
import { syncz } from '../syncz';
import { SnapshotCache } from './cache';
import { AdsServer, adsHandlers, type StreamPolicy } from './server';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fqdn = (s: string) => `${s}.default.svc.cluster.local`;
const entry = (s: string) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${s}, namespace: default}
spec:
  hosts: [${fqdn(s)}]
  ports: [{number: 80, name: http}]
  endpoints: [{address: 10.0.0.9, labels: {version: v1}}, {address: 10.0.0.10, labels: {version: v2}}]`;
const mesh = (services: string[], weight = 50, extra = '') => `
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
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: ${weight}}
    - {destination: {host: reviews, subset: v2}, weight: ${100 - weight}}
${services.map(entry).join('\n')}
${extra}`;
const config = (services = ['reviews', 'ratings', 'details'], weight = 50, extra = '') => parseConfigText(mesh(services, weight, extra), 'mesh.yaml');

const policy: StreamPolicy = {
  register: true,
  authenticate: () => ({ spiffeId: 'spiffe://cluster.local/ns/default/sa/reviews', namespace: 'default', serviceAccount: 'reviews', services: ['reviews'], certExpires: new Date(0), serial: '01' }),
};
const node = (id: string): XdsNode => nodeFromWorkload({ id, service: 'reviews', namespace: 'default', serviceAccount: 'reviews', labels: { version: 'v1' }, inboundAddress: `127.0.0.1:${15000 + id.length}` });

const ADS_CLIENT = grpc.makeGenericClientConstructor(adsService, 'AggregatedDiscoveryService');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

class DeltaPeer {
  readonly responses: DeltaDiscoveryResponse[] = [];
  readonly stream: DeltaClientStream;
  constructor(client: grpc.Client) {
    this.stream = (client as unknown as { DeltaAggregatedResources(): DeltaClientStream }).DeltaAggregatedResources();
    this.stream.on('data', (r: DeltaDiscoveryResponse) => {
      this.responses.push(r);
      // ACK as the sidecar does
      this.stream.write({ type_url: r.type_url, response_nonce: r.nonce });
    });
    this.stream.on('error', () => undefined);
  }
  send(req: DeltaDiscoveryRequest): void {
    this.stream.write(req);
  }
  of(type: XdsTypeUrl): DeltaDiscoveryResponse[] {
    return this.responses.filter((r) => r.type_url === type);
  }
  nth(type: XdsTypeUrl, n: number): Promise<DeltaDiscoveryResponse> {
    return waitFor(`response ${n} of ${type}`, () => this.of(type)[n - 1]);
  }
}

async function setup() {
  const cache = new SnapshotCache({ domain: 'cluster.local', trustDomain: 'cluster.local' });
  cache.setConfig(config());
  const ads = new AdsServer(cache);
  const server = new grpc.Server();
  server.addService(adsService, adsHandlers(ads, policy));
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  cleanups.push(() => server.forceShutdown());
  const client = () => {
    const c = new ADS_CLIENT(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanups.push(() => c.close());
    return c;
  };
  const delta = () => {
    const p = new DeltaPeer(client());
    cleanups.push(() => p.stream.cancel());
    return p;
  };
  const sotw = () => {
    const s = (client() as unknown as { StreamAggregatedResources(): AdsClientStream }).StreamAggregatedResources();
    const responses: DiscoveryResponse[] = [];
    s.on('data', (r: DiscoveryResponse) => responses.push(r));
    s.on('error', () => undefined);
    cleanups.push(() => s.cancel());
    return { s, responses };
  };
  return { cache, ads, delta, sotw };
}

const names = (r: DeltaDiscoveryResponse) => (r.resources ?? []).map((x) => x.name).sort();
const routeOf = (bytes: DeltaDiscoveryResponse | DiscoveryResponse) => {
  const any = 'version_info' in bytes ? bytes.resources[0] : bytes.resources![0].resource!;
  return unpack<Obj>(any, TypeUrl.RouteConfiguration);
};
const weights = (r: DeltaDiscoveryResponse) => {
  const vh = unpack<Obj>(r.resources![0].resource!, TypeUrl.VirtualHost);
  return vh.routes[0].route.weighted_clusters.clusters.map((c: Obj) => c.weight.value);
};

describe('VHDS', () => {
  it('gives a Delta client that declares it outbound with vhds and one VirtualHost per service; an edit sends only its virtual host', async () => {
    const { delta, cache, ads } = await setup();
    const p = delta();
    p.send({ type_url: TypeUrl.RouteConfiguration, node: withVhds(node('a')), resource_names_subscribe: ['outbound'] });
    const rds = await p.nth(TypeUrl.RouteConfiguration, 1);
    const rc = routeOf(rds);
    expect(rc.vhds).toEqual({ config_source: { ads: {}, resource_api_version: 'V3' } });
    expect(rc.virtual_hosts ?? []).toEqual([]);
    // the other fields of the whole table stay
    expect(rc.max_direct_response_body_size_bytes.value).toBe(1024 * 1024);
    p.send({ type_url: TypeUrl.VirtualHost, resource_names_subscribe: ['*'] });
    const first = await p.nth(TypeUrl.VirtualHost, 1);
    expect(names(first)).toEqual(['details', 'ratings', 'reviews'].map((s) => `outbound/${fqdn(s)}`));
    for (const x of first.resources!) expect(unpack<Obj>(x.resource!, TypeUrl.VirtualHost).name).toBe(x.name);

    cache.setConfig(config(undefined, 80));
    const edit = await p.nth(TypeUrl.VirtualHost, 2);
    expect(names(edit)).toEqual([`outbound/${fqdn('reviews')}`]);
    expect(weights(edit)).toEqual([80, 20]);
    expect(edit.removed_resources ?? []).toEqual([]);
    // the route configuration itself did not change: nothing more of RDS
    await waitFor('the VHDS ACK', () => syncz(ads)[0]?.types.VHDS?.status === 'SYNCED');
    expect(p.of(TypeUrl.RouteConfiguration)).toHaveLength(1);
    expect(Object.keys(syncz(ads)[0].types).sort()).toEqual(['RDS', 'VHDS']);
  });

  it('sends a service that left in removed_resources, and a new one alone', async () => {
    const { delta, cache } = await setup();
    const p = delta();
    p.send({ type_url: TypeUrl.VirtualHost, node: withVhds(node('a')), resource_names_subscribe: ['*'] });
    await p.nth(TypeUrl.VirtualHost, 1);
    cache.setConfig(config(['reviews', 'ratings']));
    const gone = await p.nth(TypeUrl.VirtualHost, 2);
    expect(gone.removed_resources).toEqual([`outbound/${fqdn('details')}`]);
    expect(gone.resources ?? []).toEqual([]);
    cache.setConfig(config(['reviews', 'ratings', 'payments']));
    const added = await p.nth(TypeUrl.VirtualHost, 3);
    expect(names(added)).toEqual([`outbound/${fqdn('payments')}`]);
    expect(added.removed_resources ?? []).toEqual([]);
  });

  it('sends a reconnecting client that names the virtual hosts it holds only those that changed', async () => {
    const { delta, cache } = await setup();
    const p = delta();
    p.send({ type_url: TypeUrl.VirtualHost, node: withVhds(node('a')), resource_names_subscribe: ['*'] });
    const first = await p.nth(TypeUrl.VirtualHost, 1);
    const held = Object.fromEntries(first.resources!.map((x) => [x.name, x.version]));
    p.stream.cancel();
    cache.setConfig(config(undefined, 80));
    const again = delta();
    again.send({ type_url: TypeUrl.VirtualHost, node: withVhds(node('a')), resource_names_subscribe: ['*'], initial_resource_versions: held });
    const r = await again.nth(TypeUrl.VirtualHost, 1);
    expect(names(r)).toEqual([`outbound/${fqdn('reviews')}`]);
    expect(weights(r)).toEqual([80, 20]);
  });

  it('gives every other client the whole table, exactly as before: Delta without the feature, State of the World with or without it', async () => {
    const { delta, sotw, cache } = await setup();
    const whole = cache.snapshot.served(TypeUrl.RouteConfiguration, ['outbound']).resources[0];
    expect((whole.obj.virtual_hosts as Obj[]).map((vh) => vh.name)).toEqual(['details', 'ratings', 'reviews'].map(fqdn));
    const plain = delta();
    plain.send({ type_url: TypeUrl.RouteConfiguration, node: node('b'), resource_names_subscribe: ['outbound'] });
    const r = await plain.nth(TypeUrl.RouteConfiguration, 1);
    expect(Buffer.from(r.resources![0].resource!.value)).toEqual(Buffer.from(whole.any.value));
    for (const n of [node('c'), withVhds(node('d'))]) {
      const s = sotw();
      s.s.write({ type_url: TypeUrl.RouteConfiguration, node: n, resource_names: ['outbound'] });
      const res = await waitFor('the SotW response', () => s.responses[0]);
      expect(Buffer.from(res.resources[0].value)).toEqual(Buffer.from(whole.any.value));
      expect(routeOf(res).vhds).toBeFalsy();
    }
  });

  it('checks the split form at load: a VirtualHost is held to its route configuration\'s direct-response bound', () => {
    const cache = new SnapshotCache({ domain: 'cluster.local', trustDomain: 'cluster.local' });
    // 10 kB: over Envoy's default of 4 kB, within the 1 MiB the route configuration allows
    const body = 'x'.repeat(10_000);
    const extra = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - directResponse: {status: 200, body: {string: ${body}}}`;
    expect(() => cache.setConfig(config(undefined, 50, extra))).not.toThrow();
    const vh = cache.snapshot.served(TypeUrl.VirtualHost, null, undefined, undefined, 'vhds').resources.find((r) => r.name === `outbound/${fqdn('ratings')}`)!;
    expect(JSON.stringify(vh.obj)).toContain(body);
  });
});
