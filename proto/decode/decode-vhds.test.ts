// VHDS decoding: a RouteConfiguration with vhds, and VirtualHost resources decoded by the same
// virtual-host decoder as the inline ones, their errors naming the resource and the field.
import { describe, expect, it } from 'vitest';
import { pack } from '../any';
import { TypeUrl } from '../type-urls';
import { DecodeError, decodeRouteConfig, decodeVirtualHost } from './decode';

const vhost = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  domains: ['reviews', 'reviews.default.svc.cluster.local'],
  routes: [{ match: { prefix: '/' }, route: { cluster: 'outbound|80||reviews.default.svc.cluster.local' } }],
  ...extra,
});
const caught = (f: () => unknown): DecodeError => {
  try {
    f();
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
  throw new Error('no DecodeError');
};

describe('VHDS decoding', () => {
  it('decodes a VirtualHost as the same virtual host inline, known by its host', () => {
    const split = decodeVirtualHost(pack(TypeUrl.VirtualHost, vhost('outbound/reviews.default.svc.cluster.local')));
    const whole = decodeRouteConfig(pack(TypeUrl.RouteConfiguration, { name: 'outbound', virtual_hosts: [vhost('reviews.default.svc.cluster.local')] }));
    expect(split.name).toBe('outbound/reviews.default.svc.cluster.local');
    expect(split.routeConfigName).toBe('outbound');
    expect(split.vhost).toEqual(whole.virtualHosts[0]);
  });

  it('names the resource and the field of what it refuses', () => {
    expect(caught(() => decodeVirtualHost(pack(TypeUrl.VirtualHost, vhost('reviews')))).message).toBe('reviews: name: must be <route configuration name>/<host>');
    expect(caught(() => decodeVirtualHost(pack(TypeUrl.VirtualHost, vhost('outbound/x', { domains: [] })))).message).toBe('outbound/x: domains: must not be empty');
    const body = { routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'x'.repeat(5000) } } }] };
    // bounded by its route configuration's max_direct_response_body_size_bytes, Envoy's 4096 when unknown
    expect(caught(() => decodeVirtualHost(pack(TypeUrl.VirtualHost, vhost('outbound/x', body)))).field).toBe('routes[0].direct_response.body');
    expect(decodeVirtualHost(pack(TypeUrl.VirtualHost, vhost('outbound/x', body)), (rc) => (rc === 'outbound' ? 1 << 20 : 0)).vhost.routes).toHaveLength(1);
  });

  it('reads vhds on a route configuration, over ADS only', () => {
    const rc = decodeRouteConfig(pack(TypeUrl.RouteConfiguration, { name: 'outbound', max_direct_response_body_size_bytes: { value: 1 << 20 }, vhds: { config_source: { ads: {}, resource_api_version: 'V3' } } }));
    expect(rc).toEqual({ name: 'outbound', virtualHosts: [], vhds: { maxDirectBody: 1 << 20 } });
    const err = caught(() => decodeRouteConfig(pack(TypeUrl.RouteConfiguration, { name: 'outbound', vhds: { config_source: { path_config_source: { path: '/x' }, resource_api_version: 'V3' } } })));
    expect(err.message).toBe('outbound: vhds.config_source: only ads is supported');
  });
});
