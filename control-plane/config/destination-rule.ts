// DestinationRule: host (a service or a wildcard), trafficPolicy with its portLevelSettings, and subsets.

import type {
  ClientTls,
  ConnectionPoolSettings,
  ConsistentHash,
  DestinationRule,
  LoadBalancerSettings,
  OutlierDetection,
  PortTrafficPolicy,
  Subset,
  TrafficPolicy,
  Warmup,
} from '../model/types';
import { cookieName, DNS_LABEL, headerName, host, port, type Ctx } from './common';
import { labelSelector } from './selectors';
import { bool, defined, duration, fields, int, list, mapOf, nonEmpty, num, oneOf, str, strMap, type Node, type Read } from './reader';

const cookieAttributes: Read<{ name: string; value?: string }[]> = (n) => {
  const attrs = list((a) => {
    const g = fields(a, ['name', 'value']);
    return defined({ name: g.req('name', (x) => cookieName(nonEmpty(x), x)), value: g.opt('value', str) });
  })(n);
  attrs.forEach((a, i) => {
    if (attrs.findIndex((b) => b.name.toLowerCase() === a.name.toLowerCase()) !== i) n.at(i).at('name').fail(`duplicate cookie attribute ${JSON.stringify(a.name)}`);
    // the cookie's own settings come from name, path and ttl: an attribute may not say otherwise
    if (/^(path|max-age|expires)$/i.test(a.name)) n.at(i).at('name').fail(`${a.name} is set by the cookie's path and ttl, not as an attribute`);
    if (a.value !== undefined && /[;\r\n]/.test(a.value)) n.at(i).at('value').fail('must not contain ";" or a line break');
  });
  return attrs;
};

const consistentHash: Read<ConsistentHash> = (n) => {
  const f = fields(n, ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName', 'ringHash', 'maglev', 'minimumRingSize']);
  if (f.has('ringHash') && f.has('maglev')) n.fail('must have either ringHash or maglev, not both');
  // ring and table sizes tune Envoy's memory/spread trade-off; Tandem's ring is fixed
  f.opt('ringHash', (r) => fields(r, ['minimumRingSize']).opt('minimumRingSize', int(1)));
  const maglev = f.opt('maglev', (m) => (fields(m, ['tableSize']).opt('tableSize', int(1)), true));
  f.opt('minimumRingSize', int(1));
  const hash: ConsistentHash = defined({
    httpHeaderName: f.opt('httpHeaderName', (h) => headerName(nonEmpty(h), h)),
    httpCookie: f.opt('httpCookie', (c) => {
      const g = fields(c, ['name', 'path', 'ttl', 'attributes']);
      const attributes = g.opt('attributes', cookieAttributes);
      return defined({
        name: g.req('name', (x) => cookieName(nonEmpty(x), x)),
        path: g.opt('path', nonEmpty),
        ttlMs: g.opt('ttl', duration()),
        attributes: attributes?.length ? attributes : undefined,
      });
    }),
    useSourceIp: f.opt('useSourceIp', bool) || undefined,
    httpQueryParameterName: f.opt('httpQueryParameterName', nonEmpty),
  });
  if (Object.keys(hash).length !== 1) n.fail('must have exactly one of httpHeaderName, httpCookie, useSourceIp: true, httpQueryParameterName');
  return maglev ? { ...hash, maglev: true } : hash;
};

// Every endpoint of a Tandem mesh is in one locality (sidecars announce none), so
// locality-aware balancing already spreads over all of them and failover or
// distribution between localities has nothing to act on. The settings are read and
// checked, and change nothing, as they would in a one-zone Istio cluster.
const localityFailover: Read<unknown> = list((x) => {
  const g = fields(x, ['from', 'to']);
  return [g.opt('from', str), g.opt('to', str)];
});

const localityLbSetting: Read<void> = (n) => {
  const f = fields(n, ['enabled', 'distribute', 'failover', 'failoverPriority']);
  f.opt('enabled', bool);
  f.opt('distribute', list((d) => {
    const g = fields(d, ['from', 'to']);
    g.opt('from', str);
    g.opt('to', mapOf(int(0, 100)));
  }));
  f.opt('failover', localityFailover);
  f.opt('failoverPriority', list(nonEmpty));
  if (f.has('distribute') && f.has('failover')) n.fail('must have either distribute or failover, not both');
};

const zoneAwareLbSetting: Read<void> = (n) => {
  const f = fields(n, ['enabled', 'failover', 'failoverPriority', 'minClusterSize']);
  f.opt('enabled', bool);
  f.opt('failover', localityFailover);
  f.opt('failoverPriority', list(nonEmpty));
  f.opt('minClusterSize', int(0));
};

const warmup: Read<Warmup> = (n) => {
  const f = fields(n, ['duration', 'minimumPercent', 'aggression']);
  return defined({
    durationMs: f.req('duration', duration({ positive: true })),
    minimumPercent: f.opt('minimumPercent', num(0, 100)),
    aggression: f.opt('aggression', (a) => (num(0, 1e6)(a) > 0 ? (a.value as number) : a.fail('must be greater than 0'))),
  });
};

const loadBalancer: Read<LoadBalancerSettings> = (n) => {
  const f = fields(n, ['simple', 'consistentHash', 'localityLbSetting', 'zoneAwareLbSetting', 'warmupDurationSecs', 'warmup']);
  if (f.has('simple') && f.has('consistentHash')) n.fail('must have either simple or consistentHash, not both');
  if (f.has('localityLbSetting') && f.has('zoneAwareLbSetting')) n.fail('must have either localityLbSetting or zoneAwareLbSetting, not both');
  const simple = f.opt('simple', oneOf('ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'LEAST_CONN', 'PASSTHROUGH', 'UNSPECIFIED'));
  // Istio's PASSTHROUGH is an ORIGINAL_DST cluster: the connection goes to the address the
  // application dialed, which iptables captured. A Tandem application dials its sidecar,
  // and a mesh service's endpoints are sidecars known only through EDS: there is no
  // original destination to pass through to.
  if (simple === 'PASSTHROUGH') {
    n.at('simple').fail('PASSTHROUGH is not supported by Tandem (there is no original destination without iptables capture); use ROUND_ROBIN, LEAST_REQUEST or RANDOM');
  }
  f.opt('localityLbSetting', localityLbSetting);
  f.opt('zoneAwareLbSetting', zoneAwareLbSetting);
  // Istio: warmup wins over the deprecated warmupDurationSecs
  const ramp = f.opt('warmup', warmup) ?? f.opt('warmupDurationSecs', (d) => ({ durationMs: duration({ positive: true })(d) }));
  const lb: LoadBalancerSettings = defined({
    // LEAST_CONN is Istio's deprecated spelling of LEAST_REQUEST; UNSPECIFIED is the default
    simple: simple === 'LEAST_CONN' ? 'LEAST_REQUEST' : simple === 'UNSPECIFIED' || simple === 'PASSTHROUGH' ? undefined : simple,
    consistentHash: f.opt('consistentHash', consistentHash),
    warmup: ramp,
  });
  // Envoy (and so Istio) ramps endpoints up only under round robin and least request
  if (ramp && (lb.consistentHash || lb.simple === 'RANDOM')) {
    n.at(f.has('warmup') ? 'warmup' : 'warmupDurationSecs').fail(`not supported by Tandem with ${lb.consistentHash ? 'consistentHash' : lb.simple}: warm-up applies to ROUND_ROBIN and LEAST_REQUEST, as in Istio`);
  }
  return lb;
};

// TCP keepalive counts in whole seconds (Envoy's keepalive_time and keepalive_interval)
const keepaliveSeconds: Read<number> = (n) => {
  const ms = duration()(n);
  return ms >= 1000 ? Math.floor(ms / 1000) * 1000 : n.fail('must be at least 1s (TCP keepalive counts in seconds)');
};

const connectionPool: Read<ConnectionPoolSettings> = (n) => {
  const f = fields(n, ['tcp', 'http']);
  return defined({
    tcp: f.opt('tcp', (t) => {
      const g = fields(t, ['maxConnections', 'connectTimeout', 'tcpKeepalive', 'maxConnectionDuration', 'idleTimeout']);
      return defined({
        maxConnections: g.opt('maxConnections', int(0)),
        connectTimeoutMs: g.opt('connectTimeout', duration({ positive: true })),
        tcpKeepalive: g.opt('tcpKeepalive', (k) => {
          const h = fields(k, ['probes', 'time', 'interval']);
          return defined({ probes: h.opt('probes', int(0)) || undefined, timeMs: h.opt('time', keepaliveSeconds), intervalMs: h.opt('interval', keepaliveSeconds) });
        }),
        maxConnectionDurationMs: g.opt('maxConnectionDuration', duration({ positive: true })),
        // 0s turns the idle timeout off
        idleTimeoutMs: g.opt('idleTimeout', duration()),
      });
    }),
    http: f.opt('http', (h) => {
      const g = fields(h, [
        'http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'idleTimeout',
        'h2UpgradePolicy', 'useClientProtocol', 'maxConcurrentStreams', 'http2KeepAlive',
      ]);
      const http: NonNullable<ConnectionPoolSettings['http']> = defined({
        http1MaxPendingRequests: g.opt('http1MaxPendingRequests', int(0)),
        http2MaxRequests: g.opt('http2MaxRequests', int(0)),
        maxRequestsPerConnection: g.opt('maxRequestsPerConnection', int(0)),
        maxRetries: g.opt('maxRetries', int(0)),
        idleTimeoutMs: g.opt('idleTimeout', duration({ positive: true })),
        h2UpgradePolicy: g.opt('h2UpgradePolicy', oneOf('DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE')),
        useClientProtocol: g.opt('useClientProtocol', bool) || undefined,
        maxConcurrentStreams: g.opt('maxConcurrentStreams', int(0)),
        http2KeepAlive: g.opt('http2KeepAlive', (k) => {
          const ka = fields(k, ['interval', 'timeout']);
          return { intervalMs: ka.req('interval', duration({ positive: true })), timeoutMs: ka.req('timeout', duration({ positive: true })) };
        }),
      });
      if (http.h2UpgradePolicy === 'UPGRADE' && http.useClientProtocol) g.node.at('useClientProtocol').fail('must not be true when h2UpgradePolicy is UPGRADE');
      return http;
    }),
  });
};

const outlierDetection: Read<OutlierDetection> = (n) => {
  const f = fields(n, [
    'consecutive5xxErrors', 'consecutiveGatewayErrors', 'consecutiveErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent',
    'minHealthPercent', 'splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures', 'outlierDetectionHttpErrorCodes',
  ]);
  if (f.has('consecutiveErrors') && f.has('consecutiveGatewayErrors')) n.fail('has both consecutiveErrors (deprecated) and consecutiveGatewayErrors; keep consecutiveGatewayErrors');
  // Envoy's error_matcher for outlier detection is newer than the Envoy API Tandem speaks
  if (f.has('outlierDetectionHttpErrorCodes')) n.at('outlierDetectionHttpErrorCodes').fail('not supported by Tandem: 5xx (or gateway errors) are what count');
  const split = f.opt('splitExternalLocalOriginErrors', bool) || undefined;
  const local = f.opt('consecutiveLocalOriginFailures', int(0));
  if (local && !split) n.at('consecutiveLocalOriginFailures').fail('needs splitExternalLocalOriginErrors: true');
  return defined({
    consecutive5xxErrors: f.opt('consecutive5xxErrors', int(0)),
    // Istio reads the deprecated consecutiveErrors as gateway errors (502, 503, 504)
    consecutiveGatewayErrors: f.opt('consecutiveGatewayErrors', int(0)) ?? f.opt('consecutiveErrors', int(0)),
    minHealthPercent: f.opt('minHealthPercent', int(0, 100)),
    intervalMs: f.opt('interval', duration({ positive: true })),
    baseEjectionTimeMs: f.opt('baseEjectionTime', duration({ positive: true })),
    maxEjectionPercent: f.opt('maxEjectionPercent', int(0, 100)),
    splitExternalLocalOriginErrors: split,
    consecutiveLocalOriginFailures: split ? local : undefined,
  });
};

// Istio's ClientTLSSettings. Files are paths on the sidecar's machine, read when it
// connects; credentialName names a Kubernetes secret, which Tandem has no way to read.
const clientTls: Read<ClientTls> = (n) => {
  const f = fields(n, ['mode', 'sni', 'caCertificates', 'clientCertificate', 'privateKey', 'subjectAltNames', 'insecureSkipVerify', 'credentialName', 'caCrl']);
  if (f.has('credentialName')) n.at('credentialName').fail('not supported by Tandem (no Kubernetes secrets): use clientCertificate, privateKey and caCertificates files');
  if (f.has('caCrl')) n.at('caCrl').fail('not supported by Tandem');
  const mode = f.opt('mode', oneOf('DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL')) ?? 'DISABLE';
  const tls: ClientTls = defined({
    mode,
    sni: f.opt('sni', nonEmpty),
    caCertificates: f.opt('caCertificates', nonEmpty),
    clientCertificate: f.opt('clientCertificate', nonEmpty),
    privateKey: f.opt('privateKey', nonEmpty),
    subjectAltNames: f.opt('subjectAltNames', list(nonEmpty)),
    insecureSkipVerify: f.opt('insecureSkipVerify', bool) || undefined,
  });
  if (mode === 'MUTUAL' && (!tls.clientCertificate || !tls.privateKey)) n.fail('mode MUTUAL needs clientCertificate and privateKey');
  if (mode !== 'MUTUAL' && (tls.clientCertificate || tls.privateKey)) n.fail(`clientCertificate and privateKey are only for mode MUTUAL, not ${mode}`);
  if (mode === 'DISABLE' && (tls.caCertificates || tls.sni || tls.subjectAltNames || tls.insecureSkipVerify)) {
    n.fail('caCertificates, sni, subjectAltNames and insecureSkipVerify mean nothing with mode DISABLE');
  }
  // the mesh root and the workload certificate are the mesh's own under ISTIO_MUTUAL
  if (mode === 'ISTIO_MUTUAL' && (tls.caCertificates || tls.insecureSkipVerify)) n.fail('caCertificates and insecureSkipVerify are only for modes SIMPLE and MUTUAL');
  return tls;
};

const portTrafficPolicy: Read<PortTrafficPolicy> = (n) => {
  const f = fields(n, ['port', 'loadBalancer', 'connectionPool', 'outlierDetection', 'tls']);
  return defined({
    port: f.req('port', (p) => fields(p, ['number']).req('number', port)),
    loadBalancer: f.opt('loadBalancer', loadBalancer),
    connectionPool: f.opt('connectionPool', connectionPool),
    outlierDetection: f.opt('outlierDetection', outlierDetection),
    tls: f.opt('tls', clientTls),
  });
};

const retryBudget: Read<NonNullable<TrafficPolicy['retryBudget']>> = (n) => {
  const f = fields(n, ['percent', 'minRetryConcurrency', 'budgetInterval']);
  // Envoy's retry budget counts retries in flight; it has no interval in the API Tandem speaks
  if (f.has('budgetInterval')) n.at('budgetInterval').fail('not supported by Tandem: the budget counts retries in flight');
  return defined({
    percent: f.opt('percent', (p) => fields(p, ['value']).req('value', num(0, 100))),
    minRetryConcurrency: f.opt('minRetryConcurrency', int(0)) || undefined,
  });
};

const trafficPolicy: Read<TrafficPolicy> = (n) => {
  const f = fields(n, ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget']);
  // both need L4 proxying (an HTTP CONNECT tunnel, a PROXY protocol header before TLS)
  if (f.has('tunnel')) n.at('tunnel').fail('not supported by Tandem (no tunnelling through an HTTP proxy)');
  if (f.has('proxyProtocol')) n.at('proxyProtocol').fail('not supported by Tandem (no PROXY protocol on upstream connections)');
  const ports = f.opt('portLevelSettings', list(portTrafficPolicy));
  return defined({
    tls: f.opt('tls', clientTls),
    loadBalancer: f.opt('loadBalancer', loadBalancer),
    connectionPool: f.opt('connectionPool', connectionPool),
    outlierDetection: f.opt('outlierDetection', outlierDetection),
    retryBudget: f.opt('retryBudget', retryBudget),
    portLevelSettings: ports?.length ? ports : undefined,
  });
};

const subsetName: Read<string> = (n) => {
  const s = nonEmpty(n);
  return DNS_LABEL.test(s) ? s : n.fail(`must be a DNS label such as v1, got ${JSON.stringify(s)}`);
};

const subset: Read<Subset> = (n) => {
  const f = fields(n, ['name', 'labels', 'trafficPolicy']);
  return defined({
    name: f.req('name', subsetName),
    labels: f.opt('labels', strMap) ?? {},
    trafficPolicy: f.opt('trafficPolicy', trafficPolicy),
  });
};

export function destinationRule(spec: Node, ctx: Ctx): Omit<DestinationRule, 'name' | 'namespace' | 'source'> {
  const f = fields(spec, ['host', 'trafficPolicy', 'subsets', 'exportTo', 'workloadSelector']);
  f.opt('exportTo', list(str)); // everything is visible mesh-wide in Tandem
  // a wildcard is a pattern over full names, as in Istio: `*.local` stays `*.local`
  const ruleHost = f.req('host', (n) => {
    const h = host({ resolveHost: (x) => x }, { wildcard: true })(n);
    return h.startsWith('*') ? h : ctx.resolveHost(h);
  });
  const policy = f.opt('trafficPolicy', trafficPolicy);
  const subsets = f.opt('subsets', list(subset)) ?? [];
  subsets.forEach((s, i) => {
    if (subsets.findIndex((t) => t.name === s.name) !== i) {
      spec.at('subsets').at(i).at('name').fail(`duplicate subset ${JSON.stringify(s.name)}`);
    }
  });
  return defined({
    host: ruleHost,
    trafficPolicy: policy,
    subsets,
    // Istio: a selector without labels still makes the rule one for its own namespace's workloads only
    workloadSelector: f.opt('workloadSelector', (n) => fields(n, ['matchLabels']).opt('matchLabels', labelSelector) ?? {}),
  });
}
