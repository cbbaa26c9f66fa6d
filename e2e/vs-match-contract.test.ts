// What the control plane translates from VirtualService matches, weights, wildcard hosts
// and delegation, the sidecar decodes and routes by: config -> Snapshot -> the sidecar's
// decoders -> its route table, with no process in between.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config';
import { Snapshot } from '../control-plane/xds/snapshot';
import type { Workload } from '../control-plane/model/workload';
import { TypeUrl } from '../proto/type-urls';
import { decodeRouteConfig, decoders } from '../proto/decode/decode';
import { RouteTable } from '../sidecar/runtime/config';

const wl = (service: string, namespace = 'default', labels: Record<string, string> = {}): Workload => ({
  id: `${service}-${namespace}-${labels.version ?? ''}`,
  service,
  namespace,
  serviceAccount: service,
  labels,
  inboundAddress: '127.0.0.1:15006',
  identity: '',
});

const MESH = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: all-kinds
    match:
    - uri: {prefix: /API}
      ignoreUriCase: true
      headers: {x-user: {regex: "j.*"}, x-present: {}}
      withoutHeaders: {x-block: {}, x-mode: {exact: test}}
      method: {exact: GET}
      authority: {prefix: reviews}
      scheme: {exact: http}
      queryParams: {v: {exact: "2"}}
      port: 9080
    route: [{destination: {host: reviews, subset: v2}}]
  - name: split
    match: [{headers: {x-split: {}}}]
    route:
    - {destination: {host: reviews, subset: v1}, weight: 1}
    - {destination: {host: reviews, subset: v2}, weight: 3, headers: {request: {set: {host: v2.reviews}}}}
  - name: root
    match: [{uri: {prefix: /d}}]
    delegate: {name: leaf}
  - name: default
    route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: leaf}
spec:
  http:
  - name: deep
    match: [{uri: {prefix: /d/deep}}]
    route: [{destination: {host: ratings}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: star}
spec:
  hosts: ["*"]
  http: [{name: star, route: [{destination: {host: ratings}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ext}
spec:
  hosts: ["*.example.com"]
  http: [{name: ext, route: [{destination: {host: ratings}}]}]
`;

const snap = new Snapshot(1, parseConfigText(MESH, 'mesh.yaml'), [wl('reviews', 'default', { version: 'v1' }), wl('reviews', 'default', { version: 'v2' }), wl('ratings')], {
  domain: 'cluster.local',
  trustDomain: 'cluster.local',
});

describe('VirtualService routing, translated and applied', () => {
  it('every resource served decodes in the sidecar', () => {
    for (const type of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const) {
      for (const r of snap.served(type, null).resources) expect(() => decoders[type](r.any), `${type} ${r.name}`).not.toThrow();
    }
  });

  const table = new RouteTable(decodeRouteConfig(snap.served(TypeUrl.RouteConfiguration, ['outbound']).resources[0].any), true);
  const route = (authority: string, path: string, headers: Record<string, string> = {}) =>
    table.match(authority, path, (n) => ({ ':method': 'GET', ':scheme': 'http', ':authority': authority, ...headers })[n])?.model.name;

  it('takes a request that meets every condition of a match, and only such a request', () => {
    const ok = { 'x-user': 'jason', 'x-present': '' };
    expect(route('reviews:9080', '/api/x?v=2', ok)).toBe('all-kinds');
    for (const [what, authority, path, headers] of [
      ['another port', 'reviews', '/api/x?v=2', ok],
      ['another path', 'reviews:9080', '/other?v=2', ok],
      ['another query', 'reviews:9080', '/api/x?v=3', ok],
      ['no x-present', 'reviews:9080', '/api/x?v=2', { 'x-user': 'jason' }],
      ['x-user not matching', 'reviews:9080', '/api/x?v=2', { ...ok, 'x-user': 'bob' }],
      ['x-block present', 'reviews:9080', '/api/x?v=2', { ...ok, 'x-block': '' }],
      ['x-mode: test', 'reviews:9080', '/api/x?v=2', { ...ok, 'x-mode': 'test' }],
      ['another method', 'reviews:9080', '/api/x?v=2', { ...ok, ':method': 'POST' }],
    ] as const) {
      expect(route(authority, path, headers), what).toBe('default');
    }
    expect(route('reviews:9080', '/API/x?v=2', { ...ok, 'x-mode': 'prod' })).toBe('all-kinds');
  });

  it('splits 1:3 with the weighted destination rewriting the Host', () => {
    const r = table.match('reviews', '/', (n) => (n === 'x-split' ? '1' : undefined))!;
    const picks = Array.from({ length: 8 }, () => r.pickCluster());
    expect(picks.filter((c) => c.name.includes('|v1|'))).toHaveLength(2);
    expect(picks.find((c) => c.name.includes('|v2|'))!.hostRewrite).toBe('v2.reviews');
  });

  it("routes a delegate's route under the root's host and match", () => {
    expect(route('reviews', '/d/deep/1')).toBe('root-deep');
    expect(route('reviews', '/d/other')).toBe('default');
  });

  it('routes by * and by a wildcard that covers no service', () => {
    expect(route('ratings', '/')).toBe('star');
    expect(route('shop.example.com', '/')).toBe('ext');
    expect(route('unknown', '/')).toBeUndefined();
  });
});
