// The route match and split fields Istio's VirtualService translates to: case_sensitive,
// treat_missing_header_as_empty, presence, the port condition, relative weights and a
// weighted cluster's host rewrite.
import { describe, expect, it } from 'vitest';
import { pack } from '../any';
import { TypeUrl } from '../type-urls';
import { toStruct } from '../struct';
import { DecodeError, decodeRouteConfig } from './decode';

type Obj = Record<string, unknown>;

const decodeRoute = (route: Obj) =>
  decodeRouteConfig(pack(TypeUrl.RouteConfiguration, { name: 'outbound', virtual_hosts: [{ name: 'reviews', domains: ['reviews'], routes: [route] }] })).virtualHosts[0].routes[0];

const withMatch = (match: Obj, over: Obj = {}): Obj => ({ name: 'r', match, route: { cluster: 'c' }, ...over });

function decodeErrorOf(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return err as DecodeError;
  }
  throw new Error('expected a DecodeError, got none');
}

describe('decodeRouteConfig: matching', () => {
  it('reads case_sensitive: false as a case-insensitive path, and its absence as case-sensitive', () => {
    expect(decodeRoute(withMatch({ prefix: '/API', case_sensitive: { value: false } })).ignoreCase).toBe(true);
    expect(decodeRoute(withMatch({ prefix: '/API', case_sensitive: { value: true } })).ignoreCase).toBeUndefined();
    expect(decodeRoute(withMatch({ prefix: '/API' })).ignoreCase).toBeUndefined();
  });

  it('reads inverted presence and treat_missing_header_as_empty', () => {
    const r = decodeRoute(
      withMatch({
        prefix: '/',
        headers: [
          { name: 'x-canary', present_match: true, invert_match: true },
          { name: 'x-debug', string_match: { exact: '1' }, invert_match: true, treat_missing_header_as_empty: true },
          { name: ':method', string_match: { exact: 'GET' } },
        ],
      }),
    );
    expect(r.headers).toEqual([
      { name: 'x-canary', match: { kind: 'present' }, invert: true },
      { name: 'x-debug', match: { kind: 'exact', value: '1' }, invert: true, missingAsEmpty: true },
      { name: ':method', match: { kind: 'exact', value: 'GET' }, invert: false },
    ]);
  });

  it('reads query parameter presence and exact values', () => {
    const r = decodeRoute(withMatch({ prefix: '/', query_parameters: [{ name: 'flag', present_match: true }, { name: 'v', string_match: { exact: '' } }] }));
    expect(r.query).toEqual([
      { name: 'flag', match: { kind: 'present' }, invert: false },
      { name: 'v', match: { kind: 'exact', value: '' }, invert: false },
    ]);
  });

  it('reads the port a route is for from its tandem metadata', () => {
    const r = decodeRoute(withMatch({ prefix: '/' }, { metadata: { filter_metadata: { tandem: toStruct({ port: 9080 }) } } }));
    expect(r.port).toBe(9080);
    expect(decodeRoute(withMatch({ prefix: '/' })).port).toBeUndefined();
  });

  it('refuses a port that is no port, naming the field', () => {
    for (const port of [0, 70000, 80.5, '80']) {
      const e = decodeErrorOf(() => decodeRoute(withMatch({ prefix: '/' }, { metadata: { filter_metadata: { tandem: toStruct({ port }) } } })));
      expect(e.field).toBe('virtual_hosts[0].routes[0].metadata.filter_metadata.tandem.port');
    }
  });
});

describe('decodeRouteConfig: weighted clusters', () => {
  const weighted = (clusters: Obj[]) => decodeRoute({ name: 'r', match: { prefix: '/' }, route: { weighted_clusters: { clusters } } });

  it('takes weights as relative shares, whatever they add up to', () => {
    expect(weighted([{ name: 'a', weight: { value: 1 } }, { name: 'b', weight: { value: 3 } }]).clusters.map((c) => [c.name, c.weight])).toEqual([
      ['a', 1],
      ['b', 3],
    ]);
  });

  it('refuses weights that overflow the uint32 Envoy sums them in', () => {
    const e = decodeErrorOf(() => weighted([{ name: 'a', weight: { value: 4294967295 } }, { name: 'b', weight: { value: 1 } }]));
    expect(e.field).toBe('virtual_hosts[0].routes[0].route.weighted_clusters');
  });

  it("reads a cluster's host_rewrite_literal", () => {
    const r = weighted([{ name: 'a', weight: { value: 1 }, host_rewrite_literal: 'a.example' }, { name: 'b', weight: { value: 1 } }]);
    expect(r.clusters.map((c) => c.hostRewrite)).toEqual(['a.example', undefined]);
  });
});
