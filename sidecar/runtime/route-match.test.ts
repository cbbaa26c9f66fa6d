// The route table matching what Istio's match kinds translate to: case-insensitive paths,
// withoutHeaders (inverted, missing as empty), presence, pseudo-headers, query parameters,
// the addressed port; and relative weights, split in exact proportion.
import { describe, expect, it } from 'vitest';
import { compileRe2 } from '../../common/re2';
import type { HeaderMatcher, RouteModel, StringMatcher, VirtualHostModel, WeightedCluster } from '../../proto/decode/model';
import { noHeaderOps } from '../../proto/decode/model';
import { byKey } from '../proxy/layers/split';
import { RouteTable } from './config';

const exact = (value: string): StringMatcher => ({ kind: 'exact', value });
const prefix = (value: string): StringMatcher => ({ kind: 'prefix', value });
const regex = (value: string): StringMatcher => ({ kind: 'regex', value, re: compileRe2(value) });
const present: StringMatcher = { kind: 'present' };
const header = (name: string, match: StringMatcher, o: Partial<HeaderMatcher> = {}): HeaderMatcher => ({ name, match, invert: false, ...o });
const cluster = (name: string, weight: number): WeightedCluster => ({ name, weight, requestHeaders: noHeaderOps(), responseHeaders: noHeaderOps() });

function route(name: string, over: Partial<RouteModel> = {}): RouteModel {
  return { name, path: prefix('/'), headers: [], query: [], clusters: [cluster(name, 1)], timeoutMs: 0, mirrors: [], hashPolicies: [], requestHeaders: noHeaderOps(), responseHeaders: noHeaderOps(), ...over };
}

const table = (routes: RouteModel[], domains = ['reviews']) => {
  const vh: VirtualHostModel = { name: 'reviews', domains, routes, requestHeaders: noHeaderOps(), responseHeaders: noHeaderOps() };
  return new RouteTable({ name: 'outbound', virtualHosts: [vh] }, true);
};

const picker = (routes: RouteModel[]) => {
  const t = table([...routes, route('fallback')]);
  return (path: string, h: Record<string, string> = {}, authority = 'reviews') => t.match(authority, path, (n) => h[n])?.model.name;
};

describe('RouteTable: ignoreUriCase (case_sensitive: false)', () => {
  const pick = picker([
    route('exact', { path: exact('/Health'), ignoreCase: true }),
    route('prefix', { path: prefix('/API/'), ignoreCase: true }),
    route('regex', { path: regex('/Items/[0-9]+'), ignoreCase: true }),
    route('sensitive', { path: prefix('/Only') }),
  ]);

  it('compares exact and prefix paths without case', () => {
    expect(pick('/health')).toBe('exact');
    expect(pick('/HEALTH?x=1')).toBe('exact');
    expect(pick('/api/v1')).toBe('prefix');
    expect(pick('/Api/v1')).toBe('prefix');
  });

  it('leaves a regex to its own case rules, as Envoy does', () => {
    expect(pick('/Items/1')).toBe('regex');
    expect(pick('/items/1')).toBe('fallback');
  });

  it('stays case-sensitive where not asked', () => {
    expect(pick('/Only/x')).toBe('sensitive');
    expect(pick('/only/x')).toBe('fallback');
  });
});

describe('RouteTable: withoutHeaders and presence', () => {
  const pick = picker([
    // Istio's withoutHeaders {x-debug: {exact: "1"}}: inverted, a missing header read as ""
    route('not-debug', { path: prefix('/a'), headers: [header('x-debug', exact('1'), { invert: true, missingAsEmpty: true })] }),
    // withoutHeaders {x-canary: {}}: inverted presence
    route('no-canary', { path: prefix('/b'), headers: [header('x-canary', present, { invert: true })] }),
    // headers {x-user: {}}: presence, whatever the value
    route('has-user', { path: prefix('/c'), headers: [header('x-user', present)] }),
    // without treat_missing_header_as_empty, Envoy fails an inverted match on a missing header
    route('strict-invert', { path: prefix('/d'), headers: [header('x-v', exact('1'), { invert: true })] }),
  ]);

  it('withoutHeaders with a value: matches when the header is missing or different, not when it matches', () => {
    expect(pick('/a')).toBe('not-debug');
    expect(pick('/a', { 'x-debug': '0' })).toBe('not-debug');
    expect(pick('/a', { 'x-debug': '1' })).toBe('fallback');
  });

  it('withoutHeaders {}: matches only when the header is absent', () => {
    expect(pick('/b')).toBe('no-canary');
    expect(pick('/b', { 'x-canary': '' })).toBe('fallback');
    expect(pick('/b', { 'x-canary': 'yes' })).toBe('fallback');
  });

  it('headers {}: matches any value, even empty, but not absence', () => {
    expect(pick('/c', { 'x-user': 'jason' })).toBe('has-user');
    expect(pick('/c', { 'x-user': '' })).toBe('has-user');
    expect(pick('/c')).toBe('fallback');
  });

  it('an inverted match without missing-as-empty fails on a missing header (Envoy)', () => {
    expect(pick('/d', { 'x-v': '2' })).toBe('strict-invert');
    expect(pick('/d')).toBe('fallback');
  });
});

describe('RouteTable: pseudo-headers and query parameters', () => {
  const pick = picker([
    route('method', { path: prefix('/m'), headers: [header(':method', exact('DELETE'))] }),
    route('authority', { path: prefix('/a'), headers: [header(':authority', prefix('reviews.'))] }),
    route('scheme', { path: prefix('/s'), headers: [header(':scheme', exact('http'))] }),
    route('flag', { path: prefix('/q'), query: [{ name: 'flag', match: present, invert: false }] }),
    route('empty', { path: prefix('/e'), query: [{ name: 'v', match: exact(''), invert: false }] }),
  ]);

  it('matches :method, :authority and :scheme as the request line answers them', () => {
    expect(pick('/m', { ':method': 'DELETE' })).toBe('method');
    expect(pick('/m', { ':method': 'GET' })).toBe('fallback');
    expect(pick('/a', { ':authority': 'reviews.default:9080' })).toBe('authority');
    expect(pick('/a', { ':authority': 'reviews' })).toBe('fallback');
    expect(pick('/s', { ':scheme': 'http' })).toBe('scheme');
  });

  it('matches a query parameter present with or without a value, and exact "" for a bare key (Istio)', () => {
    expect(pick('/q?flag')).toBe('flag');
    expect(pick('/q?flag=on')).toBe('flag');
    expect(pick('/q?other=1')).toBe('fallback');
    expect(pick('/e?v')).toBe('empty');
    expect(pick('/e?v=')).toBe('empty');
    expect(pick('/e?v=1')).toBe('fallback');
  });
});

describe('RouteTable: the port a route is for', () => {
  const pick = picker([route('p80', { path: prefix('/eighty'), port: 80 }), route('p9080', { port: 9080 })]);

  it("matches the port of the authority the application addressed, 80 when it names none", () => {
    expect(pick('/', {}, 'reviews:9080')).toBe('p9080');
    expect(pick('/', {}, 'reviews')).toBe('fallback');
    expect(pick('/', {}, 'reviews:8080')).toBe('fallback');
    expect(pick('/eighty', {}, 'reviews')).toBe('p80');
    expect(pick('/eighty', {}, 'reviews:80')).toBe('p80');
    expect(pick('/eighty', {}, 'reviews:8080')).toBe('fallback');
  });

  it('reads the port after an IPv6 literal, and none from the literal itself', () => {
    const t = table([route('p9080', { port: 9080 }), route('fallback')], ['[::1]']);
    expect(t.match('[::1]:9080', '/', () => undefined)?.model.name).toBe('p9080');
    expect(t.match('[::1]', '/', () => undefined)?.model.name).toBe('fallback');
  });
});

describe('relative weights', () => {
  const weighted = (...ws: number[]) => route('split', { clusters: ws.map((w, i) => cluster(`c${i}`, w)) });

  it('splits 1:3 exactly 25/75 over every 4 requests', () => {
    const compiled = table([weighted(1, 3)]).match('reviews', '/', () => undefined)!;
    for (let window = 0; window < 25; window++) {
      const seen = Array.from({ length: 4 }, () => compiled.pickCluster().name);
      expect(seen.filter((n) => n === 'c0')).toHaveLength(1);
    }
  });

  it('splits 500:250:250 as 2:1:1, and never picks a 0 weight', () => {
    const compiled = table([weighted(500, 0, 250, 250)]).match('reviews', '/', () => undefined)!;
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const n = compiled.pickCluster().name;
      counts[n] = (counts[n] ?? 0) + 1;
    }
    expect(counts).toEqual({ c0: 500, c2: 250, c3: 250 });
  });

  it('a sticky split key lands in proportion to relative weights, and keeps its destination', () => {
    const keys = Array.from({ length: 4000 }, (_, i) => `user-${i}`);
    const at = keys.map((k) => byKey(weighted(1, 3), k).name);
    const share = at.filter((n) => n === 'c0').length / keys.length;
    expect(share).toBeGreaterThan(0.22);
    expect(share).toBeLessThan(0.28);
    // the same split written 25:75 and 100:300 sends every key where 1:3 does
    expect(keys.map((k) => byKey(weighted(25, 75), k).name)).toEqual(at);
    expect(keys.map((k) => byKey(weighted(100, 300), k).name)).toEqual(at);
  });
});
