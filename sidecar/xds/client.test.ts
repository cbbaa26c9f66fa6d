// The sidecar's XdsClient, in both protocols, against a scripted ADS server over real gRPC on
// 127.0.0.1: what it requests, ACKs and NACKs, and what it holds after each response.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  adsService,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from '../../proto/ads';
import { pack, type AnyMessage } from '../../proto/any';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import { logger } from '../../common/log';
import { waitFor } from '../../common/wait';
import { XdsClient, type XdsProtocol } from './client';

const cluster = (name: string, lb = 'ROUND_ROBIN'): AnyMessage =>
  pack(TypeUrl.Cluster, { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name }, lb_policy: lb });
const assignment = (name: string, port: number): AnyMessage =>
  pack(TypeUrl.ClusterLoadAssignment, {
    cluster_name: name,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } } }] }],
  });

type Req = DiscoveryRequest | DeltaDiscoveryRequest;
type Res = DiscoveryResponse | DeltaDiscoveryResponse;

/** A scripted ADS server: records every request per stream, and the test writes the responses. */
class Script {
  readonly streams: { requests: Req[]; write(res: Res): void; end(): void }[] = [];
  port = 0;
  private readonly server = new grpc.Server();
  constructor(private readonly only?: 'StreamAggregatedResources') {}
  async start(): Promise<void> {
    const handle = (call: grpc.ServerDuplexStream<Req, Res>) => {
      const s = { requests: [] as Req[], write: (r: Res) => void call.write(r), end: () => call.end() };
      this.streams.push(s);
      call.on('data', (r: Req) => s.requests.push(r));
      call.on('error', () => undefined);
      call.sendMetadata(new grpc.Metadata());
    };
    const sotw = { StreamAggregatedResources: handle as grpc.handleBidiStreamingCall<unknown, unknown> };
    if (this.only) {
      // a control plane from before Delta xDS: the service has only the one method
      const { DeltaAggregatedResources: _, ...def } = adsService;
      this.server.addService(def, sotw);
    } else this.server.addService(adsService, { ...sotw, DeltaAggregatedResources: handle as grpc.handleBidiStreamingCall<unknown, unknown> });
    this.port = await new Promise<number>((res, rej) => this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  }
  stop(): void {
    this.server.forceShutdown();
  }
  last(): Script['streams'][number] {
    return this.streams.at(-1)!;
  }
  /** the requests of the last stream of one type */
  of(type: XdsTypeUrl): Req[] {
    return this.last().requests.filter((r) => r.type_url === type);
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function setup(protocol: XdsProtocol) {
  const script = new Script();
  await script.start();
  cleanups.push(() => script.stop());
  const quiet = logger('test', { write: () => true } as unknown as NodeJS.WritableStream);
  const client = new XdsClient(`127.0.0.1:${script.port}`, grpc.credentials.createInsecure(), { id: 'n1' }, quiet, { baseMs: 50, maxMs: 100, random: () => 1 }, {}, protocol);
  const seen: string[] = [];
  for (const e of ['ack', 'nack']) client.on(e, (t: XdsTypeUrl) => seen.push(`${e} ${t.split('.').at(-1)}`));
  client.start();
  cleanups.push(() => client.stop());
  await waitFor('the stream', () => script.streams.length === 1 && script.of(TypeUrl.Cluster).length === 1);
  let nonce = 0;
  /** one CDS or EDS response in the protocol the client speaks */
  const send = (type: XdsTypeUrl, resources: AnyMessage[], names: string[], removed: string[] = [], version = `v${nonce + 1}`) => {
    const n = String(++nonce);
    script.last().write(
      protocol === 'delta'
        ? { type_url: type, nonce: n, system_version_info: version, resources: resources.map((any, i) => ({ name: names[i], version: `${names[i]}@${version}`, resource: any })), removed_resources: removed }
        : { type_url: type, nonce: n, version_info: version, resources },
    );
    return n;
  };
  return { script, client, send, seen };
}

describe.each(['delta', 'sotw'] as const)('XdsClient (%s)', (protocol) => {
  it('opens the protocol it is told, CDS and LDS as wildcards', async () => {
    const { script } = await setup(protocol);
    const first = script.of(TypeUrl.Cluster)[0];
    expect(first.node?.id).toBe('n1');
    if (protocol === 'delta') expect((first as DeltaDiscoveryRequest).resource_names_subscribe).toEqual(['*']);
    else expect((first as DiscoveryRequest).resource_names ?? []).toEqual([]);
    expect(script.of(TypeUrl.Listener)).toHaveLength(1);
  });

  it('applies what it can, NACKs the rest naming the resource and field, keeps the last good one', async () => {
    const { script, client, send, seen } = await setup(protocol);
    send(TypeUrl.Cluster, [cluster('a'), cluster('b')], ['a', 'b']);
    await waitFor('the ACK', () => seen.includes('ack Cluster'));
    const n2 = send(TypeUrl.Cluster, [cluster('a', 'MAGLEV'), cluster('b', 'LOAD_BALANCING_POLICY_CONFIG')], ['a', 'b'], [], 'v2');
    await waitFor('the NACK', () => seen.includes('nack Cluster'));
    const nack = script.of(TypeUrl.Cluster).find((r) => r.response_nonce === n2 && r.error_detail)!;
    expect(nack.error_detail!.message).toMatch(/b.*lb_policy/);
    // a applied at its new policy; b kept as it was
    expect(client.resources.clusters.get('a')!.lbPolicy).toBe('MAGLEV');
    expect(client.resources.clusters.get('b')!.lbPolicy).toBe('ROUND_ROBIN');
    expect(client.status.get(TypeUrl.Cluster)!.lastError).toMatch(/lb_policy/);
  });

  it('follows CDS with EDS, and drops an endpoint set no longer referenced', async () => {
    const { script, client, send } = await setup(protocol);
    send(TypeUrl.Cluster, [cluster('a'), cluster('b')], ['a', 'b']);
    await waitFor('the EDS subscription', () => script.of(TypeUrl.ClusterLoadAssignment).length === 1);
    const sub = script.of(TypeUrl.ClusterLoadAssignment)[0];
    if (protocol === 'delta') expect((sub as DeltaDiscoveryRequest).resource_names_subscribe).toEqual(['a', 'b']);
    else expect((sub as DiscoveryRequest).resource_names).toEqual(['a', 'b']);
    send(TypeUrl.ClusterLoadAssignment, [assignment('a', 1), assignment('b', 2)], ['a', 'b']);
    await waitFor('the endpoints', () => client.resources.endpoints.size === 2);
    // b goes: a Delta server names it removed, a SotW one leaves it out
    if (protocol === 'delta') send(TypeUrl.Cluster, [], [], ['b']);
    else send(TypeUrl.Cluster, [cluster('a')], ['a']);
    await waitFor('b dropped', () => !client.resources.clusters.has('b') && !client.resources.endpoints.has('b'));
    const last = script.of(TypeUrl.ClusterLoadAssignment).at(-1)!;
    if (protocol === 'delta') expect((last as DeltaDiscoveryRequest).resource_names_unsubscribe).toEqual(['b']);
    else expect((last as DiscoveryRequest).resource_names).toEqual(['a']);
    expect([...client.resources.endpoints.keys()]).toEqual(['a']);
  });

  it('reconnects naming what it holds', async () => {
    const { script, send, seen } = await setup(protocol);
    send(TypeUrl.Cluster, [cluster('a'), cluster('b')], ['a', 'b']);
    await waitFor('the ACK', () => seen.includes('ack Cluster'));
    script.last().end();
    await waitFor('a second stream', () => script.streams.length === 2 && script.of(TypeUrl.Cluster).length === 1 && script.of(TypeUrl.ClusterLoadAssignment).length === 1);
    const cds = script.of(TypeUrl.Cluster)[0];
    const eds = script.of(TypeUrl.ClusterLoadAssignment)[0];
    if (protocol === 'delta') {
      expect((cds as DeltaDiscoveryRequest).initial_resource_versions).toEqual({ a: 'a@v1', b: 'b@v1' });
      expect((eds as DeltaDiscoveryRequest).resource_names_subscribe).toEqual(['a', 'b']);
      expect(cds.response_nonce ?? '').toBe('');
    } else {
      expect((cds as DiscoveryRequest).version_info).toBe('v1');
      expect((eds as DiscoveryRequest).resource_names).toEqual(['a', 'b']);
    }
  });
});

describe('XdsClient against a control plane without Delta xDS', () => {
  it('speaks State of the World to it after an UNIMPLEMENTED', async () => {
    const script = new Script('StreamAggregatedResources');
    await script.start();
    cleanups.push(() => script.stop());
    const quiet = logger('test', { write: () => true } as unknown as NodeJS.WritableStream);
    const client = new XdsClient(`127.0.0.1:${script.port}`, grpc.credentials.createInsecure(), { id: 'n1' }, quiet, { baseMs: 50, maxMs: 100, random: () => 1 });
    expect(client.protocol).toBe('delta');
    client.start();
    cleanups.push(() => client.stop());
    await waitFor('a SotW stream', () => script.streams.length === 1 && script.of(TypeUrl.Cluster).length === 1);
    expect(client.protocol).toBe('sotw');
    script.last().write({ type_url: TypeUrl.Cluster, nonce: '1', version_info: 'v1', resources: [cluster('a')] });
    await waitFor('the cluster', () => client.resources.clusters.has('a'));
  });
});
