// DestinationRule validation: every TrafficPolicy field of Istio's networking v1 API is
// read into the model or refused by name.
import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { parseConfigText } from './load';

const dr = (spec: string, meta = 'metadata: {name: reviews}'): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
${meta}
spec:
${spec}`;

const load = (text: string) => parseConfigText(text, 'mesh.yaml');

function rejects(text: string): ConfigError {
  try {
    load(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('config was accepted');
}

describe('DestinationRule trafficPolicy fields', () => {
  it('reads every load balancer, pool and outlier setting', () => {
    const c = load(
      dr(`  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: LEAST_CONN
      warmupDurationSecs: 60s
      localityLbSetting:
        enabled: true
        failover: [{from: us-east, to: eu-west}]
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 30ms
        tcpKeepalive: {time: 7200s, interval: 75s, probes: 3}
        maxConnectionDuration: 1h
        idleTimeout: 0s
      http:
        http1MaxPendingRequests: 10
        http2MaxRequests: 100
        maxRequestsPerConnection: 5
        maxRetries: 2
        idleTimeout: 30s
        h2UpgradePolicy: UPGRADE
        maxConcurrentStreams: 50
        http2KeepAlive: {interval: 10s, timeout: 2s}
    outlierDetection:
      consecutive5xxErrors: 7
      interval: 5m
      baseEjectionTime: 15m
      splitExternalLocalOriginErrors: true
      consecutiveLocalOriginFailures: 4
      minHealthPercent: 20
    retryBudget: {percent: {value: 25}, minRetryConcurrency: 5}
`),
    );
    expect(c.destinationRules[0].trafficPolicy).toEqual({
      loadBalancer: { simple: 'LEAST_REQUEST', warmup: { durationMs: 60_000 } },
      connectionPool: {
        tcp: { maxConnections: 100, connectTimeoutMs: 30, tcpKeepalive: { timeMs: 7_200_000, intervalMs: 75_000, probes: 3 }, maxConnectionDurationMs: 3_600_000, idleTimeoutMs: 0 },
        http: {
          http1MaxPendingRequests: 10,
          http2MaxRequests: 100,
          maxRequestsPerConnection: 5,
          maxRetries: 2,
          idleTimeoutMs: 30_000,
          h2UpgradePolicy: 'UPGRADE',
          maxConcurrentStreams: 50,
          http2KeepAlive: { intervalMs: 10_000, timeoutMs: 2000 },
        },
      },
      outlierDetection: { consecutive5xxErrors: 7, intervalMs: 300_000, baseEjectionTimeMs: 900_000, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 4, minHealthPercent: 20 },
      retryBudget: { percent: 25, minRetryConcurrency: 5 },
    });
  });

  it('reads warmup (winning over warmupDurationSecs), cookie attributes and zone-aware settings', () => {
    const c = load(
      dr(`  host: reviews
  trafficPolicy:
    loadBalancer:
      warmup: {duration: 30s, minimumPercent: 5, aggression: 2}
      warmupDurationSecs: 60s
      zoneAwareLbSetting: {enabled: true, minClusterSize: 3}
  subsets:
  - name: sticky
    labels: {version: v1}
    trafficPolicy:
      loadBalancer:
        consistentHash:
          httpCookie: {name: user, ttl: 60s, attributes: [{name: SameSite, value: Strict}, {name: Secure}]}
`),
    );
    const r = c.destinationRules[0];
    expect(r.trafficPolicy?.loadBalancer).toEqual({ warmup: { durationMs: 30_000, minimumPercent: 5, aggression: 2 } });
    expect(r.subsets[0].trafficPolicy?.loadBalancer?.consistentHash?.httpCookie).toEqual({
      name: 'user',
      ttlMs: 60_000,
      attributes: [{ name: 'SameSite', value: 'Strict' }, { name: 'Secure' }],
    });
  });

  it('reads portLevelSettings, at the top and in a subset', () => {
    const c = load(
      dr(`  host: reviews
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    portLevelSettings:
    - port: {number: 9080}
      loadBalancer: {simple: LEAST_REQUEST}
      connectionPool: {http: {http2MaxRequests: 1}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 9080}
        outlierDetection: {consecutive5xxErrors: 1}
        tls: {mode: ISTIO_MUTUAL}
`),
    );
    const r = c.destinationRules[0];
    expect(r.trafficPolicy?.portLevelSettings).toEqual([{ port: 9080, loadBalancer: { simple: 'LEAST_REQUEST' }, connectionPool: { http: { http2MaxRequests: 1 } } }]);
    expect(r.subsets[0].trafficPolicy).toEqual({ portLevelSettings: [{ port: 9080, outlierDetection: { consecutive5xxErrors: 1 }, tls: { mode: 'ISTIO_MUTUAL' } }] });
  });

  it('takes wildcard hosts literally, as Istio', () => {
    const c = load(`${dr('  host: "*.example.com"\n')}---\n${dr('  host: "*.local"\n', 'metadata: {name: all, namespace: istio-system}')}`);
    expect(c.destinationRules.map((r) => r.host)).toEqual(['*.example.com', '*.local']);
  });

  it('merges two rules for one host when checking subset references', () => {
    const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v2}, weight: 50}
`;
    const a = dr('  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]\n', 'metadata: {name: a}');
    const b = dr('  host: reviews\n  subsets: [{name: v2, labels: {version: v2}}]\n', 'metadata: {name: b}');
    expect(() => load(`${a}---\n${b}---\n${vs}`)).not.toThrow();
  });
});

describe('DestinationRule refusals name the field', () => {
  const P = (policy: string) => dr(`  host: reviews\n  trafficPolicy:\n${policy}`);
  it.each<[string, string, string, RegExp]>([
    ['tunnel', P('    tunnel: {targetHost: proxy, targetPort: 3128}\n'), 'spec.trafficPolicy.tunnel', /not supported by Tandem/],
    ['PASSTHROUGH', P('    loadBalancer: {simple: PASSTHROUGH}\n'), 'spec.trafficPolicy.loadBalancer.simple', /PASSTHROUGH is not supported by Tandem/],
    ['proxyProtocol', P('    proxyProtocol: {version: V2}\n'), 'spec.trafficPolicy.proxyProtocol', /not supported by Tandem/],
    ['outlierDetectionHttpErrorCodes', P('    outlierDetection: {outlierDetectionHttpErrorCodes: [500]}\n'), 'spec.trafficPolicy.outlierDetection.outlierDetectionHttpErrorCodes', /not supported by Tandem/],
    ['retryBudget.budgetInterval', P('    retryBudget: {budgetInterval: 10s}\n'), 'spec.trafficPolicy.retryBudget.budgetInterval', /not supported by Tandem/],
    ['warmup with consistent hash', P('    loadBalancer: {consistentHash: {useSourceIp: true}, warmupDurationSecs: 10s}\n'), 'spec.trafficPolicy.loadBalancer.warmupDurationSecs', /not supported by Tandem with consistentHash/],
    ['warmup with RANDOM', P('    loadBalancer: {simple: RANDOM, warmup: {duration: 10s}}\n'), 'spec.trafficPolicy.loadBalancer.warmup', /not supported by Tandem with RANDOM/],
    ['warmup without duration', P('    loadBalancer: {warmup: {aggression: 2}}\n'), 'spec.trafficPolicy.loadBalancer.warmup.duration', /is required/],
    ['warmup aggression 0', P('    loadBalancer: {warmup: {duration: 1s, aggression: 0}}\n'), 'spec.trafficPolicy.loadBalancer.warmup.aggression', /greater than 0/],
    ['locality and zone-aware together', P('    loadBalancer: {localityLbSetting: {enabled: true}, zoneAwareLbSetting: {enabled: true}}\n'), 'spec.trafficPolicy.loadBalancer', /either localityLbSetting or zoneAwareLbSetting/],
    ['UPGRADE with useClientProtocol', P('    connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}\n'), 'spec.trafficPolicy.connectionPool.http.useClientProtocol', /must not be true when h2UpgradePolicy is UPGRADE/],
    ['bad h2UpgradePolicy', P('    connectionPool: {http: {h2UpgradePolicy: ALWAYS}}\n'), 'spec.trafficPolicy.connectionPool.http.h2UpgradePolicy', /must be one of DEFAULT, DO_NOT_UPGRADE, UPGRADE/],
    ['http2KeepAlive without timeout', P('    connectionPool: {http: {http2KeepAlive: {interval: 1s}}}\n'), 'spec.trafficPolicy.connectionPool.http.http2KeepAlive.timeout', /is required/],
    ['sub-second keepalive time', P('    connectionPool: {tcp: {tcpKeepalive: {time: 500ms}}}\n'), 'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive.time', /at least 1s/],
    ['zero http idleTimeout', P('    connectionPool: {http: {idleTimeout: 0s}}\n'), 'spec.trafficPolicy.connectionPool.http.idleTimeout', /positive/],
    ['local-origin failures without split', P('    outlierDetection: {consecutiveLocalOriginFailures: 3}\n'), 'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures', /needs splitExternalLocalOriginErrors/],
    ['portLevelSettings without port', P('    portLevelSettings: [{loadBalancer: {simple: RANDOM}}]\n'), 'spec.trafficPolicy.portLevelSettings[0].port', /is required/],
    ['portLevelSettings unknown field', P('    portLevelSettings: [{port: {number: 80}, retryBudget: {}}]\n'), 'spec.trafficPolicy.portLevelSettings[0].retryBudget', /unknown field/],
    ['cookie attribute Path', P('    loadBalancer: {consistentHash: {httpCookie: {name: u, ttl: 1s, attributes: [{name: Path, value: /}]}}}\n'), 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[0].name', /set by the cookie's path/],
    ['duplicate cookie attribute', P('    loadBalancer: {consistentHash: {httpCookie: {name: u, attributes: [{name: Secure}, {name: secure}]}}}\n'), 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.attributes[1].name', /duplicate/],
    ['subset tunnel', dr('  host: reviews\n  subsets: [{name: v1, trafficPolicy: {tunnel: {targetHost: a, targetPort: 1}}}]\n'), 'spec.subsets[0].trafficPolicy.tunnel', /not supported by Tandem/],
  ])('%s', (_name, text, field, detail) => {
    const e = rejects(text);
    expect(e.field).toBe(field);
    expect(e.detail).toMatch(detail);
  });

  it('names the rule that applies when a subset is only in a less specific one', () => {
    const exact = dr('  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]\n', 'metadata: {name: exact}');
    const wild = dr('  host: "*.default.svc.cluster.local"\n  subsets: [{name: v9, labels: {version: v9}}]\n', 'metadata: {name: wild}');
    const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v9}}]}]
`;
    const e = rejects(`${exact}---\n${wild}---\n${vs}`);
    expect(e.field).toBe('spec.http[0].route[0].destination.subset');
    expect(e.detail).toBe(
      'subset "v9" is not defined by the DestinationRule that applies to host reviews.default.svc.cluster.local (default/exact, host reviews.default.svc.cluster.local); default/wild (host *.default.svc.cluster.local) defines it but is less specific',
    );
  });
});
