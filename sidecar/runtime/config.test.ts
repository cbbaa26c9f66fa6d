import { describe, expect, it } from 'vitest';
import { compileRe2 } from '../../common/re2';
import type { ClusterModel, EndpointModel, HeaderMatcher, LbPolicy, RouteConfigModel, RouteModel, StringMatcher, VirtualHostModel } from '../../proto/decode/model';
import { noHeaderOps } from '../../proto/decode/model';
import type { InForce } from '../xds/client';
import { EndpointStats, matchString, RouteTable, RuntimeConfig } from './config';
import { makeBalancer, SmoothWeighted } from './pickers';

const exact = (value: string): StringMatcher => ({ kind: 'exact', value });
const prefix = (value: string): StringMatcher => ({ kind: 'prefix', value });
const regex = (value: string): StringMatcher => ({ kind: 'regex', value, re: compileRe2(value) });
const header = (name: string, match: StringMatcher, invert = false): HeaderMatcher => ({ name, match, invert });

function route(name: string, over: Partial<RouteModel> = {}): RouteModel {
  return {
    name,
    path: prefix('/'),
    headers: [],
    query: [],
    clusters: [{ name: `c-${name}`, weight: 1, requestHeaders: noHeaderOps(), responseHeaders: noHeaderOps() }],
    timeoutMs: 0,
    mirrors: [],
    hashPolicies: [],
    requestHeaders: noHeaderOps(),
    responseHeaders: noHeaderOps(),
    ...over,
  };
}

const vhost = (name: string, domains: string[], routes: RouteModel[] = [route(name)]): VirtualHostModel => ({
  name,
  domains,
  routes,
  requestHeaders: noHeaderOps(),
  responseHeaders: noHeaderOps(),
});

const rc = (...virtualHosts: VirtualHostModel[]): RouteConfigModel => ({ name: 'outbound', virtualHosts });

const noHeaders = () => undefined;
const hdrs = (h: Record<string, string>) => (n: string) => h[n];

/** the virtual host a request lands on, by name */
const vhostFor = (t: RouteTable, authority: string) => t.match(authority, '/', noHeaders)?.vhost.name;

describe('RouteTable: virtual host selection', () => {
  const table = new RouteTable(
    rc(
      vhost('any', ['*']),
      vhost('prefix', ['api.*']),
      vhost('suffix', ['*.example.com']),
      vhost('longer-suffix', ['*.eu.example.com']),
      vhost('exact', ['api.example.com', 'reviews']),
    ),
    true,
  );

  it('prefers an exact domain over a suffix, a suffix over a prefix, a prefix over *', () => {
    expect(vhostFor(table, 'api.example.com')).toBe('exact');
    expect(vhostFor(table, 'www.example.com')).toBe('suffix');
    expect(vhostFor(table, 'api.example.org')).toBe('prefix');
    expect(vhostFor(table, 'other')).toBe('any');
  });

  it('prefers the longest suffix', () => {
    expect(vhostFor(table, 'www.eu.example.com')).toBe('longer-suffix');
  });

  it('prefers a suffix over a prefix when both match', () => {
    expect(vhostFor(table, 'api.shop.example.com')).toBe('suffix');
  });

  it('compares hosts case-insensitively', () => {
    expect(vhostFor(table, 'API.Example.COM')).toBe('exact');
    expect(vhostFor(table, 'Reviews')).toBe('exact');
  });

  it('strips the port when the listener says strip_any_host_port', () => {
    expect(vhostFor(table, 'reviews:9080')).toBe('exact');
    expect(vhostFor(table, 'api.example.com:443')).toBe('exact');
  });

  it('keeps the port otherwise', () => {
    const t = new RouteTable(rc(vhost('exact', ['reviews']), vhost('with-port', ['reviews:9080'])), false);
    expect(vhostFor(t, 'reviews:9080')).toBe('with-port');
    expect(vhostFor(t, 'reviews')).toBe('exact');
    expect(vhostFor(t, 'reviews:8080')).toBeUndefined();
  });

  it('matches nothing without a fitting domain or a *', () => {
    const t = new RouteTable(rc(vhost('exact', ['reviews'])), true);
    expect(t.match('ratings', '/', noHeaders)).toBeUndefined();
  });

  it('matches nothing with no route configuration', () => {
    expect(new RouteTable(undefined, true).match('reviews', '/', noHeaders)).toBeUndefined();
  });

  it('gives a domain listed twice to the first virtual host', () => {
    const t = new RouteTable(rc(vhost('first', ['reviews']), vhost('second', ['reviews'])), true);
    expect(vhostFor(t, 'reviews')).toBe('first');
  });
});

describe('RouteTable: route matching', () => {
  const routes = [
    route('jason', { path: prefix('/api'), headers: [header('end-user', exact('jason'))] }),
    route('query', { path: prefix('/api'), query: [{ name: 'debug', match: exact('1'), invert: false }] }),
    route('items', { path: regex('/items/[0-9]+') }),
    route('health', { path: exact('/health') }),
    route('no-canary', { path: prefix('/nc'), headers: [header('x-canary', { kind: 'present' }, true)] }),
    route('api', { path: prefix('/api') }),
    route('catch-all', { path: prefix('/') }),
  ];
  const table = new RouteTable(rc(vhost('reviews', ['reviews'], routes)), true);
  const pick = (path: string, h: Record<string, string> = {}) => table.match('reviews', path, hdrs(h))?.model.name;

  it('takes the first route that matches', () => {
    expect(pick('/api/x', { 'end-user': 'jason' })).toBe('jason');
    expect(pick('/api/x', { 'end-user': 'bob' })).toBe('api');
    expect(pick('/other')).toBe('catch-all');
  });

  it('matches headers', () => {
    expect(pick('/api', { 'end-user': 'jason' })).toBe('jason');
    expect(pick('/api', { 'end-user': 'jasonx' })).toBe('api');
  });

  it('matches query parameters, ignoring the query for the path', () => {
    expect(pick('/api/list?debug=1')).toBe('query');
    expect(pick('/api/list?debug=2')).toBe('api');
    expect(pick('/api/list?x=1&debug=1')).toBe('query');
    expect(pick('/health?debug=1')).toBe('health');
  });

  it('matches a regex path against the whole path', () => {
    expect(pick('/items/42')).toBe('items');
    expect(pick('/items/42/reviews')).toBe('catch-all');
    expect(pick('/items/abc')).toBe('catch-all');
  });

  it('matches an exact path exactly', () => {
    expect(pick('/health')).toBe('health');
    expect(pick('/healthz')).toBe('catch-all');
  });

  it('honours an inverted header match', () => {
    expect(pick('/nc')).toBe('no-canary');
    expect(pick('/nc', { 'x-canary': '1' })).toBe('catch-all');
  });

  it('gives the route its virtual host', () => {
    expect(table.match('reviews', '/x', noHeaders)?.vhost.name).toBe('reviews');
  });
});

describe('matchString', () => {
  it('treats an absent value as no match, whatever the matcher', () => {
    for (const m of [exact(''), prefix(''), regex('.*'), { kind: 'present' } as const]) expect(matchString(m, undefined)).toBe(false);
  });
  it('matches exact, prefix, regex and present', () => {
    expect(matchString(exact('a'), 'a')).toBe(true);
    expect(matchString(exact('a'), 'ab')).toBe(false);
    expect(matchString(prefix('a'), 'ab')).toBe(true);
    expect(matchString(regex('GET|HEAD'), 'HEAD')).toBe(true);
    expect(matchString(regex('GET|HEAD'), 'GETX')).toBe(false);
    expect(matchString({ kind: 'present' }, '')).toBe(true);
  });
});

describe('SmoothWeighted', () => {
  const count = <T>(p: SmoothWeighted<T>, n: number) => {
    const c = new Map<T, number>();
    for (let i = 0; i < n; i++) {
      const x = p.next();
      c.set(x, (c.get(x) ?? 0) + 1);
    }
    return c;
  };

  it('splits 90/10 exactly: 900/100 over 1000 picks', () => {
    const c = count(new SmoothWeighted([{ item: 'v1', weight: 90 }, { item: 'v2', weight: 10 }]), 1000);
    expect(c.get('v1')).toBe(900);
    expect(c.get('v2')).toBe(100);
  });

  it('is exact over every window of 10 picks for 90/10', () => {
    const p = new SmoothWeighted([{ item: 'v1', weight: 90 }, { item: 'v2', weight: 10 }]);
    for (let w = 0; w < 50; w++) expect(count(p, 10).get('v2')).toBe(1);
  });

  it('interleaves rather than bunching', () => {
    const p = new SmoothWeighted([{ item: 'a', weight: 1 }, { item: 'b', weight: 1 }]);
    expect(Array.from({ length: 6 }, () => p.next())).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
  });

  it('never picks a zero weight', () => {
    const c = count(new SmoothWeighted([{ item: 'a', weight: 0 }, { item: 'b', weight: 100 }, { item: 'c', weight: 0 }]), 500);
    expect(c.get('b')).toBe(500);
    expect(c.has('a')).toBe(false);
    expect(c.has('c')).toBe(false);
  });

  it('splits three ways exactly', () => {
    const c = count(new SmoothWeighted([{ item: 'a', weight: 50 }, { item: 'b', weight: 30 }, { item: 'c', weight: 20 }]), 1000);
    expect([c.get('a'), c.get('b'), c.get('c')]).toEqual([500, 300, 200]);
  });

  it('is what a compiled weighted route uses', () => {
    const r = route('split', {
      clusters: [
        { name: 'v1', weight: 90, requestHeaders: noHeaderOps(), responseHeaders: noHeaderOps() },
        { name: 'v2', weight: 10, requestHeaders: noHeaderOps(), responseHeaders: noHeaderOps() },
      ],
    });
    const compiled = new RouteTable(rc(vhost('reviews', ['reviews'], [r])), true).match('reviews', '/', noHeaders)!;
    const c = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const n = compiled.pickCluster().name;
      c.set(n, (c.get(n) ?? 0) + 1);
    }
    expect(Object.fromEntries(c)).toEqual({ v1: 900, v2: 100 });
  });
});

// ---- RuntimeConfig ----

const CL = 'outbound|80||reviews.default.svc.cluster.local';

const clusterModel = (name: string, lbPolicy: LbPolicy = 'ROUND_ROBIN'): ClusterModel => ({ name, lbPolicy, connectTimeoutMs: 1000, mesh: true, protocol: 'HTTP', limits: {} });
const ep = (port: number, healthy = true): EndpointModel => ({ address: '127.0.0.1', port, healthy, labels: { version: `p${port}` } });

function resources(lb: LbPolicy, eps: EndpointModel[], routes?: RouteConfigModel): InForce {
  return {
    clusters: new Map([[CL, clusterModel(CL, lb)]]),
    endpoints: new Map([[CL, { clusterName: CL, endpoints: eps }]]),
    listeners: new Map([['outbound', { kind: 'outbound' as const, name: 'outbound', routeConfigName: 'outbound', stripAnyHostPort: true }]]),
    routes: new Map([['outbound', routes ?? rc(vhost('reviews', ['reviews']))]]),
  };
}

function statsRegistry() {
  const stats = new Map<string, EndpointStats>();
  const statsFor = (key: string) => {
    let s = stats.get(key);
    if (!s) stats.set(key, (s = new EndpointStats(key)));
    return s;
  };
  return { stats, statsFor };
}

/** a deterministic "random" yielding the given values in turn, cycling */
const seq = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length];
};

describe('RuntimeConfig', () => {
  it('drops unhealthy endpoints', () => {
    const { statsFor } = statsRegistry();
    const rt = new RuntimeConfig(1, resources('ROUND_ROBIN', [ep(1), ep(2, false), ep(3)]), statsFor, Math.random);
    expect(rt.clusters.get(CL)!.endpoints.map((e) => e.port)).toEqual([1, 3]);
    for (let i = 0; i < 10; i++) expect(rt.clusters.get(CL)!.pick()!.port).not.toBe(2);
  });

  it('picks nothing when no endpoint is healthy', () => {
    const { statsFor } = statsRegistry();
    const rt = new RuntimeConfig(1, resources('ROUND_ROBIN', [ep(1, false)]), statsFor, Math.random);
    expect(rt.clusters.get(CL)!.pick()).toBeUndefined();
  });

  it('picks nothing for a cluster without endpoints yet', () => {
    const { statsFor } = statsRegistry();
    const res = resources('LEAST_REQUEST', []);
    res.endpoints.clear();
    const rt = new RuntimeConfig(1, res, statsFor, () => 0);
    expect(rt.clusters.get(CL)!.endpoints).toEqual([]);
    expect(rt.clusters.get(CL)!.pick()).toBeUndefined();
  });

  it('cycles endpoints round robin', () => {
    const { statsFor } = statsRegistry();
    const rt = new RuntimeConfig(1, resources('ROUND_ROBIN', [ep(1), ep(2), ep(3)]), statsFor, Math.random);
    const c = rt.clusters.get(CL)!;
    expect(Array.from({ length: 7 }, () => c.pick()!.port)).toEqual([1, 2, 3, 1, 2, 3, 1]);
  });

  it('prefers the less-loaded endpoint for LEAST_REQUEST', () => {
    const { statsFor } = statsRegistry();
    // each pick draws two: first endpoint 0, then endpoint 1
    const rt = new RuntimeConfig(1, resources('LEAST_REQUEST', [ep(1), ep(2)]), statsFor, seq(0, 0.5));
    const c = rt.clusters.get(CL)!;
    c.endpoints[0].stats.activeRequests = 5;
    c.endpoints[1].stats.activeRequests = 1;
    expect(c.pick()!.port).toBe(2);
    c.endpoints[1].stats.activeRequests = 9;
    expect(c.pick()!.port).toBe(1);
    // a tie goes to the first drawn
    c.endpoints[1].stats.activeRequests = 5;
    expect(c.pick()!.port).toBe(1);
  });

  it('draws both LEAST_REQUEST candidates from the random source', () => {
    const { statsFor } = statsRegistry();
    // draws: endpoint 2 then endpoint 1
    const rt = new RuntimeConfig(1, resources('LEAST_REQUEST', [ep(1), ep(2), ep(3)]), statsFor, seq(0.9, 0.4));
    const c = rt.clusters.get(CL)!;
    c.endpoints[0].stats.activeRequests = 0; // never drawn
    c.endpoints[1].stats.activeRequests = 3;
    c.endpoints[2].stats.activeRequests = 4;
    expect(c.pick()!.port).toBe(2);
  });

  it('picks with the random source for RANDOM', () => {
    const { statsFor } = statsRegistry();
    const rt = new RuntimeConfig(1, resources('RANDOM', [ep(1), ep(2), ep(3)]), statsFor, seq(0.1, 0.5, 0.99));
    const c = rt.clusters.get(CL)!;
    expect([c.pick()!.port, c.pick()!.port, c.pick()!.port]).toEqual([1, 2, 3]);
  });

  it('shares endpoint stats across generations through the same statsFor', () => {
    const { stats, statsFor } = statsRegistry();
    const gen1 = new RuntimeConfig(1, resources('LEAST_REQUEST', [ep(1), ep(2)]), statsFor, seq(0, 0.5));
    const e1 = gen1.clusters.get(CL)!.endpoints[0];
    e1.stats.activeRequests = 3;
    e1.stats.totalRequests = 10;
    const gen2 = new RuntimeConfig(2, resources('LEAST_REQUEST', [ep(1), ep(2), ep(3)]), statsFor, seq(0, 0.5));
    const e1b = gen2.clusters.get(CL)!.endpoints[0];
    expect(e1b.stats).toBe(e1.stats);
    expect(e1b.active()).toBe(3);
    expect(e1b.stats.totalRequests).toBe(10);
    expect(stats.get(`${CL}|127.0.0.1:1`)).toBe(e1.stats);
    // the in-flight count carried over steers the new generation's balancer away from it
    expect(gen2.clusters.get(CL)!.pick()!.port).toBe(2);
    // a request that finishes after the swap is seen by both generations
    e1.stats.activeRequests--;
    expect(e1b.active()).toBe(2);
  });

  it('builds the outbound route table from the listener it names', () => {
    const { statsFor } = statsRegistry();
    const rt = new RuntimeConfig(1, resources('ROUND_ROBIN', [ep(1)]), statsFor, Math.random);
    expect(rt.outbound.stripPort).toBe(true);
    expect(rt.outbound.match('reviews:80', '/', noHeaders)?.vhost.name).toBe('reviews');
  });

  it('follows the listener on strip_any_host_port', () => {
    const { statsFor } = statsRegistry();
    const res = resources('ROUND_ROBIN', [ep(1)]);
    res.listeners.set('outbound', { kind: 'outbound', name: 'outbound', routeConfigName: 'outbound', stripAnyHostPort: false });
    const rt = new RuntimeConfig(1, res, statsFor, Math.random);
    expect(rt.outbound.stripPort).toBe(false);
    expect(rt.outbound.match('reviews:80', '/', noHeaders)).toBeUndefined();
  });

  it('routes nothing before a listener arrives', () => {
    const { statsFor } = statsRegistry();
    const res = resources('ROUND_ROBIN', [ep(1)]);
    res.listeners.clear();
    const rt = new RuntimeConfig(1, res, statsFor, Math.random);
    expect(rt.outbound.match('reviews', '/', noHeaders)).toBeUndefined();
  });
});

describe('makeBalancer', () => {
  const items = (...active: number[]) => active.map((a, i) => ({ id: i, active: () => a }));

  it('returns the only endpoint for LEAST_REQUEST without drawing', () => {
    let draws = 0;
    const b = makeBalancer('LEAST_REQUEST', () => (draws++, 0));
    const [only] = items(7);
    expect(b([only])).toBe(only);
    expect(b([])).toBeUndefined();
    expect(draws).toBe(0);
  });

  it('returns undefined for no endpoints under round robin', () => {
    expect(makeBalancer('ROUND_ROBIN', Math.random)([])).toBeUndefined();
  });
});
