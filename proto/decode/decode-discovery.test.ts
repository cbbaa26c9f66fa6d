import { describe, expect, it } from 'vitest';
import { pack } from '../any';
import { TypeUrl } from '../type-urls';
import { DecodeError, decodeCluster, decodeEndpoints } from './decode';

type Obj = Record<string, unknown>;

const NAME = 'outbound|80||api.example.com';
const lbe = (address: string, port: number, extra: Obj = {}): Obj => ({ endpoint: { address: { socket_address: { address, port_value: port } } }, ...extra });
const assignment = (eps: Obj[], extra: Obj = {}): Obj => ({ cluster_name: NAME, endpoints: [{ locality: {}, lb_endpoints: eps, ...extra }] });
const decode = (c: Obj) => decodeCluster(pack(TypeUrl.Cluster, { name: NAME, ...c }));

function refusal(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return err as DecodeError;
  }
  throw new Error('expected a DecodeError, got none');
}

describe('cluster discovery types', () => {
  it('STRICT_DNS: host names inline, with Envoy defaults (5s refresh, failures at the refresh rate, AUTO)', () => {
    const c = decode({ type: 'STRICT_DNS', load_assignment: assignment([lbe('api.example.com', 80), lbe('10.0.0.1', 8080, { load_balancing_weight: { value: 3 } })]) });
    expect(c.discovery).toEqual({
      kind: 'dns',
      logical: false,
      endpoints: [
        { address: 'api.example.com', port: 80, healthy: true, labels: {} },
        { address: '10.0.0.1', port: 8080, healthy: true, labels: {}, weight: 3 },
      ],
      refreshMs: 5000,
      failureRefreshMs: 5000,
      respectTtl: false,
      family: 'AUTO',
    });
  });

  it('STRICT_DNS: the refresh rates, TTLs and lookup family the cluster names', () => {
    const c = decode({
      type: 'STRICT_DNS',
      load_assignment: assignment([lbe('api.example.com', 80)]),
      dns_refresh_rate: { seconds: 60 },
      dns_failure_refresh_rate: { base_interval: { seconds: 2 }, max_interval: { seconds: 10 } },
      respect_dns_ttl: true,
      dns_lookup_family: 'V4_PREFERRED',
    });
    expect(c.discovery).toMatchObject({ refreshMs: 60_000, failureRefreshMs: 2000, respectTtl: true, family: 'V4_PREFERRED' });
  });

  it('LOGICAL_DNS: exactly one endpoint', () => {
    expect(decode({ type: 'LOGICAL_DNS', load_assignment: assignment([lbe('api.example.com', 80)]) }).discovery).toMatchObject({ kind: 'dns', logical: true });
    const e = refusal(() => decode({ type: 'LOGICAL_DNS', load_assignment: assignment([lbe('a.example.com', 80), lbe('b.example.com', 80)]) }));
    expect(e.field).toBe('load_assignment');
  });

  it('STATIC: IP endpoints inline', () => {
    expect(decode({ type: 'STATIC', load_assignment: assignment([lbe('10.0.0.1', 80)]) }).discovery).toEqual({
      kind: 'static',
      endpoints: [{ address: '10.0.0.1', port: 80, healthy: true, labels: {} }],
    });
    expect(refusal(() => decode({ type: 'STATIC', load_assignment: assignment([lbe('api.example.com', 80)]) })).field).toBe(
      'load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address',
    );
  });

  it('ORIGINAL_DST: the destination from a request header, with CLUSTER_PROVIDED', () => {
    const c = decode({ type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', original_dst_lb_config: { use_http_header: true, http_header_name: ':authority', upstream_port_override: { value: 8443 } } });
    expect(c.discovery).toEqual({ kind: 'originalDst', header: ':authority', portOverride: 8443 });
    expect(c.lbPolicy).toBe('CLUSTER_PROVIDED');
    expect(decode({ type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', original_dst_lb_config: { use_http_header: true } }).discovery).toEqual({ kind: 'originalDst', header: 'x-envoy-original-dst-host' });
  });

  it.each<[string, Obj, string]>([
    ['ORIGINAL_DST without use_http_header (no captured destination)', { type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' }, 'original_dst_lb_config.use_http_header'],
    ['ORIGINAL_DST without CLUSTER_PROVIDED', { type: 'ORIGINAL_DST', original_dst_lb_config: { use_http_header: true } }, 'lb_policy'],
    ['CLUSTER_PROVIDED on a DNS cluster', { type: 'STRICT_DNS', lb_policy: 'CLUSTER_PROVIDED' }, 'lb_policy'],
    ['DNS settings on an EDS cluster', { type: 'EDS', dns_refresh_rate: { seconds: 5 } }, 'dns_refresh_rate'],
    ['an inline assignment on an EDS cluster', { type: 'EDS', load_assignment: assignment([]) }, 'load_assignment'],
    ['own DNS resolvers', { type: 'STRICT_DNS', dns_resolvers: [{ socket_address: { address: '8.8.8.8', port_value: 53 } }] }, 'dns_resolvers'],
    ['another assignment name', { type: 'STRICT_DNS', load_assignment: { cluster_name: 'other', endpoints: [] } }, 'load_assignment.cluster_name'],
    ['a priority', { type: 'STRICT_DNS', load_assignment: assignment([lbe('a.example.com', 80)], { priority: 1 }) }, 'load_assignment.endpoints[0].priority'],
    ['a weight of 0', { type: 'STRICT_DNS', load_assignment: assignment([lbe('a.example.com', 80, { load_balancing_weight: { value: 0 } })]) }, 'load_assignment.endpoints[0].lb_endpoints[0].load_balancing_weight'],
    ['a name that is no host name', { type: 'STRICT_DNS', load_assignment: assignment([lbe('a b', 80)]) }, 'load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address'],
    ['a custom cluster type', { cluster_type: { name: 'envoy.clusters.dynamic_forward_proxy' } }, 'cluster_type'],
  ])('refuses %s, naming the field', (_what, c, field) => {
    const e = refusal(() => decode(c));
    expect(e.resource).toBe(NAME);
    expect(e.field).toBe(field);
  });
});

describe('EDS endpoints', () => {
  it('carries load-balancing weights, and flattens localities of priority 0', () => {
    const cla = { cluster_name: NAME, endpoints: [{ locality: { region: 'eu' }, lb_endpoints: [lbe('10.0.0.1', 80, { load_balancing_weight: { value: 3 } })] }, { locality: { region: 'us' }, lb_endpoints: [lbe('10.0.0.2', 80)] }] };
    expect(decodeEndpoints(pack(TypeUrl.ClusterLoadAssignment, cla)).endpoints).toEqual([
      { address: '10.0.0.1', port: 80, healthy: true, labels: {}, weight: 3 },
      { address: '10.0.0.2', port: 80, healthy: true, labels: {} },
    ]);
  });

  it('takes a host name (a sidecar advertised with --advertise HOST), refuses what is none', () => {
    expect(decodeEndpoints(pack(TypeUrl.ClusterLoadAssignment, assignment([lbe('pod-1.example.com', 15006)]))).endpoints[0].address).toBe('pod-1.example.com');
    const e = refusal(() => decodeEndpoints(pack(TypeUrl.ClusterLoadAssignment, assignment([lbe('pod 1', 80)]))));
    expect(e.field).toBe('endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address');
  });
});
