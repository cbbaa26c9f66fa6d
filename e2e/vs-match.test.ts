// VirtualService matching on a real mesh: one control plane and five workloads (reviews v1
// and v2, ratings, details, and orders in namespace prod), each a tiny app behind its own
// sidecar. Requests enter at the ratings sidecar's outbound port, as the ratings application
// would send them. Every route tags its answers `x-route: <name>`, so a test sees which route
// took a request, and the app's answer which workload got it.
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

interface AppAnswer {
  app: string;
  host: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

interface ClusterInfo {
  name: string;
  endpoints: { address: string }[];
}

const tag = (name: string) => `    headers: {response: {set: {x-route: ${name}}}}\n`;
const to = (host: string, subset?: string) => `    route: [{destination: {host: ${host}${subset ? `, subset: ${subset}` : ''}}}]\n`;

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
  - name: uri-exact
    match: [{uri: {exact: /exact}}]
${tag('uri-exact')}${to('reviews', 'v2')}  - name: uri-regex
    match: [{uri: {regex: "/items/[0-9]+"}}]
${tag('uri-regex')}${to('reviews', 'v2')}  - name: ignore-case
    match: [{uri: {prefix: /CASE/}, ignoreUriCase: true}]
${tag('ignore-case')}${to('reviews', 'v2')}  - name: header
    match: [{headers: {end-user: {exact: jason}}}]
${tag('header')}${to('reviews', 'v2')}  - name: header-regex
    match: [{headers: {x-build: {regex: "[0-9]+\\\\.[0-9]+"}}}]
${tag('header-regex')}${to('reviews', 'v2')}  - name: presence
    match: [{headers: {x-present: {}}}]
${tag('presence')}${to('ratings')}  - name: without
    match: [{uri: {prefix: /without}, withoutHeaders: {x-block: {}, x-mode: {exact: test}}}]
${tag('without')}${to('reviews', 'v2')}  - name: query
    match: [{queryParams: {v: {exact: "2"}}}, {queryParams: {flag: {}}}]
${tag('query')}${to('reviews', 'v2')}  - name: method
    match: [{method: {exact: DELETE}}]
${tag('method')}${to('reviews', 'v2')}  - name: authority
    match: [{authority: {prefix: reviews.default}}]
${tag('authority')}${to('ratings')}  - name: scheme-https
    match: [{uri: {prefix: /scheme}, scheme: {exact: https}}]
${tag('scheme-https')}${to('reviews', 'v2')}  - name: scheme-http
    match: [{uri: {prefix: /scheme}, scheme: {exact: http}}]
${tag('scheme-http')}${to('ratings')}  - name: port
    match: [{port: 9080}]
${tag('port')}${to('ratings')}  - name: relative
    match: [{headers: {x-split: {}}}]
${tag('relative')}    route:
    - destination: {host: reviews, subset: v1}
      weight: 1
    - destination: {host: reviews, subset: v2}
      weight: 3
    - destination: {host: details}
  - name: header-ops
    match: [{headers: {x-ops: {}}}]
    headers:
      request: {set: {x-route-req: "yes"}, remove: [x-drop]}
      response: {set: {x-route: header-ops}}
    route:
    - destination: {host: reviews, subset: v2}
      headers:
        request: {add: {x-dest: v2}, set: {host: rewritten.example}}
        response: {set: {x-dest-resp: v2}}
  - name: default
${tag('default')}${to('reviews', 'v1')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: everything}
spec:
  hosts: ["*"]
  http:
  - name: star
${tag('star')}${to('details')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: prod-wide, namespace: prod}
spec:
  hosts: ["*.prod.svc.cluster.local"]
  http:
  - name: prod
${tag('prod')}${to('orders')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: example-com}
spec:
  hosts: ["*.example.com"]
  http:
  - name: example
${tag('example')}${to('ratings')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage}
spec:
  hosts: [productpage]
  http:
  - name: pp
    match: [{uri: {prefix: /pp}}]
    headers: {request: {set: {x-from-root: "1"}}, response: {set: {x-route: pp-root}}}
    delegate: {name: productpage-routes}
  - name: rest
${tag('pp-root-rest')}${to('details')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage-routes}
spec:
  http:
  - name: v2
    match: [{uri: {prefix: /pp/v2}}]
${to('reviews', 'v2')}  - name: rest
    headers: {response: {set: {x-route: pp-rest}}}
${to('ratings')}`;

describe('VirtualService matching on a real mesh', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let caller: h.Sidecar;
  const sidecars: Record<string, h.Sidecar> = {};

  const ask = async (host: string, opts: Parameters<typeof h.request>[1] = {}) => {
    const r = await h.request(caller.outbound, { host, ...opts });
    const answer = r.status === 200 ? (JSON.parse(r.body) as AppAnswer) : undefined;
    return { status: r.status, route: r.headers['x-route'], app: answer?.app, answer, headers: r.headers };
  };

  /** The caller's sidecar has an endpoint for every workload. */
  async function converged(): Promise<boolean> {
    const clusters = await h.json<ClusterInfo[]>(caller.admin, '/clusters');
    const has = (re: RegExp, sc: h.Sidecar) => clusters.some((c) => re.test(c.name) && c.endpoints.some((e) => e.address === `127.0.0.1:${sc.inbound}`));
    return (
      has(/\|v1\|reviews\./, sidecars.v1) &&
      has(/\|v2\|reviews\./, sidecars.v2) &&
      has(/\|\|ratings\./, sidecars.ratings) &&
      has(/\|\|details\./, sidecars.details) &&
      has(/\|\|orders\.prod\./, sidecars.orders)
    );
  }

  beforeAll(async () => {
    dir = h.tmpDir('tandem-vs-match-e2e-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, MESH);
    cp = await h.startControlPlane(dir, configPath);
    const [v1, v2, ratings, details, orders] = await Promise.all(['reviews-v1', 'reviews-v2', 'ratings', 'details', 'orders'].map((n) => h.startApp(n)));
    [sidecars.v1, sidecars.v2, sidecars.ratings, sidecars.details, sidecars.orders] = await Promise.all([
      h.startSidecar(cp, 'reviews', v1.port, { version: 'v1' }),
      h.startSidecar(cp, 'reviews', v2.port, { version: 'v2' }),
      h.startSidecar(cp, 'ratings', ratings.port),
      h.startSidecar(cp, 'details', details.port),
      h.startSidecar(cp, 'orders', orders.port, {}, { namespace: 'prod' }),
    ]);
    caller = sidecars.ratings;
    try {
      await h.waitFor('the caller sidecar to learn every endpoint', converged, 15_000);
    } catch (err) {
      const debug = await h.request(cp.admin, { path: '/debug/config' }).catch((e: Error) => e.message);
      throw new Error(`${(err as Error).message}\nconfig: ${JSON.stringify(debug)}\ncp: ${cp.proc.output().slice(-3000)}\ncaller: ${caller.proc.output().slice(-3000)}`);
    }
  });

  afterAll(async () => {
    await h.stopAll();
    await h.closeApps();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('each match kind routes', () => {
    it('uri exact, and not a longer path', async () => {
      expect(await ask('reviews', { path: '/exact' })).toMatchObject({ route: 'uri-exact', app: 'reviews-v2' });
      expect(await ask('reviews', { path: '/exact?q=1' })).toMatchObject({ route: 'uri-exact' });
      expect(await ask('reviews', { path: '/exact/more' })).toMatchObject({ route: 'default', app: 'reviews-v1' });
    });

    it('uri regex, against the whole path', async () => {
      expect(await ask('reviews', { path: '/items/42' })).toMatchObject({ route: 'uri-regex', app: 'reviews-v2' });
      expect(await ask('reviews', { path: '/items/42/x' })).toMatchObject({ route: 'default' });
    });

    it('ignoreUriCase', async () => {
      expect(await ask('reviews', { path: '/case/x' })).toMatchObject({ route: 'ignore-case', app: 'reviews-v2' });
      expect(await ask('reviews', { path: '/Case/x' })).toMatchObject({ route: 'ignore-case' });
    });

    it('a header value, exact and regex', async () => {
      expect(await ask('reviews', { headers: { 'end-user': 'jason' } })).toMatchObject({ route: 'header', app: 'reviews-v2' });
      expect(await ask('reviews', { headers: { 'end-user': 'json' } })).toMatchObject({ route: 'default' });
      expect(await ask('reviews', { headers: { 'x-build': '1.25' } })).toMatchObject({ route: 'header-regex' });
      expect(await ask('reviews', { headers: { 'x-build': '1.25-rc' } })).toMatchObject({ route: 'default' });
    });

    it('header presence ({}), whatever the value', async () => {
      expect(await ask('reviews', { headers: { 'x-present': 'anything' } })).toMatchObject({ route: 'presence', app: 'ratings' });
      expect(await ask('reviews', { headers: { 'x-present': '' } })).toMatchObject({ route: 'presence' });
    });

    it('withoutHeaders: a request with the header (or the value) is not taken', async () => {
      expect(await ask('reviews', { path: '/without' })).toMatchObject({ route: 'without', app: 'reviews-v2' });
      expect(await ask('reviews', { path: '/without', headers: { 'x-mode': 'prod' } })).toMatchObject({ route: 'without' });
      expect(await ask('reviews', { path: '/without', headers: { 'x-block': '1' } })).toMatchObject({ route: 'default' });
      expect(await ask('reviews', { path: '/without', headers: { 'x-mode': 'test' } })).toMatchObject({ route: 'default' });
    });

    it('query parameters, exact and present', async () => {
      expect(await ask('reviews', { path: '/list?v=2' })).toMatchObject({ route: 'query', app: 'reviews-v2' });
      expect(await ask('reviews', { path: '/list?v=3' })).toMatchObject({ route: 'default' });
      expect(await ask('reviews', { path: '/list?a=1&flag' })).toMatchObject({ route: 'query' });
    });

    it('method', async () => {
      expect(await ask('reviews', { path: '/x', method: 'DELETE' })).toMatchObject({ route: 'method', app: 'reviews-v2' });
      expect(await ask('reviews', { path: '/x', method: 'PUT' })).toMatchObject({ route: 'default' });
    });

    it('authority, as the application wrote the Host', async () => {
      expect(await ask('reviews.default', { path: '/x' })).toMatchObject({ route: 'authority', app: 'ratings' });
      expect(await ask('reviews.default.svc.cluster.local', { path: '/x' })).toMatchObject({ route: 'authority' });
      expect(await ask('reviews', { path: '/x' })).toMatchObject({ route: 'default' });
    });

    it('scheme: the outbound hop is plain http', async () => {
      expect(await ask('reviews', { path: '/scheme' })).toMatchObject({ route: 'scheme-http', app: 'ratings' });
    });

    it('port: the port the application addressed', async () => {
      expect(await ask('reviews:9080', { path: '/x' })).toMatchObject({ route: 'port', app: 'ratings' });
      expect(await ask('reviews:8080', { path: '/x' })).toMatchObject({ route: 'default' });
    });
  });

  describe('weights and header operations', () => {
    it('splits by relative weights: 1 and 3 (and a destination without weight gets nothing)', async () => {
      const counts: Record<string, number> = {};
      for (let i = 0; i < 40; i++) {
        const r = await ask('reviews', { headers: { 'x-split': '1' } });
        expect(r.route).toBe('relative');
        counts[r.app ?? `status ${r.status}`] = (counts[r.app ?? `status ${r.status}`] ?? 0) + 1;
      }
      // smooth weighted round robin is exact: 10 and 30 of every 40
      expect(counts).toEqual({ 'reviews-v1': 10, 'reviews-v2': 30 });
    });

    it("applies the route's and the destination's header operations, and a Host set as a rewrite", async () => {
      const r = await ask('reviews', { path: '/ops', headers: { 'x-ops': '1', 'x-drop': 'gone' } });
      expect(r).toMatchObject({ status: 200, route: 'header-ops', app: 'reviews-v2' });
      expect(r.headers['x-dest-resp']).toBe('v2');
      expect(r.answer!.headers).toMatchObject({ 'x-route-req': 'yes', 'x-dest': 'v2' });
      expect(r.answer!.headers['x-drop']).toBeUndefined();
      expect(r.answer!.host).toBe('rewritten.example');
    });
  });

  describe('hosts', () => {
    it('a * VirtualService routes every service that has none of its own', async () => {
      expect(await ask('details', { path: '/d' })).toMatchObject({ route: 'star', app: 'details' });
      expect(await ask('ratings.default.svc.cluster.local', { path: '/r' })).toMatchObject({ route: 'star', app: 'details' });
    });

    it('a *.suffix VirtualService beats *, and an exact host beats both', async () => {
      expect(await ask('orders.prod', { path: '/o' })).toMatchObject({ route: 'prod', app: 'orders' });
      expect(await ask('reviews', { path: '/r' })).toMatchObject({ route: 'default', app: 'reviews-v1' });
    });

    it('a *.suffix that covers no service takes any host under it', async () => {
      expect(await ask('shop.example.com', { path: '/e' })).toMatchObject({ route: 'example', app: 'ratings' });
      expect(await ask('a.b.example.com:8080', { path: '/e' })).toMatchObject({ route: 'example' });
      expect((await ask('example.com', { path: '/e' })).status).toBe(404);
    });
  });

  describe('delegation', () => {
    it("routes by the delegate's routes under the root's match", async () => {
      expect(await ask('productpage', { path: '/pp/v2/x' })).toMatchObject({ app: 'reviews-v2' });
      expect(await ask('productpage', { path: '/pp/other' })).toMatchObject({ route: 'pp-rest', app: 'ratings' });
      expect(await ask('productpage', { path: '/elsewhere' })).toMatchObject({ route: 'pp-root-rest', app: 'details' });
      expect(await ask('productpage', { path: '/p' })).toMatchObject({ route: 'pp-root-rest' });
    });

    it("gives a delegate route the root route's header operations where it has none of its own (Istio)", async () => {
      const inherits = await ask('productpage', { path: '/pp/v2/x' });
      expect(inherits.route).toBe('pp-root');
      expect(inherits.answer!.headers['x-from-root']).toBe('1');
      const own = await ask('productpage', { path: '/pp/other' });
      expect(own.route).toBe('pp-rest');
      expect(own.answer!.headers['x-from-root']).toBeUndefined();
    });
  });
});
