import { describe, expect, it } from 'vitest';
import { encode, pack, unpack, ProtoShapeError } from './any';
import { TypeUrl } from './type-urls';
import { fromStruct, toStruct } from './struct';

describe('Any packing', () => {
  it('round-trips a cluster', () => {
    const any = pack(TypeUrl.Cluster, {
      name: 'outbound|80||reviews',
      type: 'EDS',
      connect_timeout: { seconds: 1 },
      eds_cluster_config: { eds_config: { ads: {} }, service_name: 'outbound|80||reviews' },
    });
    expect(any.type_url).toBe(TypeUrl.Cluster);
    const c = unpack<{ name: string; type: string; connect_timeout: { seconds: number } }>(any, TypeUrl.Cluster);
    expect(c.name).toBe('outbound|80||reviews');
    expect(c.type).toBe('EDS');
    expect(c.connect_timeout.seconds).toBe(1);
  });

  it('rejects an unknown field, naming it', () => {
    expect(() => encode('envoy.config.cluster.v3.Cluster', { name: 'x', eds_cluster_config: { sevice_name: 'y' } })).toThrow(
      /eds_cluster_config\.sevice_name: unknown field/,
    );
  });

  it('rejects an unknown enum name, naming the field', () => {
    expect(() => encode('envoy.config.cluster.v3.Cluster', { name: 'x', lb_policy: 'ROUNDROBIN' })).toThrow(ProtoShapeError);
    expect(() => encode('envoy.config.cluster.v3.Cluster', { name: 'x', lb_policy: 'ROUNDROBIN' })).toThrow(/lb_policy/);
  });

  it('rejects an Any of the wrong type on unpack', () => {
    const any = pack(TypeUrl.Listener, { name: 'l' });
    expect(() => unpack(any, TypeUrl.Cluster)).toThrow(/expected type.googleapis.com\/envoy.config.cluster.v3.Cluster/);
  });

  it('converts Struct both ways', () => {
    const s = toStruct({ a: 'x', b: 2, c: { d: true }, e: ['f'] });
    expect(fromStruct(s)).toEqual({ a: 'x', b: 2, c: { d: true }, e: ['f'] });
  });
});

describe('Struct inside messages', () => {
  it('survives encode/decode of a Node', async () => {
    const { nodeFromWorkload, workloadFromNode } = await import('./node-meta');
    const { decode } = await import('./any');
    const w = { id: 'a', service: 'reviews', namespace: 'default', serviceAccount: 'reviews', labels: { version: 'v1' }, inboundAddress: '127.0.0.1:1' };
    const node = decode('envoy.config.core.v3.Node', encode('envoy.config.core.v3.Node', nodeFromWorkload(w)));
    expect(workloadFromNode(node)).toEqual(w);
  });

  it('rejects snake_case Value fields (protobufjs predefines them camelCase)', () => {
    expect(() => encode('envoy.config.core.v3.Node', { metadata: { fields: { a: { string_value: 'x' } } } })).toThrow(/metadata\.fields\[a\]\.string_value: unknown field/);
  });
});
