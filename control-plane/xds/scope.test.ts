// Per-node translation: what each sidecar is sent depends on who it is (Sidecar egress
// hosts, VirtualService sourceLabels/sourceNamespace, DestinationRule workloadSelector),
// and sidecars that are alike share one translation.
import { describe, expect, it, vi } from 'vitest';
import { parseConfigText } from '../config';
import type { WorkloadInfo } from '../../proto/node-meta';
import { unpack } from '../../proto/any';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import type { Workload } from '../model/workload';
import { Snapshot } from './snapshot';
import { Scope } from './scope';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fq = (name: string, ns = 'default') => `${name}.${ns}.svc.cluster.local`;
const cluster = (name: string, subset = '', ns = 'default') => `outbound|80|${subset}|${fq(name, ns)}`;

let port = 15000;
const wl = (service: string, labels: Record<string, string>, namespace = 'default'): Workload => ({
  id: `${service}-${++port}`,
  service,
  namespace,
  serviceAccount: service,
  labels,
  inboundAddress: `127.0.0.1:${port}`,
  identity: '',
});

const frontend = wl('frontend', { app: 'frontend' });
const frontend2 = wl('frontend', { app: 'frontend' });
const productV1 = wl('productpage', { app: 'productpage', version: 'v1' });
const productV1b = wl('productpage', { app: 'productpage', version: 'v1' });
const productV2 = wl('productpage', { app: 'productpage', version: 'v2' });
const reviewsV1 = wl('reviews', { app: 'reviews', version: 'v1' });
const reviewsV2 = wl('reviews', { app: 'reviews', version: 'v2' });
const ratings = wl('ratings', { app: 'ratings' });
const details = wl('details', { app: 'details' }, 'other');
const WORKLOADS = [frontend, frontend2, productV1, productV1b, productV2, reviewsV1, reviewsV2, ratings, details];

const HTTPBIN = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
`;

const REVIEWS_DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

const build = (yaml: string, workloads: WorkloadInfo[] = WORKLOADS) =>
  new Snapshot(1, parseConfigText(yaml, 'mesh.yaml'), workloads.map((w) => ({ identity: '', ...w })), { domain: 'cluster.local', trustDomain: 'cluster.local' });

function decoded(snap: Snapshot, type: XdsTypeUrl, w?: Workload, names: string[] | null = null): Map<string, Obj> {
  return new Map(snap.served(type, names, w).resources.map((r) => [r.name, unpack<Obj>(r.any, type)]));
}

const vhosts = (snap: Snapshot, w?: Workload): string[] => decoded(snap, TypeUrl.RouteConfiguration, w).get('outbound')!.virtual_hosts.map((v: Obj) => v.name);
const clusters = (snap: Snapshot, w?: Workload): string[] => [...decoded(snap, TypeUrl.Cluster, w).keys()];
const routesOf = (snap: Snapshot, w: Workload | undefined, host: string): Obj[] =>
  decoded(snap, TypeUrl.RouteConfiguration, w).get('outbound')!.virtual_hosts.find((v: Obj) => v.name === host).routes;
const routeObject = (snap: Snapshot, w?: Workload) => snap.served(TypeUrl.RouteConfiguration, ['outbound'], w).resources[0];

const ALL_HOSTS = [fq('details', 'other'), fq('frontend'), fq('productpage'), fq('ratings'), fq('reviews'), 'httpbin.org'];

describe('without Sidecars or selectors', () => {
  const snap = build(`${HTTPBIN}---\n${REVIEWS_DR}`);

  it('sends every sidecar the same resources, the very objects a client without a workload gets', () => {
    for (const type of [TypeUrl.RouteConfiguration, TypeUrl.Cluster] as const) {
      const all = snap.served(type, null);
      for (const w of [frontend, details, reviewsV2]) {
        const mine = snap.served(type, null, w);
        expect(mine.version).toBe(all.version);
        mine.resources.forEach((r, i) => expect(r).toBe(all.resources[i]));
      }
    }
    expect(vhosts(snap, frontend).sort()).toEqual([...ALL_HOSTS].sort());
  });
});

describe('Sidecar egress hosts', () => {
  const yaml = `${HTTPBIN}---
${REVIEWS_DR}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: frontend, namespace: default}
spec:
  workloadSelector: {labels: {app: frontend}}
  egress:
  - hosts: ["./reviews.default.svc.cluster.local"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: other}
spec:
  egress:
  - hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  egress:
  - hosts: ["*/*", "~other/*", "~/httpbin.org"]
`;
  const snap = build(yaml);

  it("limits a selected workload's routes, clusters and endpoints to its hosts", () => {
    expect(vhosts(snap, frontend)).toEqual([fq('reviews')]);
    expect(clusters(snap, frontend)).toEqual([cluster('reviews', 'v1'), cluster('reviews', 'v2'), cluster('reviews')]);
    expect([...decoded(snap, TypeUrl.ClusterLoadAssignment, frontend).keys()]).toEqual(clusters(snap, frontend));
    // a name outside its clusters is not served to it, even when asked for by name
    expect(snap.served(TypeUrl.ClusterLoadAssignment, [cluster('ratings'), cluster('reviews', 'v1')], frontend).resources.map((r) => r.name)).toEqual([cluster('reviews', 'v1')]);
  });

  it("gives other namespaces' workloads their namespace's Sidecar, with . read as their namespace", () => {
    expect(vhosts(snap, details)).toEqual([fq('details', 'other')]);
  });

  it('gives a namespace without its own Sidecar the root namespace default, exclusions subtracted', () => {
    expect(vhosts(snap, ratings)).toEqual([fq('frontend'), fq('productpage'), fq('ratings'), fq('reviews')]);
  });

  it('prefers the workload-selected Sidecar over the defaults, and gives alike workloads one shared translation', () => {
    expect(routeObject(snap, frontend2)).toBe(routeObject(snap, frontend));
    // the whole set, version included, is made once for them
    expect(snap.served(TypeUrl.Cluster, null, frontend2)).toBe(snap.served(TypeUrl.Cluster, null, frontend));
    expect(snap.served(TypeUrl.ClusterLoadAssignment, [cluster('reviews')], frontend2)).toBe(snap.served(TypeUrl.ClusterLoadAssignment, [cluster('reviews')], frontend));
    expect(routeObject(snap, productV1)).toBe(routeObject(snap, ratings));
    expect(routeObject(snap, productV1)).not.toBe(routeObject(snap, frontend));
    expect(snap.served(TypeUrl.RouteConfiguration, null, frontend).version).not.toBe(snap.served(TypeUrl.RouteConfiguration, null, ratings).version);
  });

  it('versions each subscriber by the content it gets, whatever snapshot or order made it', () => {
    const again = build(yaml, [...WORKLOADS].reverse());
    for (const w of [frontend, details, ratings]) {
      for (const type of [TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment] as const) {
        expect(again.served(type, null, w).version).toBe(snap.served(type, null, w).version);
      }
    }
  });

  it('keeps the outbound listener and each workload its own inbound listener', () => {
    expect([...decoded(snap, TypeUrl.Listener, frontend).keys()]).toEqual(['outbound', 'virtualInbound']);
  });
});

describe('Sidecar: VirtualServices and their destinations', () => {
  const yaml = `${REVIEWS_DR}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v2}}]
    mirror: {host: ratings}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: default}
spec:
  hosts: [details.other.svc.cluster.local]
  http:
  - route: [{destination: {host: details.other.svc.cluster.local}}]
    timeout: 3s
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["./reviews.default.svc.cluster.local", "other/*"]
`;
  const snap = build(yaml);

  it("sends the clusters of an imported VirtualService's destinations, without a virtual host for them", () => {
    expect(vhosts(snap, frontend)).toEqual([fq('details', 'other'), fq('reviews')]);
    expect(clusters(snap, frontend)).toContain(cluster('ratings'));
    expect(routesOf(snap, frontend, fq('reviews'))[0].route.request_mirror_policies[0].cluster).toBe(cluster('ratings'));
  });

  it("imports a VirtualService by its own namespace, as Istio does: other/* does not bring default's rule for details", () => {
    const [route] = routesOf(snap, frontend, fq('details', 'other'));
    expect(route.name).toBe('default');
    expect(route.route.timeout).toBeUndefined();
    // a workload the Sidecar does not cover still gets it
    expect(routesOf(snap, details, fq('details', 'other'))[0].route.timeout).toEqual({ seconds: 3, nanos: 0 });
  });
});

describe('VirtualService sourceLabels and sourceNamespace', () => {
  const yaml = `${REVIEWS_DR}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{sourceLabels: {app: productpage, version: v1}}]
    route: [{destination: {host: reviews, subset: v1}}]
  - match:
    - {sourceNamespace: other, uri: {prefix: /other}}
    - {uri: {prefix: /everyone}}
    route: [{destination: {host: reviews, subset: v2}}]
    timeout: 2s
  - route: [{destination: {host: reviews, subset: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - match: [{sourceLabels: {app: frontend}}]
    route: [{destination: {host: ratings}}]
    timeout: 1s
`;
  const snap = build(yaml);
  const names = (w?: Workload) => routesOf(snap, w, fq('reviews')).map((r) => `${r.name} ${JSON.stringify(r.match)}`);

  it("puts a sourceLabels clause only in the routes of the workloads it names, keeping every route's name", () => {
    expect(names(productV1)).toEqual(['default/reviews/0 {"prefix":"/"}', 'default/reviews/1 {"prefix":"/everyone"}', 'default/reviews/2 {"prefix":"/"}']);
    expect(names(productV2)).toEqual(['default/reviews/1 {"prefix":"/everyone"}', 'default/reviews/2 {"prefix":"/"}']);
    expect(routesOf(snap, productV1, fq('reviews'))[0].route.cluster).toBe(cluster('reviews', 'v1'));
  });

  it('puts a sourceNamespace clause only in the routes of workloads in that namespace', () => {
    expect(names(details)).toEqual(['default/reviews/1 {"prefix":"/other"}', 'default/reviews/1 {"prefix":"/everyone"}', 'default/reviews/2 {"prefix":"/"}']);
  });

  it('gives a client without a workload none of the caller-specific clauses', () => {
    expect(names(undefined)).toEqual(['default/reviews/1 {"prefix":"/everyone"}', 'default/reviews/2 {"prefix":"/"}']);
  });

  it('falls back to the default route where no route is left for a caller (Istio drops the VirtualService)', () => {
    expect(routesOf(snap, frontend, fq('ratings'))[0].route.timeout).toEqual({ seconds: 1, nanos: 0 });
    expect(routesOf(snap, productV1, fq('ratings'))).toMatchObject([{ name: 'default', route: { cluster: cluster('ratings') } }]);
  });

  it('shares one translation between workloads every clause treats alike', () => {
    expect(routeObject(snap, productV1b)).toBe(routeObject(snap, productV1));
    expect(routeObject(snap, productV2)).toBe(routeObject(snap, reviewsV1));
    expect(routeObject(snap, productV2)).not.toBe(routeObject(snap, productV1));
  });
});

describe('DestinationRule workloadSelector', () => {
  const yaml = `${REVIEWS_DR}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-for-frontend, namespace: default}
spec:
  host: reviews
  workloadSelector: {matchLabels: {app: frontend}}
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets:
  - {name: v1, labels: {version: v1, track: canary}}
  - {name: canary, labels: {track: canary}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-elsewhere, namespace: other}
spec:
  host: reviews.default.svc.cluster.local
  workloadSelector: {matchLabels: {app: frontend}}
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
`;
  const withCanary = [...WORKLOADS, wl('reviews', { app: 'reviews', version: 'v1', track: 'canary' })];
  const snap = build(yaml, withCanary);
  const lb = (w: Workload, name: string) => decoded(snap, TypeUrl.Cluster, w).get(name)!.lb_policy ?? 'ROUND_ROBIN';
  const endpoints = (w: Workload, name: string): string[] =>
    decoded(snap, TypeUrl.ClusterLoadAssignment, w, [name])
      .get(name)!
      .endpoints.flatMap((l: Obj) => l.lb_endpoints.map((e: Obj) => e.endpoint.address.socket_address.port_value));

  it('applies the selected rule to the workloads it selects, and the rule for everyone to the rest', () => {
    expect(lb(frontend, cluster('reviews'))).toBe('RANDOM');
    expect(lb(productV1, cluster('reviews'))).toBe('LEAST_REQUEST');
  });

  it("ignores a selector in another namespace than the workload's", () => {
    expect(lb(details, cluster('reviews'))).toBe('LEAST_REQUEST');
  });

  it("gives each caller its rule's subset: the same cluster name, other endpoints", () => {
    const canary = withCanary[withCanary.length - 1];
    const v1 = Number(reviewsV1.inboundAddress.split(':')[1]);
    const v1canary = Number(canary.inboundAddress.split(':')[1]);
    expect(endpoints(frontend, cluster('reviews', 'v1'))).toEqual([v1canary]);
    expect(endpoints(productV1, cluster('reviews', 'v1')).sort()).toEqual([v1, v1canary].sort());
  });

  it("keeps every subset any rule defines, so no caller's route points at a cluster it lacks", () => {
    expect(clusters(snap, frontend)).toEqual(expect.arrayContaining([cluster('reviews', 'v1'), cluster('reviews', 'v2'), cluster('reviews', 'canary')]));
    expect(clusters(snap, productV1)).toEqual(expect.arrayContaining([cluster('reviews', 'v1'), cluster('reviews', 'v2'), cluster('reviews', 'canary')]));
    // the subset keeps the labels of the rule that defines it, under the caller's own policy
    expect(lb(frontend, cluster('reviews', 'v2'))).toBe('RANDOM');
    expect(endpoints(frontend, cluster('reviews', 'v2'))).toEqual([Number(reviewsV2.inboundAddress.split(':')[1])]);
  });

  it('shares one translation between workloads the selectors treat alike', () => {
    expect(snap.served(TypeUrl.Cluster, null, frontend2).version).toBe(snap.served(TypeUrl.Cluster, null, frontend).version);
    expect(snap.served(TypeUrl.Cluster, null, frontend2).resources[0]).toBe(snap.served(TypeUrl.Cluster, null, frontend).resources[0]);
    expect(snap.served(TypeUrl.Cluster, null, productV1).version).not.toBe(snap.served(TypeUrl.Cluster, null, frontend).version);
  });
});

describe('translation at load', () => {
  const yaml = `${REVIEWS_DR}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-for-frontend, namespace: default}
spec:
  host: reviews
  workloadSelector: {matchLabels: {app: frontend}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: other}
spec:
  egress: [{hosts: ["./*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - match: [{sourceLabels: {version: v1}}]
    route: [{destination: {host: ratings}}]
`;

  it('translates for every kind of caller a new config names, and only for those asking when just workloads changed', () => {
    const scoped = vi.spyOn(Scope.prototype, 'scoped');
    try {
      const config = parseConfigText(yaml, 'mesh.yaml');
      const opts = { domain: 'cluster.local', trustDomain: 'cluster.local' };
      new Snapshot(1, config, WORKLOADS, opts);
      // the unscoped view, then the Sidecar's, the selected rule's and the clause's callers
      expect(scoped.mock.calls.map(([c]) => c && `${c.namespace} ${JSON.stringify(c.labels)}`)).toEqual([
        undefined,
        'other {}',
        'default {"app":"frontend"}',
        'default {"version":"v1"}',
      ]);
      scoped.mockClear();
      const snap = new Snapshot(2, config, WORKLOADS, opts, false);
      expect(scoped).toHaveBeenCalledTimes(1);
      snap.served(TypeUrl.Cluster, null, frontend);
      snap.served(TypeUrl.Cluster, null, frontend2);
      expect(scoped).toHaveBeenCalledTimes(2);
    } finally {
      scoped.mockRestore();
    }
  });
});
