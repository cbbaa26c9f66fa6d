// DestinationRule: host, trafficPolicy and subsets.

import type { ClientTls, ConsistentHash, DestinationRule, Subset, TrafficPolicy } from '../model/types';
import { cookieName, DNS_LABEL, headerName, host, type Ctx } from './common';
import { labelSelector } from './selectors';
import { bool, defined, duration, fields, int, list, nonEmpty, oneOf, str, strMap, type Node, type Read } from './reader';

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
      const g = fields(c, ['name', 'path', 'ttl']);
      return defined({ name: g.req('name', (x) => cookieName(nonEmpty(x), x)), path: g.opt('path', nonEmpty), ttlMs: g.opt('ttl', duration()) });
    }),
    useSourceIp: f.opt('useSourceIp', bool) || undefined,
    httpQueryParameterName: f.opt('httpQueryParameterName', nonEmpty),
  });
  if (Object.keys(hash).length !== 1) n.fail('must have exactly one of httpHeaderName, httpCookie, useSourceIp: true, httpQueryParameterName');
  return maglev ? { ...hash, maglev: true } : hash;
};

const loadBalancer: Read<NonNullable<TrafficPolicy['loadBalancer']>> = (n) => {
  const f = fields(n, ['simple', 'consistentHash']);
  if (f.has('simple') && f.has('consistentHash')) n.fail('must have either simple or consistentHash, not both');
  const simple = f.opt('simple', oneOf('ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'LEAST_CONN'));
  return defined({
    // LEAST_CONN is Istio's deprecated spelling of LEAST_REQUEST.
    simple: simple === 'LEAST_CONN' ? 'LEAST_REQUEST' : simple,
    consistentHash: f.opt('consistentHash', consistentHash),
  });
};

const connectionPool: Read<NonNullable<TrafficPolicy['connectionPool']>> = (n) => {
  const f = fields(n, ['tcp', 'http']);
  return defined({
    tcp: f.opt('tcp', (t) => {
      const g = fields(t, ['maxConnections', 'connectTimeout']);
      return defined({
        maxConnections: g.opt('maxConnections', int(0)),
        connectTimeoutMs: g.opt('connectTimeout', duration({ positive: true })),
      });
    }),
    http: f.opt('http', (h) => {
      const g = fields(h, ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries']);
      return defined({
        http1MaxPendingRequests: g.opt('http1MaxPendingRequests', int(0)),
        http2MaxRequests: g.opt('http2MaxRequests', int(0)),
        maxRequestsPerConnection: g.opt('maxRequestsPerConnection', int(0)),
        maxRetries: g.opt('maxRetries', int(0)),
      });
    }),
  });
};

const outlierDetection: Read<NonNullable<TrafficPolicy['outlierDetection']>> = (n) => {
  const f = fields(n, [
    'consecutive5xxErrors', 'consecutiveGatewayErrors', 'consecutiveErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent',
    'minHealthPercent', 'splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures',
  ]);
  if (f.has('consecutiveErrors') && f.has('consecutiveGatewayErrors')) n.fail('has both consecutiveErrors (deprecated) and consecutiveGatewayErrors; keep consecutiveGatewayErrors');
  if (f.opt('splitExternalLocalOriginErrors', bool)) n.at('splitExternalLocalOriginErrors').fail('not supported by Tandem: local-origin failures count with the 5xx');
  f.opt('consecutiveLocalOriginFailures', int(0));
  return defined({
    consecutive5xxErrors: f.opt('consecutive5xxErrors', int(0)),
    // Istio reads the deprecated consecutiveErrors as gateway errors (502, 503, 504)
    consecutiveGatewayErrors: f.opt('consecutiveGatewayErrors', int(0)) ?? f.opt('consecutiveErrors', int(0)),
    minHealthPercent: f.opt('minHealthPercent', int(0, 100)),
    intervalMs: f.opt('interval', duration({ positive: true })),
    baseEjectionTimeMs: f.opt('baseEjectionTime', duration({ positive: true })),
    maxEjectionPercent: f.opt('maxEjectionPercent', int(0, 100)),
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

const trafficPolicy: Read<TrafficPolicy> = (n) => {
  const f = fields(n, ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls']);
  return defined({
    tls: f.opt('tls', clientTls),
    loadBalancer: f.opt('loadBalancer', loadBalancer),
    connectionPool: f.opt('connectionPool', connectionPool),
    outlierDetection: f.opt('outlierDetection', outlierDetection),
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
  const ruleHost = f.req('host', host(ctx));
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
