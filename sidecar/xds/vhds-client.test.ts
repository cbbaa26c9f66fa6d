// The sidecar's XdsClient taking its outbound routes split (VHDS, over Delta xDS), against a
// scripted ADS server over real gRPC on 127.0.0.1: it declares the feature, subscribes to
// VirtualHost when the route configuration says vhds, and routes exactly as with the whole table.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { adsService, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse } from '../../proto/ads';
import { pack, type AnyMessage } from '../../proto/any';
import { decodeRouteConfig } from '../../proto/decode/decode';
import { VHDS_FEATURE } from '../../proto/node-meta';
import { partVersion } from '../../proto/delta-parts';
import { MAX_HELD_PARTS } from './resources';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import { logger } from '../../common/log';
import { waitFor } from '../../common/wait';
import { RouteTable } from '../runtime/config';
import { XdsClient } from './client';

type Obj = Record<string, unknown>;

const cluster = (name: string): AnyMessage => pack(TypeUrl.Cluster, { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name } });
const assignment = (name: string): AnyMessage =>
  pack(TypeUrl.ClusterLoadAssignment, { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } } }] }] });
const listener = pack(TypeUrl.Listener, {
  name: 'outbound',
  address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: pack(TypeUrl.HttpConnectionManager, {
            stat_prefix: 'outbound',
            rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'outbound' },
            http_filters: [{ name: 'envoy.filters.http.router', typed_config: pack(TypeUrl.Router, {}) }],
          }),
        },
      ],
    },
  ],
});
const vhost = (host: string, clusters: [string, number][], domains = [host, host.split('.')[0]]): Obj => ({
  name: host,
  domains,
  routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: clusters.map(([name, weight]) => ({ name, weight: { value: weight } })) } } }],
});
const VHDS = { config_source: { ads: {}, resource_api_version: 'V3' } };
const LIMIT = { max_direct_response_body_size_bytes: { value: 1 << 20 } };
const split = (vh: Obj): AnyMessage => pack(TypeUrl.VirtualHost, { ...vh, name: `outbound/${vh.name as string}` });

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function setup() {
  const requests: DeltaDiscoveryRequest[] = [];
  let write: (r: DeltaDiscoveryResponse) => void = () => undefined;
  let end = () => undefined as void;
  let streams = 0;
  const server = new grpc.Server();
  const handle = (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) => {
    write = (r) => void call.write(r);
    end = () => call.end();
    streams++;
    call.on('data', (r: DeltaDiscoveryRequest) => requests.push(r));
    call.on('error', () => undefined);
    call.sendMetadata(new grpc.Metadata());
  };
  server.addService(adsService, { StreamAggregatedResources: () => undefined, DeltaAggregatedResources: handle as grpc.handleBidiStreamingCall<unknown, unknown> });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  cleanups.push(() => server.forceShutdown());
  const quiet = logger('test', { write: () => true } as unknown as NodeJS.WritableStream);
  const client = new XdsClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { id: 'n1' }, quiet, { baseMs: 50, maxMs: 100, random: () => 1 }, {}, 'delta');
  const seen: string[] = [];
  for (const e of ['ack', 'nack']) client.on(e, (t: XdsTypeUrl) => seen.push(`${e} ${t.split('.').at(-1)}`));
  client.start();
  cleanups.push(() => client.stop());
  await waitFor('the stream', () => requests.some((r) => r.type_url === TypeUrl.Cluster));
  let nonce = 0;
  /** `version`: the response's system_version_info, a part's marker (proto/delta-parts.ts) among it */
  const send = (type: XdsTypeUrl, resources: [string, AnyMessage][], removed: string[] = [], version?: string) => {
    const n = String(++nonce);
    write({ type_url: type, nonce: n, system_version_info: version ?? `v${n}`, resources: resources.map(([name, any]) => ({ name, version: `${name}@${n}`, resource: any })), removed_resources: removed });
    return n;
  };
  const of = (type: XdsTypeUrl) => requests.filter((r) => r.type_url === type);
  return { client, send, of, seen, requests, end: () => end(), streams: () => streams };
}

const REVIEWS = 'reviews.default.svc.cluster.local';
const RATINGS = 'ratings.default.svc.cluster.local';
const clusters = ['v1', 'v2', 'ratings'];

/** CDS, EDS and LDS in, as a control plane sends them before routes. */
async function base(s: Awaited<ReturnType<typeof setup>>) {
  s.send(TypeUrl.Cluster, clusters.map((c) => [c, cluster(c)]));
  await waitFor('the EDS subscription', () => s.of(TypeUrl.ClusterLoadAssignment).length >= 1);
  s.send(TypeUrl.ClusterLoadAssignment, clusters.map((c) => [c, assignment(c)]));
  s.send(TypeUrl.Listener, [['outbound', listener]]);
  await waitFor('the RDS subscription', () => s.of(TypeUrl.RouteConfiguration).length >= 1);
}

/** Set up, with the outbound route configuration saying `vhds`, and its VirtualHost subscription made. */
async function subscribed() {
  const s = await setup();
  await base(s);
  s.send(TypeUrl.RouteConfiguration, [['outbound', pack(TypeUrl.RouteConfiguration, { name: 'outbound', ...LIMIT, vhds: VHDS })]]);
  await waitFor('the VHDS subscription', () => s.of(TypeUrl.VirtualHost)[0]);
  return s;
}

describe('XdsClient with VHDS', () => {
  it('declares the feature, subscribes to VirtualHost for a route configuration with vhds, and routes as the whole table does', async () => {
    const s = await setup();
    expect(s.of(TypeUrl.Cluster)[0].node?.client_features).toEqual([VHDS_FEATURE]);
    await base(s);
    const hosts = [vhost(REVIEWS, [['v1', 80], ['v2', 20]]), vhost(RATINGS, [['ratings', 1]]), vhost('*.example.com', [['ratings', 1]], ['*.example.com'])];
    s.send(TypeUrl.RouteConfiguration, [['outbound', pack(TypeUrl.RouteConfiguration, { name: 'outbound', ...LIMIT, vhds: VHDS })]]);
    const sub = await waitFor('the VHDS subscription', () => s.of(TypeUrl.VirtualHost)[0]);
    expect(sub.resource_names_subscribe).toEqual(['*']);
    // until the virtual hosts come, the route configuration is not in force
    expect(s.client.resources.routes.has('outbound')).toBe(false);
    s.send(TypeUrl.VirtualHost, hosts.map((vh) => [`outbound/${vh.name as string}`, split(vh)]));
    await waitFor('the routes in force', () => s.client.resources.routes.get('outbound'));
    const whole = decodeRouteConfig(pack(TypeUrl.RouteConfiguration, { name: 'outbound', ...LIMIT, virtual_hosts: hosts }));
    const composed = s.client.resources.routes.get('outbound')!;
    const byName = (rc: typeof whole) => [...rc.virtualHosts].sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(byName(composed)).toEqual(byName(whole));
    const a = new RouteTable(composed, true);
    const b = new RouteTable(whole, true);
    for (const host of [REVIEWS, 'reviews', 'ratings:80', 'x.example.com', 'nowhere']) {
      expect(a.match(host, '/', () => undefined)?.model.clusters.map((c) => c.name)).toEqual(b.match(host, '/', () => undefined)?.model.clusters.map((c) => c.name));
    }
    expect(s.seen).toContain('ack VirtualHost');

    // a removed virtual host leaves the table
    s.send(TypeUrl.VirtualHost, [], [`outbound/${RATINGS}`]);
    await waitFor('ratings gone', () => !s.client.resources.routes.get('outbound')!.virtualHosts.some((vh) => vh.name === RATINGS));
    expect(s.client.resources.virtualHosts.has(`outbound/${RATINGS}`)).toBe(false);
    expect(new RouteTable(s.client.resources.routes.get('outbound'), true).match('ratings', '/', () => undefined)).toBeUndefined();
  });

  it('subscribes again when it reconnects, naming the virtual hosts it holds', async () => {
    const s = await subscribed();
    s.send(TypeUrl.VirtualHost, [[`outbound/${REVIEWS}`, split(vhost(REVIEWS, [['v1', 100]]))]]);
    await waitFor('the routes in force', () => s.client.resources.routes.get('outbound'));
    const before = s.requests.length;
    s.end();
    const again = await waitFor('the VHDS subscription on a new stream', () => s.streams() === 2 && s.requests.slice(before).find((r) => r.type_url === TypeUrl.VirtualHost));
    expect(again.resource_names_subscribe).toEqual(['*']);
    expect(Object.keys(again.initial_resource_versions ?? {})).toEqual([`outbound/${REVIEWS}`]);
    // what it holds stays in force meanwhile
    expect(s.client.resources.routes.get('outbound')!.virtualHosts.map((vh) => vh.name)).toEqual([REVIEWS]);
  });

  it('NACKs a bad VirtualHost naming it, and the last good one keeps serving', async () => {
    const s = await subscribed();
    s.send(TypeUrl.VirtualHost, [[`outbound/${REVIEWS}`, split(vhost(REVIEWS, [['v1', 100]]))]]);
    await waitFor('the routes in force', () => s.client.resources.routes.get('outbound'));
    const bad = { ...vhost(REVIEWS, [['v1', 0]]), name: REVIEWS };
    const n = s.send(TypeUrl.VirtualHost, [[`outbound/${REVIEWS}`, split(bad)]]);
    const nack = await waitFor('the NACK', () => s.of(TypeUrl.VirtualHost).find((r) => r.response_nonce === n && r.error_detail));
    expect(nack.error_detail!.message).toMatch(new RegExp(`outbound/${REVIEWS}: routes\\[0\\]\\.route\\.weighted_clusters: total weight is 0`));
    expect(s.client.status.get(TypeUrl.VirtualHost)!.lastError).toContain(`outbound/${REVIEWS}`);
    const rt = new RouteTable(s.client.resources.routes.get('outbound'), true);
    expect(rt.match('reviews', '/', () => undefined)?.model.clusters).toEqual([expect.objectContaining({ name: 'v1', weight: 100 })]);
  });

  it('puts a virtual host naming a new cluster in force only once that cluster is warm', async () => {
    const s = await subscribed();
    s.send(TypeUrl.VirtualHost, [[`outbound/${REVIEWS}`, split(vhost(REVIEWS, [['v1', 100]]))]]);
    await waitFor('the routes in force', () => s.client.resources.routes.get('outbound'));
    // v3 is not known yet: the edit waits (make before break)
    s.send(TypeUrl.VirtualHost, [[`outbound/${REVIEWS}`, split(vhost(REVIEWS, [['v1', 50], ['v3', 50]]))]]);
    await waitFor('the ACK', () => s.seen.filter((x) => x === 'ack VirtualHost').length === 2);
    const clustersOf = () => s.client.resources.routes.get('outbound')!.virtualHosts[0].routes[0].clusters.map((c) => c.name);
    expect(clustersOf()).toEqual(['v1']);
    s.send(TypeUrl.Cluster, [['v3', cluster('v3')]]);
    await waitFor('the EDS subscription to v3', () => s.of(TypeUrl.ClusterLoadAssignment).some((r) => r.resource_names_subscribe?.includes('v3')));
    expect(clustersOf()).toEqual(['v1']);
    s.send(TypeUrl.ClusterLoadAssignment, [['v3', assignment('v3')]]);
    await waitFor('the edit in force', () => clustersOf().length === 2);
  });

  describe('a push that came in parts (proto/delta-parts.ts)', () => {
    const hosts = [vhost(REVIEWS, [['v1', 80], ['v2', 20]]), vhost(RATINGS, [['ratings', 1]]), vhost('*.example.com', [['ratings', 1]], ['*.example.com'])];
    const entry = (vh: Obj): [string, AnyMessage] => [`outbound/${vh.name as string}`, split(vh)];
    const acked = (s: Awaited<ReturnType<typeof setup>>, n: string) => waitFor(`the answer to ${n}`, () => s.of(TypeUrl.VirtualHost).find((r) => r.response_nonce === n));
    const vhostsInForce = (s: Awaited<ReturnType<typeof setup>>) => s.client.resources.routes.get('outbound')?.virtualHosts.map((vh) => vh.name).sort();

    it('ACKs each part, and puts the route configuration in force only at the last, with every virtual host', async () => {
      const s = await subscribed();
      for (const [i, vh] of hosts.slice(0, 2).entries()) {
        const n = s.send(TypeUrl.VirtualHost, [entry(vh)], [], partVersion('v9', i + 1, 3));
        expect((await acked(s, n)).error_detail).toBeUndefined();
        // held: no route table in force with only some of its virtual hosts
        expect(s.client.resources.routes.has('outbound')).toBe(false);
        expect(s.client.status.get(TypeUrl.VirtualHost)!.resourceVersions.size).toBe(0);
      }
      s.send(TypeUrl.VirtualHost, [entry(hosts[2])], [], partVersion('v9', 3, 3));
      await waitFor('the routes in force', () => s.client.resources.routes.get('outbound'));
      expect(vhostsInForce(s)).toEqual(['*.example.com', RATINGS, REVIEWS]);
      const st = s.client.status.get(TypeUrl.VirtualHost)!;
      expect(st.version).toBe('v9');
      expect([...st.resourceVersions.keys()].sort()).toEqual(hosts.map((vh) => `outbound/${vh.name as string}`).sort());
    });

    it('keeps the table in force unchanged through the parts of a later push, and applies it whole at the last', async () => {
      const s = await subscribed();
      s.send(TypeUrl.VirtualHost, hosts.map(entry));
      await waitFor('the routes in force', () => s.client.resources.routes.get('outbound'));
      const before = s.client.resources.routes.get('outbound');
      const n = s.send(TypeUrl.VirtualHost, [entry(vhost(REVIEWS, [['v2', 1]]))], [], partVersion('v10', 1, 2));
      await acked(s, n);
      expect(s.client.resources.routes.get('outbound')).toBe(before);
      s.send(TypeUrl.VirtualHost, [], [`outbound/${RATINGS}`], partVersion('v10', 2, 2));
      await waitFor('the push in force', () => vhostsInForce(s)?.length === 2);
      const rt = new RouteTable(s.client.resources.routes.get('outbound'), true);
      expect(rt.match('reviews', '/', () => undefined)?.model.clusters.map((c) => c.name)).toEqual(['v2']);
    });

    it('NACKs a bad part by name; the rest goes in force at the last part, the bad virtual host as it was, and the error stays', async () => {
      const s = await subscribed();
      s.send(TypeUrl.VirtualHost, hosts.map(entry));
      await waitFor('the routes in force', () => s.client.resources.routes.get('outbound'));
      const bad = { ...vhost(REVIEWS, [['v1', 0]]), name: REVIEWS };
      const n = s.send(TypeUrl.VirtualHost, [entry(bad)], [], partVersion('v11', 1, 2));
      expect((await acked(s, n)).error_detail?.message).toContain(`outbound/${REVIEWS}`);
      const last = s.send(TypeUrl.VirtualHost, [], [`outbound/${RATINGS}`], partVersion('v11', 2, 2));
      expect((await acked(s, last)).error_detail).toBeUndefined();
      await waitFor('the push in force', () => vhostsInForce(s)?.length === 2);
      const rt = new RouteTable(s.client.resources.routes.get('outbound'), true);
      expect(rt.match('reviews', '/', () => undefined)?.model.clusters.map((c) => c.name)).toEqual(['v1', 'v2']);
      expect(s.client.status.get(TypeUrl.VirtualHost)!.lastError).toContain(`outbound/${REVIEWS}`);
    });

    it('refuses a push that never reaches its last part once it holds MAX_HELD_PARTS of it, and what is in force stays', async () => {
      const s = await subscribed();
      s.send(TypeUrl.VirtualHost, hosts.map(entry));
      await waitFor('the routes in force', () => s.client.resources.routes.get('outbound'));
      const before = s.client.resources.routes.get('outbound');
      let n = '';
      for (let i = 1; i <= MAX_HELD_PARTS; i++) n = s.send(TypeUrl.VirtualHost, [entry(vhost(REVIEWS, [['v2', 1]]))], [], partVersion('v13', i, 1000));
      const answer = await acked(s, n);
      expect(answer.error_detail?.message).toMatch(new RegExp(`more than ${MAX_HELD_PARTS} parts`));
      expect(s.client.resources.routes.get('outbound')).toBe(before);
    });

    it('drops the parts an ended stream did not finish: the new stream names only what is in force', async () => {
      const s = await subscribed();
      s.send(TypeUrl.VirtualHost, [entry(hosts[0])], [], partVersion('v12', 1, 2));
      await waitFor('the part held', () => s.of(TypeUrl.VirtualHost).some((r) => r.response_nonce));
      const before = s.requests.length;
      s.end();
      const again = await waitFor('the VHDS subscription on a new stream', () => s.streams() === 2 && s.requests.slice(before).find((r) => r.type_url === TypeUrl.VirtualHost));
      expect(again.initial_resource_versions ?? {}).toEqual({});
      // a push on the new stream does not bring the old stream's part in with it
      s.send(TypeUrl.VirtualHost, [entry(hosts[1])]);
      await waitFor('the routes in force', () => s.client.resources.routes.get('outbound'));
      expect(vhostsInForce(s)).toEqual([RATINGS]);
    });
  });
});
