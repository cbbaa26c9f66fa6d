// VirtualService matching, weights, hosts and delegation, translated to Envoy's RouteMatch,
// weighted_clusters and virtual hosts (as Istio's route.go translates them).
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../config';
import type { Workload } from '../model/workload';
import { unpack } from '../../proto/any';
import { TypeUrl } from '../../proto/type-urls';
import { fromStruct } from '../../proto/struct';
import { Snapshot } from './snapshot';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fqdn = (s: string, ns = 'default') => `${s}.${ns}.svc.cluster.local`;

const wl = (service: string, namespace = 'default', labels: Record<string, string> = {}): Workload => ({
  id: `${service}-${namespace}`,
  service,
  namespace,
  serviceAccount: service,
  labels,
  inboundAddress: '127.0.0.1:15006',
  identity: '',
});

const WORKLOADS = [wl('reviews', 'default', { version: 'v1' }), wl('reviews', 'default', { version: 'v2' }), wl('ratings'), wl('details'), wl('other', 'prod')];

const DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}, {name: v3, labels: {version: v3}}]
---
`;

const build = (yaml: string, workloads = WORKLOADS) =>
  new Snapshot(1, parseConfigText(DR + yaml, 'mesh.yaml'), workloads, { domain: 'cluster.local', trustDomain: 'cluster.local' });

function outbound(snap: Snapshot): Obj {
  return unpack<Obj>(snap.served(TypeUrl.RouteConfiguration, ['outbound']).resources[0].any, TypeUrl.RouteConfiguration);
}

const vhostOf = (snap: Snapshot, name: string): Obj => outbound(snap).virtual_hosts.find((v: Obj) => v.name === name);

const vs = (name: string, hosts: string, http: string, meta = '') => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}${meta}}
spec:
  hosts: ${hosts}
  http:
${http}
---
`;

const toRatings = '    route: [{destination: {host: ratings}}]';

describe('match[] to Envoy RouteMatch', () => {
  const snap = build(
    vs(
      'reviews',
      '[reviews]',
      `  - name: all
    match:
    - name: one
      uri: {prefix: /API}
      ignoreUriCase: true
      headers: {x-b: {exact: b}, x-a: {}, ":path": {regex: "/api/.*"}}
      withoutHeaders: {x-debug: {exact: "1"}, x-canary: {}, x-trace: {regex: "*"}}
      method: {exact: GET}
      authority: {prefix: reviews}
      scheme: {exact: http}
      queryParams: {v: {exact: "2"}, flag: {}}
    - uri: {exact: /health}
      method: {}
    - uri: {regex: "/items/[0-9]+"}
${toRatings}`,
    ),
  );
  const routes: Obj[] = vhostOf(snap, fqdn('reviews')).routes;

  it('makes one route per match, named <route>.<match> when the match is named (as Istio)', () => {
    expect(routes.map((r) => r.name)).toEqual(['all.one', 'all', 'all']);
  });

  it('translates headers, withoutHeaders, method, authority and scheme to header matchers, in Istio order', () => {
    expect(routes[0].match).toEqual({
      prefix: '/API',
      case_sensitive: { value: false },
      headers: [
        { name: ':path', string_match: { safe_regex: { regex: '/api/.*' } } },
        { name: 'x-a', present_match: true },
        { name: 'x-b', string_match: { exact: 'b' } },
        { name: 'x-canary', present_match: true, invert_match: true },
        { name: 'x-debug', string_match: { exact: '1' }, invert_match: true, treat_missing_header_as_empty: true },
        { name: 'x-trace', present_match: true, invert_match: true },
        { name: ':method', string_match: { exact: 'GET' } },
        { name: ':authority', string_match: { prefix: 'reviews' } },
        { name: ':scheme', string_match: { exact: 'http' } },
      ],
      query_parameters: [
        { name: 'v', string_match: { exact: '2' } },
        { name: 'flag', present_match: true },
      ],
    });
  });

  it('translates an exact uri to path, a regex to safe_regex, and {} to presence', () => {
    expect(routes[1].match).toEqual({ path: '/health', headers: [{ name: ':method', present_match: true }] });
    expect(routes[2].match).toEqual({ safe_regex: { regex: '/items/[0-9]+' } });
  });

  it('leaves case_sensitive out unless ignoreUriCase is set (Envoy defaults to case-sensitive)', () => {
    expect(routes[1].match.case_sensitive).toBeUndefined();
  });
});

describe('match[].port', () => {
  const snap = build(vs('reviews', '[reviews]', `  - match: [{port: 9080, uri: {prefix: /a}}, {uri: {prefix: /b}}]\n${toRatings}\n  - route: [{destination: {host: reviews}}]`));

  it('carries the port in the route metadata for the sidecar, which has one outbound port', () => {
    const [a, b, rest] = vhostOf(snap, fqdn('reviews')).routes;
    expect(fromStruct(a.metadata.filter_metadata.tandem)).toEqual({ port: 9080 });
    expect(a.match).toEqual({ prefix: '/a' });
    expect(b.metadata).toBeUndefined();
    expect(rest.metadata).toBeUndefined();
  });

  it("keeps only the dialed port's matches for a proxyless client, as Istio does per listener", () => {
    const routes = (name: string) =>
      unpack<Obj>(snap.served(TypeUrl.RouteConfiguration, [name]).resources[0].any, TypeUrl.RouteConfiguration).virtual_hosts[0].routes.map((r: Obj) => [r.match.prefix, r.metadata]);
    expect(routes('reviews:9080')).toEqual([['/a', undefined], ['/b', undefined], ['/', undefined]]);
    expect(routes('reviews')).toEqual([['/b', undefined], ['/', undefined]]);
  });

  it('falls back to the default route on a port no route of the VirtualService takes (Istio)', () => {
    const only = build(vs('reviews', '[reviews]', `  - match: [{port: 9080}]\n${toRatings}`));
    const r = unpack<Obj>(only.served(TypeUrl.RouteConfiguration, ['reviews:8080']).resources[0].any, TypeUrl.RouteConfiguration).virtual_hosts[0].routes;
    expect(r.map((x: Obj) => [x.name, x.route.cluster])).toEqual([['default', `outbound|80||${fqdn('reviews')}`]]);
  });
});

describe('relative weights to weighted_clusters', () => {
  const weights = (http: string, meta = '') => vhostOf(build(vs('reviews', '[reviews]', http, meta)), fqdn('reviews')).routes[0];
  const split = (...ws: (number | undefined)[]) =>
    `  - route:\n${ws.map((w, i) => `    - destination: {host: reviews, subset: v${i + 1}}\n${w === undefined ? '' : `      weight: ${w}\n`}`).join('')}`;

  it('gives Envoy the weights as written: 1 and 3 split 25/75 (no total_weight)', () => {
    const r = weights(split(1, 3));
    expect(r.route.weighted_clusters).toEqual({
      clusters: [
        { name: `outbound|80|v1|${fqdn('reviews')}`, weight: { value: 1 } },
        { name: `outbound|80|v2|${fqdn('reviews')}`, weight: { value: 3 } },
      ],
    });
  });

  it('leaves out destinations weighted 0 or without weight, as Istio does', () => {
    expect(weights(split(0, 7, undefined)).route.weighted_clusters.clusters.map((c: Obj) => [c.name, c.weight.value])).toEqual([[`outbound|80|v2|${fqdn('reviews')}`, 7]]);
  });

  it('sends a lone destination everything, whatever its weight', () => {
    expect(weights(split(5)).route.cluster).toBe(`outbound|80|v1|${fqdn('reviews')}`);
  });

  it('keeps the split key on a weighted route whatever the total, and only where there is a split', () => {
    const meta = ',\n  annotations: {tandem.io/split-key: "header:x-user"}';
    expect(fromStruct(weights(split(1, 3), meta).metadata.filter_metadata.tandem)).toEqual({ split_key: 'header:x-user' });
    expect(weights(split(0, 3), meta).metadata).toBeUndefined();
  });
});

describe('header operations and the authority', () => {
  const route = (http: string) => vhostOf(build(vs('reviews', '[reviews]', http)), fqdn('reviews')).routes[0];

  it('turns a Host set by the route into a host rewrite, not a header (as Istio)', () => {
    const r = route('  - headers: {request: {set: {host: r2, x-a: "1"}, remove: [host, x-b]}}\n    route: [{destination: {host: reviews}}]');
    expect(r.route.host_rewrite_literal).toBe('r2');
    expect(r.request_headers_to_add).toEqual([{ header: { key: 'x-a', value: '1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
    expect(r.request_headers_to_remove).toEqual(['x-b']);
  });

  it("gives a weighted destination's Host to its cluster, with its header operations", () => {
    const r = route(
      '  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 1\n      headers: {request: {add: {host: r1, x-v: "1"}}, response: {set: {x-from: v1}}}\n    - destination: {host: reviews, subset: v2}\n      weight: 1',
    );
    expect(r.route.weighted_clusters.clusters[0]).toEqual({
      name: `outbound|80|v1|${fqdn('reviews')}`,
      weight: { value: 1 },
      request_headers_to_add: [{ header: { key: 'x-v', value: '1' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }],
      response_headers_to_add: [{ header: { key: 'x-from', value: 'v1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      host_rewrite_literal: 'r1',
    });
    expect(r.route.host_rewrite_literal).toBeUndefined();
  });

  it("lets a lone destination's Host give way to the route's (as Istio)", () => {
    const r = route('  - rewrite: {authority: top}\n    route: [{destination: {host: reviews}, headers: {request: {set: {host: mine}}}}]');
    expect(r.route.host_rewrite_literal).toBe('top');
    expect(r.route.weighted_clusters.clusters[0].host_rewrite_literal).toBeUndefined();
    const alone = route('  - route: [{destination: {host: reviews}, headers: {request: {set: {host: mine}}}}]');
    expect(alone.route.weighted_clusters.clusters[0].host_rewrite_literal).toBe('mine');
  });
});

describe('hosts: which VirtualService routes which service', () => {
  const routedBy = (snap: Snapshot, service: string) => vhostOf(snap, service).routes.map((r: Obj) => r.name);

  it('a * VirtualService routes every service that has none of its own', () => {
    const snap = build(vs('all', '["*"]', `  - name: star\n${toRatings}`) + vs('reviews', '[reviews]', `  - name: own\n${toRatings}`));
    expect(routedBy(snap, fqdn('details'))).toEqual(['star']);
    expect(routedBy(snap, fqdn('other', 'prod'))).toEqual(['star']);
    expect(routedBy(snap, fqdn('reviews'))).toEqual(['own']);
    // no virtual host of its own: every host it could take is a service's
    expect(outbound(snap).virtual_hosts.map((v: Obj) => v.name)).not.toContain('*');
  });

  it('the most specific wildcard wins, and an exact host beats any wildcard', () => {
    const snap = build(
      vs('ns', '["*.default.svc.cluster.local"]', `  - name: ns\n${toRatings}`) +
        vs('all', '["*"]', `  - name: star\n${toRatings}`) +
        vs('svc', '["*.svc.cluster.local"]', `  - name: svc\n${toRatings}`) +
        vs('details', '[details]', `  - name: exact\n${toRatings}`),
    );
    expect(routedBy(snap, fqdn('reviews'))).toEqual(['ns']);
    expect(routedBy(snap, fqdn('other', 'prod'))).toEqual(['svc']);
    expect(routedBy(snap, fqdn('details'))).toEqual(['exact']);
  });

  it('a short wildcard is qualified in its namespace: *.prod', () => {
    const snap = build(vs('p', '["*.prod"]', `  - name: prod\n${toRatings}`));
    expect(routedBy(snap, fqdn('other', 'prod'))).toEqual(['prod']);
    expect(routedBy(snap, fqdn('details'))).toEqual(['default']);
  });

  it('a wildcard that covers no service gets a virtual host of its own, for any host under it', () => {
    const snap = build(vs('ext', '["*.example.com"]', `  - name: ext\n${toRatings}`));
    const vh = vhostOf(snap, '*.example.com');
    expect(vh.domains).toEqual(['*.example.com']);
    expect(vh.routes.map((r: Obj) => r.name)).toEqual(['ext']);
  });

  it('a wildcard covering a service routes that service, and gets no virtual host of its own (Istio)', () => {
    const snap = build(
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: api}\nspec: {hosts: [api.example.com], ports: [{number: 80, name: http}], endpoints: [{address: 127.0.0.1}]}\n---\n` +
        vs('ext', '["*.example.com"]', `  - name: ext\n${toRatings}`),
    );
    expect(routedBy(snap, 'api.example.com')).toEqual(['ext']);
    expect(vhostOf(snap, '*.example.com')).toBeUndefined();
  });

  it('of two VirtualServices for one host, the first by name takes it (then namespace), wherever written', () => {
    const snap = build(vs('zz', '[reviews]', `  - name: zz\n${toRatings}`) + vs('aa', '[reviews]', `  - name: aa\n${toRatings}`));
    expect(routedBy(snap, fqdn('reviews'))).toEqual(['aa']);
    const ns = build(vs('same', '[reviews.default.svc.cluster.local]', `  - name: b\n${toRatings}`, ', namespace: b') + vs('same', '[reviews.default.svc.cluster.local]', `  - name: a\n${toRatings}`, ', namespace: a'));
    expect(routedBy(ns, fqdn('reviews'))).toEqual(['a']);
  });

  it('a VirtualService with no http routes leaves its host to the default route', () => {
    const snap = build(vs('reviews', '[reviews]', '  []').replace('  http:\n  []', '  http: []'));
    expect(routedBy(snap, fqdn('reviews'))).toEqual(['default']);
  });
});

describe('delegation', () => {
  it("serves the delegate's routes under the root's host", () => {
    const snap = build(
      vs('root', '[reviews]', '  - name: root\n    match: [{uri: {prefix: /api}}]\n    delegate: {name: leaf}\n  - name: rest\n    route: [{destination: {host: reviews, subset: v1}}]') +
        `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: leaf}\nspec:\n  http:\n  - name: v2\n    match: [{uri: {prefix: /api/v2}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n`,
    );
    const routes = vhostOf(snap, fqdn('reviews')).routes;
    expect(routes.map((r: Obj) => [r.name, r.match.prefix, r.route.cluster])).toEqual([
      ['root-v2', '/api/v2', `outbound|80|v2|${fqdn('reviews')}`],
      ['rest', '/', `outbound|80|v1|${fqdn('reviews')}`],
    ]);
  });
});
