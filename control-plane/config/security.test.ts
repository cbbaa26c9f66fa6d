import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { validateDocuments } from './validate';

type Kind = 'PeerAuthentication' | 'AuthorizationPolicy';

const doc = (kind: Kind, spec: unknown, apiVersion = 'security.istio.io/v1') => ({
  apiVersion,
  kind,
  metadata: { name: 'p', namespace: 'foo' },
  spec,
});
const pa = (spec: unknown) => doc('PeerAuthentication', spec);
const ap = (spec: unknown) => doc('AuthorizationPolicy', spec);

const accept = (...values: unknown[]) => validateDocuments(values.map((value, i) => ({ file: 'sec.yaml', doc: i, value })));

function refuse(value: unknown): ConfigError {
  try {
    accept(value);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('config was accepted');
}

const paModel = (spec: unknown) => {
  const { name, namespace, source, ...rest } = accept(pa(spec)).peerAuthentications[0];
  expect([name, namespace, source]).toEqual(['p', 'foo', { file: 'sec.yaml', doc: 0 }]);
  return rest;
};
const apModel = (spec: unknown) => {
  const { name, namespace, source, ...rest } = accept(ap(spec)).authorizationPolicies[0];
  expect([name, namespace, source]).toEqual(['p', 'foo', { file: 'sec.yaml', doc: 0 }]);
  return rest;
};

describe('PeerAuthentication', () => {
  it('reads selector, mode and portLevelMtls; UNSET and {} are "inherit"', () => {
    expect(
      paModel({
        selector: { matchLabels: { app: 'reviews' } },
        mtls: { mode: 'PERMISSIVE' },
        portLevelMtls: { 8080: { mode: 'DISABLE' }, '9090': { mode: 'UNSET' }, 9091: {}, '09092': { mode: 'STRICT' } },
      }),
    ).toStrictEqual({ selector: { app: 'reviews' }, mode: 'PERMISSIVE', portLevelMtls: { 8080: 'DISABLE', 9090: undefined, 9091: undefined, 9092: 'STRICT' } });
  });

  it.each([
    [{ mtls: { mode: 'STRICT' } }, { mode: 'STRICT' }],
    [{ mtls: { mode: 'PERMISSIVE' } }, { mode: 'PERMISSIVE' }],
    [{ mtls: { mode: 'DISABLE' } }, { mode: 'DISABLE' }],
    [{ mtls: { mode: 'UNSET' } }, {}],
    [{ mtls: {} }, {}],
    [{}, {}],
    [{ selector: { matchLabels: {} }, mtls: { mode: 'STRICT' } }, { mode: 'STRICT' }],
  ])('%j -> %j', (spec, model) => {
    expect(paModel(spec)).toStrictEqual(model);
  });

  it('accepts v1beta1', () => {
    expect(accept(doc('PeerAuthentication', {}, 'security.istio.io/v1beta1')).peerAuthentications).toHaveLength(1);
  });
});

const SOURCE = {
  principals: ['cluster.local/ns/default/sa/sleep', '*/sa/admin', 'cluster.local/ns/dev/*', '*'],
  notPrincipals: ['cluster.local/ns/default/sa/evil'],
  requestPrincipals: ['issuer/subject'],
  notRequestPrincipals: ['*'],
  namespaces: ['default', 'prod-*'],
  notNamespaces: ['*-test'],
  ipBlocks: ['10.0.0.0/8', '192.168.1.1', '2001:db8::/32', '::1'],
  notIpBlocks: ['10.1.0.0/16'],
  remoteIpBlocks: ['203.0.113.0/24'],
  notRemoteIpBlocks: ['203.0.113.7'],
};
const OPERATION = {
  hosts: ['httpbin.foo', '*.example.com'],
  notHosts: ['admin.example.com'],
  ports: ['8000', 9000],
  notPorts: ['9001'],
  methods: ['GET', 'HEAD'],
  notMethods: ['DELETE'],
  paths: ['/info*', '*/healthz', '/exact', '/users/{*}/info', '/files/{**}'],
  notPaths: ['/admin*'],
};
const WHEN = [
  { key: 'request.headers[X-Version]', values: ['v1'], notValues: ['v0*'] },
  { key: 'source.ip', values: ['10.0.0.1', '10.2.0.0/16'] },
  { key: 'remote.ip', notValues: ['fd00::/8'] },
  { key: 'source.namespace', values: ['default'] },
  { key: 'source.principal', values: ['cluster.local/ns/default/sa/sleep'] },
  { key: 'source.serviceAccount', values: ['default/sleep', 'sleep'] },
  { key: 'destination.ip', values: ['10.0.0.9'] },
  { key: 'destination.port', values: ['8000', 9000] },
  { key: 'connection.sni', values: ['*.svc.cluster.local'] },
  { key: 'request.auth.principal', values: ['issuer/subject'] },
  { key: 'request.auth.audiences', values: ['aud'] },
  { key: 'request.auth.presenter', notValues: ['presenter'] },
  { key: 'request.auth.claims[iss]', values: ['https://accounts.google.com'] },
  { key: 'request.auth.claims[nested][key]', values: ['v'] },
];

describe('AuthorizationPolicy', () => {
  it('reads every source, operation and condition field', () => {
    expect(
      apModel({
        selector: { matchLabels: { app: 'httpbin' } },
        action: 'ALLOW',
        rules: [
          { from: [{ source: SOURCE }, { source: { serviceAccounts: ['default/sleep', 'sleep'], notServiceAccounts: ['dev/x'] } }], to: [{ operation: OPERATION }], when: WHEN },
        ],
      }),
    ).toStrictEqual({
      selector: { app: 'httpbin' },
      action: 'ALLOW',
      rules: [
        {
          from: [SOURCE, { serviceAccounts: ['default/sleep', 'sleep'], notServiceAccounts: ['dev/x'] }],
          to: [{ ...OPERATION, ports: [8000, 9000], notPorts: [9001] }],
          when: WHEN.map((c) => (c.key === 'destination.port' ? { ...c, values: ['8000', '9000'] } : c)),
        },
      ],
    });
  });

  it.each([
    [{}, { action: 'ALLOW', rules: [] }],
    [{ rules: [] }, { action: 'ALLOW', rules: [] }],
    [{ action: 'DENY', rules: [{}] }, { action: 'DENY', rules: [{}] }],
    [{ action: 'AUDIT', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }, { action: 'AUDIT', rules: [{ to: [{ methods: ['POST'] }] }] }],
    // an empty list constrains nothing, as Istio reads it; an empty when is no condition
    [{ rules: [{ from: [{ source: { principals: [], namespaces: ['a'] } }], when: [] }] }, { action: 'ALLOW', rules: [{ from: [{ namespaces: ['a'] }] }] }],
    [{ selector: { matchLabels: {} } }, { action: 'ALLOW', rules: [] }],
  ])('%j -> %j', (spec, model) => {
    expect(apModel(spec)).toStrictEqual(model);
  });
});

const rule = (r: unknown) => ({ rules: [r] });
const from = (source: unknown) => rule({ from: [{ source }] });
const to = (operation: unknown) => rule({ to: [{ operation }] });
const when = (c: unknown) => rule({ when: [c] });

describe('refused security policies name file, document and field', () => {
  it.each<[string, Kind, unknown, string, RegExp]>([
    ['unknown mtls mode', 'PeerAuthentication', { mtls: { mode: 'OFF' } }, 'spec.mtls.mode', /must be one of STRICT, PERMISSIVE, DISABLE, UNSET/],
    ['unknown mtls field', 'PeerAuthentication', { mtls: { mode: 'STRICT', level: 1 } }, 'spec.mtls.level', /unknown field/],
    ['portLevelMtls without a selector', 'PeerAuthentication', { portLevelMtls: { 8080: { mode: 'DISABLE' } } }, 'spec.portLevelMtls', /requires a selector/],
    ['portLevelMtls with an empty selector', 'PeerAuthentication', { selector: { matchLabels: {} }, portLevelMtls: { 80: {} } }, 'spec.portLevelMtls', /requires a selector/],
    ['empty portLevelMtls', 'PeerAuthentication', { selector: { matchLabels: { a: 'b' } }, portLevelMtls: {} }, 'spec.portLevelMtls', /at least one port/],
    ['port 0', 'PeerAuthentication', { selector: { matchLabels: { a: 'b' } }, portLevelMtls: { 0: {} } }, 'spec.portLevelMtls["0"]', /1\.\.65535/],
    ['port 65536', 'PeerAuthentication', { selector: { matchLabels: { a: 'b' } }, portLevelMtls: { 65536: {} } }, 'spec.portLevelMtls["65536"]', /1\.\.65535/],
    ['hexadecimal port', 'PeerAuthentication', { selector: { matchLabels: { a: 'b' } }, portLevelMtls: { '0x50': {} } }, 'spec.portLevelMtls["0x50"]', /1\.\.65535/],
    ['named port', 'PeerAuthentication', { selector: { matchLabels: { a: 'b' } }, portLevelMtls: { http: {} } }, 'spec.portLevelMtls.http', /1\.\.65535/],
    ['wildcard selector', 'PeerAuthentication', { selector: { matchLabels: { app: 'rev*' } } }, 'spec.selector.matchLabels.app', /wildcards/],
    ['unknown PeerAuthentication field', 'PeerAuthentication', { targetRef: {} }, 'spec.targetRef', /unknown field/],
    ['targetRef', 'AuthorizationPolicy', { targetRef: { kind: 'Gateway', name: 'gw' } }, 'spec.targetRef', /not supported by Tandem \(no waypoints\/gateways\)/],
    ['targetRefs', 'AuthorizationPolicy', { targetRefs: [{ kind: 'Service', name: 's' }] }, 'spec.targetRefs', /not supported by Tandem/],
    ['CUSTOM action', 'AuthorizationPolicy', { action: 'CUSTOM', rules: [{}] }, 'spec.action', /CUSTOM is not supported by Tandem/],
    ['provider', 'AuthorizationPolicy', { provider: { name: 'opa' }, rules: [{}] }, 'spec.provider', /not supported by Tandem/],
    ['unknown action', 'AuthorizationPolicy', { action: 'REJECT' }, 'spec.action', /must be one of ALLOW, DENY, AUDIT/],
    ['DENY without rules', 'AuthorizationPolicy', { action: 'DENY' }, 'spec.rules', /would never deny/],
    ['DENY with rules: []', 'AuthorizationPolicy', { action: 'DENY', rules: [] }, 'spec.rules', /would never deny/],
    ['wildcard selector', 'AuthorizationPolicy', { selector: { matchLabels: { app: '*' } } }, 'spec.selector.matchLabels.app', /wildcards/],
    ['unknown rule field', 'AuthorizationPolicy', rule({ too: [] }), 'spec.rules[0].too', /unknown field/],
    ['from: []', 'AuthorizationPolicy', rule({ from: [] }), 'spec.rules[0].from', /must not be empty/],
    ['from without source', 'AuthorizationPolicy', rule({ from: [{}] }), 'spec.rules[0].from[0].source', /is required/],
    ['empty source', 'AuthorizationPolicy', from({}), 'spec.rules[0].from[0].source', /must not be empty/],
    ['source of empty lists', 'AuthorizationPolicy', from({ principals: [], ipBlocks: [] }), 'spec.rules[0].from[0].source', /must not be empty/],
    ['unknown source field', 'AuthorizationPolicy', from({ user: ['x'] }), 'spec.rules[0].from[0].source.user', /unknown field/],
    ['empty principal', 'AuthorizationPolicy', from({ principals: [''] }), 'spec.rules[0].from[0].source.principals[0]', /must not be empty/],
    ['inner wildcard', 'AuthorizationPolicy', from({ principals: ['cluster.local/*/sa/x'] }), 'spec.rules[0].from[0].source.principals[0]', /only allowed alone, as a prefix or as a suffix/],
    ['wildcards at both ends', 'AuthorizationPolicy', from({ namespaces: ['*dev*'] }), 'spec.rules[0].from[0].source.namespaces[0]', /only allowed/],
    ['principal not a string', 'AuthorizationPolicy', from({ principals: [7] }), 'spec.rules[0].from[0].source.principals[0]', /must be a string/],
    ['CIDR prefix too long', 'AuthorizationPolicy', from({ ipBlocks: ['10.0.0.0/33'] }), 'spec.rules[0].from[0].source.ipBlocks[0]', /bad CIDR range/],
    ['IPv6 prefix too long', 'AuthorizationPolicy', from({ notIpBlocks: ['::/129'] }), 'spec.rules[0].from[0].source.notIpBlocks[0]', /bad CIDR range/],
    ['bad IP', 'AuthorizationPolicy', from({ remoteIpBlocks: ['1.2.3'] }), 'spec.rules[0].from[0].source.remoteIpBlocks[0]', /bad IP address/],
    ['IP with a zone', 'AuthorizationPolicy', from({ notRemoteIpBlocks: ['fe80::1%eth0'] }), 'spec.rules[0].from[0].source.notRemoteIpBlocks[0]', /bad IP address/],
    ['two slashes', 'AuthorizationPolicy', from({ ipBlocks: ['10.0.0.0/8/1'] }), 'spec.rules[0].from[0].source.ipBlocks[0]', /bad CIDR range/],
    ['service account with two slashes', 'AuthorizationPolicy', from({ serviceAccounts: ['a/b/c'] }), 'spec.rules[0].from[0].source.serviceAccounts[0]', /"namespace\/serviceAccount"/],
    ['service account without a name', 'AuthorizationPolicy', from({ notServiceAccounts: ['ns/'] }), 'spec.rules[0].from[0].source.notServiceAccounts[0]', /"namespace\/serviceAccount"/],
    ['service account wildcard', 'AuthorizationPolicy', from({ serviceAccounts: ['ns/*'] }), 'spec.rules[0].from[0].source.serviceAccounts[0]', /wildcards are not allowed/],
    ['17 service accounts', 'AuthorizationPolicy', from({ serviceAccounts: Array.from({ length: 17 }, (_, i) => `sa${i}`) }), 'spec.rules[0].from[0].source.serviceAccounts', /more than 16/],
    ['service accounts with principals', 'AuthorizationPolicy', from({ serviceAccounts: ['a'], principals: ['b'] }), 'spec.rules[0].from[0].source', /cannot be set with namespaces or principals/],
    ['service accounts with namespaces', 'AuthorizationPolicy', from({ notServiceAccounts: ['a'], notNamespaces: ['b'] }), 'spec.rules[0].from[0].source', /cannot be set with/],
    ['to: []', 'AuthorizationPolicy', rule({ to: [] }), 'spec.rules[0].to', /must not be empty/],
    ['to without operation', 'AuthorizationPolicy', rule({ to: [{}] }), 'spec.rules[0].to[0].operation', /is required/],
    ['empty operation', 'AuthorizationPolicy', to({}), 'spec.rules[0].to[0].operation', /must not be empty/],
    ['unknown operation field', 'AuthorizationPolicy', to({ verbs: ['GET'] }), 'spec.rules[0].to[0].operation.verbs', /unknown field/],
    ['port 0', 'AuthorizationPolicy', to({ ports: ['0'] }), 'spec.rules[0].to[0].operation.ports[0]', /bad port "0"/],
    ['port 65536', 'AuthorizationPolicy', to({ notPorts: [65536] }), 'spec.rules[0].to[0].operation.notPorts[0]', /bad port 65536/],
    ['named port', 'AuthorizationPolicy', to({ ports: ['http'] }), 'spec.rules[0].to[0].operation.ports[0]', /bad port "http"/],
    ['fractional port', 'AuthorizationPolicy', to({ ports: [80.5] }), 'spec.rules[0].to[0].operation.ports[0]', /bad port/],
    ['empty method', 'AuthorizationPolicy', to({ methods: [''] }), 'spec.rules[0].to[0].operation.methods[0]', /must not be empty/],
    ['host inner wildcard', 'AuthorizationPolicy', to({ notHosts: ['a.*.com'] }), 'spec.rules[0].to[0].operation.notHosts[0]', /only allowed/],
    ['{**} not last', 'AuthorizationPolicy', to({ paths: ['/a/{**}/b'] }), 'spec.rules[0].to[0].operation.paths[0]', /\{\*\*\} must be the last operator/],
    ['unknown template', 'AuthorizationPolicy', to({ notPaths: ['/a/{id}'] }), 'spec.rules[0].to[0].operation.notPaths[0]', /neither \{\*\}, \{\*\*\} nor a literal/],
    ['template beside a wildcard', 'AuthorizationPolicy', to({ paths: ['/a*/{*}'] }), 'spec.rules[0].to[0].operation.paths[0]', /neither/],
    ['unknown when key', 'AuthorizationPolicy', when({ key: 'source.user', values: ['x'] }), 'spec.rules[0].when[0].key', /unknown attribute "source.user"/],
    ['when key destination.namespace', 'AuthorizationPolicy', when({ key: 'destination.namespace', values: ['x'] }), 'spec.rules[0].when[0].key', /replaced by metadata\.namespace/],
    ['when key destination.labels', 'AuthorizationPolicy', when({ key: 'destination.labels[app]', values: ['x'] }), 'spec.rules[0].when[0].key', /replaced by the workload selector/],
    ['when key experimental', 'AuthorizationPolicy', when({ key: 'experimental.envoy.filters.a[b]', values: ['x'] }), 'spec.rules[0].when[0].key', /not supported by Tandem/],
    ['when key inline headers', 'AuthorizationPolicy', when({ key: 'request.experimental.inline.headers[a]', values: ['x'] }), 'spec.rules[0].when[0].key', /not supported by Tandem/],
    ['when header without a name', 'AuthorizationPolicy', when({ key: 'request.headers[]', values: ['x'] }), 'spec.rules[0].when[0].key', /invalid header name/],
    ['when claims without a name', 'AuthorizationPolicy', when({ key: 'request.auth.claims[]', values: ['x'] }), 'spec.rules[0].when[0].key', /unknown attribute/],
    ['when without values', 'AuthorizationPolicy', when({ key: 'source.ip' }), 'spec.rules[0].when[0]', /at least one of values or notValues must be set for key source.ip/],
    ['when with empty values', 'AuthorizationPolicy', when({ key: 'source.ip', values: [], notValues: [] }), 'spec.rules[0].when[0]', /at least one of values or notValues/],
    ['when without a key', 'AuthorizationPolicy', when({ values: ['x'] }), 'spec.rules[0].when[0].key', /is required/],
    ['when bad source.ip', 'AuthorizationPolicy', when({ key: 'source.ip', values: ['10.0.0.256'] }), 'spec.rules[0].when[0].values[0]', /bad IP address/],
    ['when bad destination.port', 'AuthorizationPolicy', when({ key: 'destination.port', notValues: ['x'] }), 'spec.rules[0].when[0].notValues[0]', /bad port/],
    ['when bad service account', 'AuthorizationPolicy', when({ key: 'source.serviceAccount', values: ['*'] }), 'spec.rules[0].when[0].values[0]', /wildcards are not allowed/],
    ['when unknown field', 'AuthorizationPolicy', when({ key: 'source.ip', value: ['x'] }), 'spec.rules[0].when[0].value', /unknown field/],
  ])('%s', (_name, kind, spec, field, detail) => {
    const e = refuse(doc(kind, spec));
    expect(e.file).toBe('sec.yaml');
    expect(e.doc).toBe(0);
    expect(e.field).toBe(field);
    expect(e.detail).toMatch(detail);
    expect(e.message).toContain(`sec.yaml: document 0 (${kind} foo/p): ${field}: `);
  });
});
