// A Delta push larger than the clients' message limit goes in parts (delta-split.ts), with a
// small limit injected into the AdsServer so that a few dozen virtual hosts make several parts.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../config';
import { adsService, type DeltaDiscoveryRequest, type DeltaDiscoveryResponse, type DeltaStream } from '../../proto/ads';
import { pack } from '../../proto/any';
import { morePartsFollow } from '../../proto/delta-parts';
import { nodeFromWorkload, withVhds } from '../../proto/node-meta';
import { TypeUrl } from '../../proto/type-urls';
import { syncz } from '../syncz';
import { SnapshotCache } from './cache';
import { splitDelta } from './delta-split';
import { ENVELOPE_BYTES } from './message-size';
import { ServedSet, type Resource } from './served-set';
import { AdsServer, MAX_WRITES_IN_FLIGHT, type StreamPolicy } from './server';

/** what the sidecars would take in one message, here: a few virtual hosts */
const LIMIT = ENVELOPE_BYTES + 2_500;
const SERVICES = 40;

const fqdn = (s: string) => `${s}.default.svc.cluster.local`;
const services = (n: number) => Array.from({ length: n }, (_, i) => `svc-${String(i).padStart(3, '0')}`);
const mesh = (names: string[], path = '/') =>
  names
    .map(
      (s) => `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${s}, namespace: default}
spec:
  hosts: [${fqdn(s)}]
  ports: [{number: 80, name: http}]
  endpoints: [{address: 10.0.0.9}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${s}, namespace: default}
spec:
  hosts: [${fqdn(s)}]
  http:
  - match: [{uri: {prefix: ${s === 'svc-000' ? path : '/'}}}]
    route: [{destination: {host: ${fqdn(s)}}}]`,
    )
    .join('\n');
const config = (n = SERVICES, path?: string) => parseConfigText(mesh(services(n), path), 'mesh.yaml');

const policy: StreamPolicy = {
  register: false,
  authenticate: () => ({ spiffeId: 'spiffe://cluster.local/ns/default/sa/front', namespace: 'default', serviceAccount: 'front', services: ['front'], certExpires: new Date(0), serial: '01' }),
};
const node = withVhds(nodeFromWorkload({ id: 'f1', service: 'front', namespace: 'default', serviceAccount: 'front', labels: {}, inboundAddress: '127.0.0.1:15006' }));

/** A Delta stream whose responses are kept as the bytes gRPC would write, read back. */
class FakeDelta extends EventEmitter {
  readonly sent: DeltaDiscoveryResponse[] = [];
  readonly sizes: number[] = [];
  stalled = false;
  private readonly untaken: (() => void)[] = [];
  sendMetadata(): void {}
  write(msg: DeltaDiscoveryResponse, taken?: () => void): boolean {
    const bytes = adsService.DeltaAggregatedResources.responseSerialize(msg);
    this.sizes.push(bytes.length);
    this.sent.push(adsService.DeltaAggregatedResources.responseDeserialize(bytes));
    if (this.stalled) this.untaken.push(() => taken?.());
    else taken?.();
    return !this.stalled;
  }
  resume(): void {
    this.stalled = false;
    for (const t of this.untaken.splice(0)) t();
  }
  end(): void {}
  send(req: DeltaDiscoveryRequest): void {
    this.emit('data', req);
  }
  of(type: string): DeltaDiscoveryResponse[] {
    return this.sent.filter((r) => r.type_url === type);
  }
}

function setup(limit = LIMIT) {
  const cache = new SnapshotCache({ domain: 'cluster.local', trustDomain: 'cluster.local' });
  cache.setConfig(config());
  const ads = new AdsServer(cache, {}, 0, undefined, limit);
  const connect = () => {
    const s = new FakeDelta();
    ads.handle(s as unknown as DeltaStream, policy, 'delta');
    return s;
  };
  return { cache, ads, connect };
}

const names = (rs: DeltaDiscoveryResponse[]) => rs.flatMap((r) => (r.resources ?? []).map((x) => x.name));
const vhdsSet = (cache: SnapshotCache) => cache.snapshot.served(TypeUrl.VirtualHost, null, undefined, undefined, 'vhds');
const vhdsOf = (ads: AdsServer) => syncz(ads)[0].types.VHDS;

describe('a Delta push over the message limit goes in parts', () => {
  it('cuts the first VirtualHost response into parts each within the limit, whose union is the set; every part but the last is marked', () => {
    const { cache, connect } = setup();
    const s = connect();
    s.send({ type_url: TypeUrl.VirtualHost, node, resource_names_subscribe: ['*'] });
    const parts = s.of(TypeUrl.VirtualHost);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    const sizes = s.sizes.slice(-parts.length);
    for (const b of sizes) expect(b).toBeLessThanOrEqual(LIMIT);
    // filled, not one virtual host a message
    expect(Math.max(...sizes)).toBeGreaterThan(LIMIT / 2);
    const set = vhdsSet(cache);
    expect(names(parts)).toHaveLength(set.resources.length);
    expect(new Set(names(parts))).toEqual(new Set(set.resources.map((r) => r.name)));
    expect(set.resources).toHaveLength(SERVICES);
    expect(parts.map((p) => morePartsFollow(p.system_version_info))).toEqual(parts.map((_, i) => i < parts.length - 1));
    expect(parts.at(-1)!.system_version_info).toBe(set.version);
    expect(parts[0].system_version_info).toBe(`${set.version} (part 1 of ${parts.length})`);
    expect(new Set(parts.map((p) => p.nonce)).size).toBe(parts.length);
  });

  it('sends a push within the limit as one unmarked response, as before', async () => {
    const { cache, connect } = setup();
    const s = connect();
    s.send({ type_url: TypeUrl.VirtualHost, node, resource_names_subscribe: ['*'] });
    const first = s.of(TypeUrl.VirtualHost).length;
    for (const p of s.of(TypeUrl.VirtualHost)) s.send({ type_url: TypeUrl.VirtualHost, response_nonce: p.nonce });
    cache.setConfig(config(SERVICES, '/edited'));
    await new Promise<void>((r) => setImmediate(r));
    const edit = s.of(TypeUrl.VirtualHost).slice(first);
    expect(edit).toHaveLength(1);
    expect(names(edit)).toEqual([`outbound/${fqdn('svc-000')}`]);
    expect(edit[0].system_version_info).toBe(vhdsSet(cache).version);
    expect(morePartsFollow(edit[0].system_version_info)).toBe(false);
  });

  it('counts the push as taken at its last part’s ACK, and as refused at a NACK of any part', () => {
    const { ads, connect } = setup();
    const ok = connect();
    ok.send({ type_url: TypeUrl.VirtualHost, node, resource_names_subscribe: ['*'] });
    const parts = ok.of(TypeUrl.VirtualHost);
    for (const p of parts.slice(0, -1)) ok.send({ type_url: TypeUrl.VirtualHost, response_nonce: p.nonce });
    expect(vhdsOf(ads).status).toBe('STALE');
    ok.send({ type_url: TypeUrl.VirtualHost, response_nonce: parts.at(-1)!.nonce });
    expect(vhdsOf(ads).status).toBe('SYNCED');
    ok.emit('close');

    const bad = connect();
    bad.send({ type_url: TypeUrl.VirtualHost, node, resource_names_subscribe: ['*'] });
    const again = bad.of(TypeUrl.VirtualHost);
    bad.send({ type_url: TypeUrl.VirtualHost, response_nonce: again[0].nonce, error_detail: { code: 3, message: 'outbound/x: bad' } });
    for (const p of again.slice(1)) bad.send({ type_url: TypeUrl.VirtualHost, response_nonce: p.nonce });
    expect(vhdsOf(ads).status).toBe('NACK');
    expect(vhdsOf(ads).lastNack?.message).toBe('outbound/x: bad');
  });

  it('admits a push’s parts together, each counted as a response in flight: held while the stream has no room for them, sent whole when it has', () => {
    const { ads, connect } = setup(ENVELOPE_BYTES + 1_000);
    const s = connect();
    s.stalled = true;
    // one small response not taken yet: the VirtualHost push, more parts than the room left, waits whole
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, node, resource_names_subscribe: [`outbound|80||${fqdn('svc-000')}`] });
    expect(s.sent).toHaveLength(1);
    s.send({ type_url: TypeUrl.VirtualHost, resource_names_subscribe: ['*'] });
    expect(s.of(TypeUrl.VirtualHost)).toHaveLength(0);
    s.resume();
    const parts = s.of(TypeUrl.VirtualHost);
    expect(parts.length).toBeGreaterThan(MAX_WRITES_IN_FLIGHT);
    expect(morePartsFollow(parts.at(-1)!.system_version_info)).toBe(false);
    expect(new Set(names(parts)).size).toBe(SERVICES);
    // with nothing in flight, all of a push's parts go, each a response in flight until taken
    const other = connect();
    other.stalled = true;
    other.send({ type_url: TypeUrl.VirtualHost, node, resource_names_subscribe: ['*'] });
    expect(other.of(TypeUrl.VirtualHost)).toHaveLength(parts.length);
    expect([...ads.streams.values()][1].inFlight).toBe(parts.length);
    expect(ads.bytesPending).toBeGreaterThan(0);
  });
});

describe('splitDelta', () => {
  const resource = (name: string, bytes: number): Resource => {
    const obj = { name, domains: ['x'.repeat(bytes)] };
    return { name, obj, any: pack(TypeUrl.VirtualHost, obj) };
  };

  it('keeps every part within the budget, removed names included, and the runs of resources are the same arrays for every stream', () => {
    const set = new ServedSet('v1', Array.from({ length: 12 }, (_, i) => resource(`outbound/h${i}`, 300)));
    const removed = Array.from({ length: 40 }, (_, i) => `outbound/gone-${'y'.repeat(40)}-${i}`);
    const budget = 1_000;
    const parts = splitDelta(set, set.resources, removed, budget);
    for (const p of parts) {
      const bytes = adsService.DeltaAggregatedResources.responseSerialize({ type_url: '', nonce: '', removed_resources: p.removed, resourcesWire: set.deltaWire(p.resources) } as DeltaDiscoveryResponse).length;
      expect(bytes).toBeLessThanOrEqual(budget);
      expect(p.resources.length + p.removed.length).toBeGreaterThan(0);
    }
    expect(parts.flatMap((p) => p.resources)).toEqual(set.resources);
    expect(parts.flatMap((p) => p.removed)).toEqual(removed);
    const again = splitDelta(set, set.resources, [], budget);
    again.forEach((p, i) => expect(p.resources).toBe(parts[i].resources));
    // a list that fits is sent as itself, whose encoding is shared with every stream sent it whole
    expect(splitDelta(set, set.resources, [], 1e9).map((p) => p.resources)).toEqual([set.resources]);
    expect(splitDelta(set, set.resources, [], 1e9)[0].resources).toBe(set.resources);
    expect(splitDelta(set, [], [], budget)).toEqual([{ resources: [], removed: [] }]);
  });
});
