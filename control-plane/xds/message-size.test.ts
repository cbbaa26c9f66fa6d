import { describe, expect, it } from 'vitest';
import { adsService } from '../../proto/ads';
import { MAX_XDS_MESSAGE_BYTES } from '../../proto/limits';
import { TypeUrl } from '../../proto/type-urls';
import { parseConfigText } from '../config/load';
import type { MeshConfig } from '../model/types';
import { SnapshotCache } from './cache';
import { checkMessageSizes, ENVELOPE_BYTES, OversizedConfigError, resourceBytes, vhdsSizes } from './message-size';
import { splitRoutes } from './vhds';
import { Snapshot } from './snapshot';
import { crowdYaml } from '../../e2e/fixtures/crowd';

const OPTS = { domain: 'cluster.local', trustDomain: 'cluster.local' };

const YAML = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
`;

const workload = { id: 'r1', service: 'reviews', namespace: 'default', serviceAccount: 'reviews', labels: { version: 'v1' }, inboundAddress: '127.0.0.1:15006', identity: 'spiffe://cluster.local/ns/default/sa/reviews' };

/** The config with `n` more prefix routes in front of reviews' catch-all. */
function withRoutes(base: MeshConfig, n: number): MeshConfig {
  const c = structuredClone(base);
  const vs = c.virtualServices.find((v) => v.name === 'reviews')!;
  const [first, ...rest] = vs.http;
  const many = Array.from({ length: n }, (_, i) => ({ ...structuredClone(first), match: [{ ...first.match[0], uri: { prefix: `/route-${i}` } }] }));
  vs.http = [...many, ...rest];
  return c;
}

const caught = (f: () => void): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
};

describe('every xDS response a config makes is measured against the sidecars’ message limit', () => {
  it('measures no less than gRPC will count: the whole encoded DiscoveryResponse, envelope included', () => {
    const snap = new Snapshot(1, parseConfigText(YAML, 'mesh.yaml'), [workload], OPTS);
    const seen = new Set<string>();
    for (const { type, resources } of snap.responses()) {
      seen.add(type);
      const bytes = resources.reduce((sum, r) => sum + resourceBytes(r.any), 0);
      const message = adsService.StreamAggregatedResources.responseSerialize({
        version_info: 'abcdef012345',
        type_url: type,
        nonce: String(Number.MAX_SAFE_INTEGER),
        resources: resources.map((r) => r.any),
      });
      expect(message.length).toBeGreaterThan(bytes);
      expect(message.length).toBeLessThanOrEqual(bytes + ENVELOPE_BYTES);
    }
    // what a sidecar subscribes to: every type
    expect(seen.size).toBe(4);
  });

  it('measures the routes split (VHDS) from the whole table exactly as a Delta response carries them', () => {
    const snap = new Snapshot(1, withRoutes(parseConfigText(YAML, 'mesh.yaml'), 200), [workload], OPTS);
    const whole = snap.served(TypeUrl.RouteConfiguration, ['outbound'], workload);
    const sizes = vhdsSizes(whole.resources[0]);
    const vhosts = [...splitRoutes(new Map([['outbound', whole.resources[0]]])).vhosts.values()];
    expect(sizes.map((v) => v.name)).toEqual(vhosts.map((r) => r.name));
    const serialized = (resources: { name: string; version: string; resource: (typeof vhosts)[number]['any'] }[]) =>
      adsService.DeltaAggregatedResources.responseSerialize({ type_url: '', nonce: '', resources }).length;
    const one = (r: (typeof vhosts)[number]) => serialized([{ name: r.name, version: 'x'.repeat(22), resource: r.any }]) - serialized([]);
    sizes.forEach((v, i) => expect(v.bytes).toBe(one(vhosts[i])));
  });

  it('names the type, the resource and what fills it when one response is over the limit', () => {
    const snap = new Snapshot(1, withRoutes(parseConfigText(YAML, 'mesh.yaml'), 200), [workload], OPTS);
    const err = caught(() => checkMessageSizes(snap, 20_000));
    expect(err).toBeInstanceOf(OversizedConfigError);
    const over = (err as OversizedConfigError).responses;
    // the table whole, and its largest virtual host alone (VHDS): a VirtualHost push goes in
    // parts, but no part is smaller than one virtual host
    expect(over.map((o) => o.type)).toEqual([TypeUrl.RouteConfiguration, TypeUrl.VirtualHost]);
    expect(over[1].count).toBe(1);
    expect(over[1].largest.map((v) => v.name)).toEqual(['outbound/reviews.default.svc.cluster.local']);
    expect((err as Error).message).toMatch(/a VirtualHost response to a sidecar \(one virtual host alone\) would be [\d,]+ bytes, over the 20,000-byte limit .*; VirtualHost "outbound\/reviews\.default\.svc\.cluster\.local" [\d,]+ bytes/);
    expect(over[0].bytes).toBeGreaterThan(20_000 - ENVELOPE_BYTES);
    expect((err as Error).message).toMatch(/RouteConfiguration response .* over the 20,000-byte limit/);
    expect((err as Error).message).toMatch(/"outbound" [\d,]+ bytes \(2 virtual hosts, the most routes in reviews\.default\.svc\.cluster\.local \(201\), ratings/);
    // and under a limit it fits, nothing is said
    expect(() => checkMessageSizes(snap, 1_000_000)).not.toThrow();
  });

  it('names the largest of many resources in a list response', () => {
    const snap = new Snapshot(1, parseConfigText(YAML, 'mesh.yaml'), [workload], OPTS);
    const err = caught(() => checkMessageSizes(snap, ENVELOPE_BYTES + 100)) as OversizedConfigError;
    const clusters = err.responses.find((o) => o.type === TypeUrl.Cluster)!;
    expect(clusters.count).toBeGreaterThan(1);
    expect(clusters.largest[0].bytes).toBeGreaterThanOrEqual(clusters.largest[1].bytes);
    expect(err.message).toMatch(/Cluster response .*the largest of its \d+ resources: "outbound\|/);
  });

  it('accepts a whole table between ~2.5 and 4 MiB of many small virtual hosts, whose split form is over 4 MiB (it goes in parts)', () => {
    const big = parseConfigText(crowdYaml(), 'mesh.yaml');
    const cache = new SnapshotCache(OPTS);
    cache.setConfig(big);
    const whole = cache.snapshot.served(TypeUrl.RouteConfiguration, ['outbound']).resources[0];
    const wholeBytes = resourceBytes(whole.any);
    expect(wholeBytes).toBeGreaterThan(2.5 * 2 ** 20);
    expect(wholeBytes).toBeLessThan(MAX_XDS_MESSAGE_BYTES - ENVELOPE_BYTES);
    // what was measured as one first VirtualHost response before the split, and refused
    const split = vhdsSizes(whole);
    expect(split).toHaveLength(6_000);
    expect(split.reduce((sum, v) => sum + v.bytes, 0)).toBeGreaterThan(MAX_XDS_MESSAGE_BYTES);
    expect(cache.snapshot.config).toBe(big);
  }, 60_000);

  it('refuses at load, keeping the config in force, a route table over 4 MiB (40,000 routes)', () => {
    const cache = new SnapshotCache(OPTS);
    const good = parseConfigText(YAML, 'mesh.yaml');
    cache.setConfig(good);
    const err = caught(() => cache.setConfig(withRoutes(good, 40_000)));
    expect(err).toBeInstanceOf(OversizedConfigError);
    expect((err as OversizedConfigError).responses[0].bytes).toBeGreaterThan(MAX_XDS_MESSAGE_BYTES);
    expect((err as Error).message).toMatch(/RouteConfiguration "outbound"/);
    // and its one virtual host, over the limit alone, is named for the sidecars that take it split
    expect((err as OversizedConfigError).responses[1]).toMatchObject({ type: TypeUrl.VirtualHost, count: 1, largest: [{ name: 'outbound/reviews.default.svc.cluster.local' }] });
    expect(cache.snapshot.config).toBe(good);
    expect(cache.snapshot.generation).toBe(1);
  }, 30_000);
});
