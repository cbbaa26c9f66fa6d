import { describe, expect, it } from 'vitest';
import { clusterPolicy, DestinationRuleIndex, hostMatches, mostSpecific, serviceNamespace } from './destination-rules';
import { emptyMeshConfig, type DestinationRule, type TrafficPolicy } from './types';

const REVIEWS = 'reviews.default.svc.cluster.local';
let docs = 0;
const rule = (namespace: string, name: string, host: string, o: Partial<DestinationRule> = {}): DestinationRule => ({
  name,
  namespace,
  host,
  subsets: [],
  source: { file: 'mesh.yaml', doc: docs++ },
  ...o,
});
const sub = (name: string, trafficPolicy?: TrafficPolicy) => ({ name, labels: { version: name }, ...(trafficPolicy ? { trafficPolicy } : {}) });

describe('host matching', () => {
  it('matches exactly, by wildcard suffix, or anything for *', () => {
    expect(hostMatches(REVIEWS, REVIEWS)).toBe(true);
    expect(hostMatches('*.svc.cluster.local', REVIEWS)).toBe(true);
    expect(hostMatches('*.local', REVIEWS)).toBe(true);
    expect(hostMatches('*', REVIEWS)).toBe(true);
    expect(hostMatches('*.example.com', 'example.com')).toBe(false);
    expect(hostMatches('*.prod.svc.cluster.local', REVIEWS)).toBe(false);
  });

  it('prefers the exact host, then the longest wildcard', () => {
    const m = new Map([
      ['*', 'any'],
      ['*.local', 'local'],
      ['*.default.svc.cluster.local', 'ns'],
    ]);
    expect(mostSpecific(REVIEWS, m)).toBe('ns');
    expect(mostSpecific('ratings.prod.svc.cluster.local', m)).toBe('local');
    expect(mostSpecific('httpbin.org', m)).toBe('any');
    expect(mostSpecific(REVIEWS, new Map([...m, [REVIEWS, 'exact']]))).toBe('exact');
  });
});

describe('merging rules for one host (Istio mergeDestinationRule)', () => {
  it('appends subsets, keeps the first of a duplicate name, and the first top-level policy', () => {
    const a = rule('default', 'a', REVIEWS, { subsets: [sub('v1', { loadBalancer: { simple: 'RANDOM' } })] });
    const b = rule('default', 'b', REVIEWS, {
      trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } },
      subsets: [sub('v1', { loadBalancer: { simple: 'ROUND_ROBIN' } }), sub('v2')],
    });
    const c = rule('default', 'c', REVIEWS, { trafficPolicy: { loadBalancer: { simple: 'RANDOM' } }, subsets: [sub('v3')] });
    const m = new DestinationRuleIndex([a, b, c]).forHost(REVIEWS, 'default')!;
    expect(m.subsets.map((s) => s.name)).toEqual(['v1', 'v2', 'v3']);
    expect(m.subsets[0].trafficPolicy).toEqual({ loadBalancer: { simple: 'RANDOM' } });
    // a has no top-level policy: b's is the first one
    expect(m.trafficPolicy).toEqual({ loadBalancer: { simple: 'LEAST_REQUEST' } });
    expect(m.from.map((r) => r.name)).toEqual(['a', 'b', 'c']);
  });

  it('does not merge rules of different namespaces or hosts', () => {
    const idx = new DestinationRuleIndex([
      rule('default', 'a', REVIEWS, { subsets: [sub('v1')] }),
      rule('prod', 'b', REVIEWS, { subsets: [sub('v2')] }),
      rule('default', 'c', '*.default.svc.cluster.local', { subsets: [sub('v3')] }),
    ]);
    expect(idx.forHost(REVIEWS, 'default')!.subsets.map((s) => s.name)).toEqual(['v1']);
    expect(idx.forHost('ratings.default.svc.cluster.local', 'default')!.subsets.map((s) => s.name)).toEqual(['v3']);
  });
});

describe('which rule a client sees (Istio PushContext.destinationRule)', () => {
  const idx = new DestinationRuleIndex([
    rule('istio-system', 'mesh', '*.local', { trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }),
    rule('default', 'svc', REVIEWS, { trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }),
    rule('frontend', 'client', REVIEWS, { trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } }),
    rule('other', 'other', 'ratings.default.svc.cluster.local', { trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }),
  ]);

  it("the client's namespace first, then the service's, then the root namespace", () => {
    expect(idx.forHost(REVIEWS, 'default', 'frontend')!.from[0].name).toBe('client');
    expect(idx.forHost(REVIEWS, 'default', 'shop')!.from[0].name).toBe('svc');
    expect(idx.forHost('details.default.svc.cluster.local', 'default', 'shop')!.from[0].name).toBe('mesh');
    // a rule in an unrelated namespace is for that namespace's clients only
    expect(idx.forHost('ratings.default.svc.cluster.local', 'default', 'shop')!.from[0].name).toBe('mesh');
    expect(idx.forHost('ratings.default.svc.cluster.local', 'default', 'other')!.from[0].name).toBe('other');
  });

  it('in the view shared by every sidecar: the service namespace, the root, then any other', () => {
    expect(idx.forHost(REVIEWS, 'default')!.from[0].name).toBe('svc');
    expect(idx.forHost('details.default.svc.cluster.local', 'default')!.from[0].name).toBe('mesh');
    expect(new DestinationRuleIndex([rule('other', 'o', REVIEWS)]).forHost(REVIEWS, 'default')!.from[0].name).toBe('o');
  });

  it("finds a service's namespace from its mesh name or its ServiceEntry", () => {
    const config = emptyMeshConfig();
    config.serviceEntries.push({ name: 'ext', namespace: 'egress', hosts: ['httpbin.org'], addresses: [], ports: [], endpoints: [], resolution: 'STATIC', location: 'MESH_EXTERNAL', source: { file: 'f', doc: 0 } });
    expect(serviceNamespace(REVIEWS, config, 'cluster.local')).toBe('default');
    expect(serviceNamespace('httpbin.org', config, 'cluster.local')).toBe('egress');
    expect(serviceNamespace('unknown.example.com', config, 'cluster.local')).toBeUndefined();
  });
});

describe('the policy of one cluster (Istio MergeSubsetTrafficPolicy)', () => {
  const top: TrafficPolicy = {
    loadBalancer: { simple: 'RANDOM' },
    connectionPool: { tcp: { maxConnections: 10 } },
    outlierDetection: { consecutive5xxErrors: 3 },
    retryBudget: { percent: 30 },
    portLevelSettings: [
      { port: 9080, loadBalancer: { simple: 'LEAST_REQUEST' } },
      { port: 9080, loadBalancer: { simple: 'ROUND_ROBIN' } },
    ],
  };
  const merged = (subsets: ReturnType<typeof sub>[], trafficPolicy: TrafficPolicy | null = top) =>
    new DestinationRuleIndex([rule('default', 'r', REVIEWS, { trafficPolicy: trafficPolicy ?? undefined, subsets })]).forHost(REVIEWS, 'default');

  it('the rule-level policy, without its portLevelSettings', () => {
    expect(clusterPolicy(merged([]), 80)).toEqual({
      loadBalancer: { simple: 'RANDOM' },
      connectionPool: { tcp: { maxConnections: 10 } },
      outlierDetection: { consecutive5xxErrors: 3 },
      retryBudget: { percent: 30 },
    });
  });

  it("a port's entry replaces the whole policy (the first entry for the port)", () => {
    expect(clusterPolicy(merged([]), 9080)).toEqual({ loadBalancer: { simple: 'LEAST_REQUEST' } });
  });

  it("a subset's setting replaces the rule's, setting by setting", () => {
    const r = merged([sub('v1', { connectionPool: { http: { http2MaxRequests: 1 } } })]);
    expect(clusterPolicy(r, 80, 'v1')).toEqual({
      loadBalancer: { simple: 'RANDOM' },
      connectionPool: { http: { http2MaxRequests: 1 } },
      outlierDetection: { consecutive5xxErrors: 3 },
      retryBudget: { percent: 30 },
    });
    // on the port with an entry, the subset's settings go on top of the entry
    expect(clusterPolicy(r, 9080, 'v1')).toEqual({ loadBalancer: { simple: 'LEAST_REQUEST' }, connectionPool: { http: { http2MaxRequests: 1 } } });
  });

  it("a subset's own entry for the port replaces all four settings", () => {
    const r = merged([sub('v1', { outlierDetection: { consecutive5xxErrors: 9 }, portLevelSettings: [{ port: 80, connectionPool: { tcp: { maxConnections: 1 } } }] })]);
    expect(clusterPolicy(r, 80, 'v1')).toEqual({ connectionPool: { tcp: { maxConnections: 1 } }, retryBudget: { percent: 30 } });
    expect(clusterPolicy(r, 81, 'v1')).toEqual({
      loadBalancer: { simple: 'RANDOM' },
      connectionPool: { tcp: { maxConnections: 10 } },
      outlierDetection: { consecutive5xxErrors: 9 },
      retryBudget: { percent: 30 },
    });
  });

  it('a subset policy alone, or none at all', () => {
    expect(clusterPolicy(merged([sub('v1', { loadBalancer: { simple: 'RANDOM' } })], null), 80, 'v1')).toEqual({ loadBalancer: { simple: 'RANDOM' } });
    expect(clusterPolicy(merged([sub('v1')], null), 80, 'v1')).toBeUndefined();
    expect(clusterPolicy(undefined, 80)).toBeUndefined();
  });
});
