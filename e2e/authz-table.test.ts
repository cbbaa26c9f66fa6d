// Istio's documented AuthorizationPolicy examples, each run through the whole pipeline a
// request meets: YAML -> validateDocuments -> rbacHttpFilters -> HttpFilter bytes on the
// wire -> decodeRbacFilter -> compileAuthorizer -> check. No processes.
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { validateDocuments } from '../control-plane/config/validate';
import { rbacHttpFilters } from '../control-plane/xds/translate-rbac';
import { decode, encode, type AnyMessage } from '../proto/any';
import { decodeRbacFilter } from '../proto/decode/decode-rbac';
import { compileAuthorizer, type AuthzRequest } from '../sidecar/runtime/authz';

const HTTP_FILTER = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter';

interface Workload {
  namespace: string;
  labels: Record<string, string>;
}

interface Req {
  method?: string;
  path?: string;
  authority?: string;
  headers?: Record<string, string>;
  /** Istio's short form (ns/foo/sa/bar under cluster.local), or null for plaintext */
  from?: string | null;
  sourceIp?: string;
  remoteIp?: string;
  port?: number;
  sni?: string;
}

interface Row {
  name: string;
  yaml: string;
  workload?: Workload;
  req?: Req;
  allowed: boolean;
  /** the policy Envoy would name (ns[..]-policy[..]-rule[..]) */
  policy?: string;
}

const HTTPBIN: Workload = { namespace: 'foo', labels: { app: 'httpbin', version: 'v1' } };

function request(r: Req = {}): AuthzRequest {
  const headers: Record<string, string> = { ...r.headers };
  const req: AuthzRequest = {
    method: r.method ?? 'GET',
    path: r.path ?? '/',
    authority: r.authority ?? 'httpbin.foo:8000',
    header: (name) => (name === ':method' ? req.method : name === ':path' ? req.path : name === ':authority' ? req.authority : headers[name]),
    sourceIp: r.sourceIp ?? '10.0.0.2',
    remoteIp: r.remoteIp ?? r.sourceIp ?? '10.0.0.2',
    destinationIp: '10.0.0.9',
    destinationPort: r.port ?? 8000,
    sni: r.sni,
  };
  const from = r.from === undefined ? 'ns/default/sa/sleep' : r.from;
  if (from !== null) req.peerPrincipal = `spiffe://cluster.local/${from}`;
  return req;
}

function authorize(row: Row): { allowed: boolean; policy?: string } {
  const docs = parseAllDocuments(row.yaml).map((d, doc) => ({ file: 'authz.yaml', doc, value: d.toJS() as unknown }));
  const config = validateDocuments(docs);
  const filters = rbacHttpFilters(config.authorizationPolicies, row.workload ?? HTTPBIN, { trustDomain: 'cluster.local' });
  const models = filters.map((f, i) => {
    // across the wire as the listener carries it: an HttpFilter whose typed_config is an Any
    const wire = decode<{ name: string; typed_config: AnyMessage }>(HTTP_FILTER, encode(HTTP_FILTER, f));
    expect(wire.name).toBe('envoy.filters.http.rbac');
    return decodeRbacFilter(wire.typed_config, 'inbound', `http_filters[${i}].typed_config`);
  });
  return compileAuthorizer(models).check(request(row.req));
}

const policy = (name: string, spec: string, ns = 'foo'): string =>
  `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n${spec
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}\n---\n`;

const ALLOW_NOTHING = policy('allow-nothing', '{}');
const ALLOW_NOTHING_SPEC = `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: allow-nothing, namespace: foo}\nspec: {}\n`;
const DENY_ALL = policy('deny-all', 'action: DENY\nrules: [{}]');
const ALLOW_ALL = policy('allow-all', 'rules: [{}]');
const SLEEP_INFO = policy(
  'httpbin',
  `selector: {matchLabels: {app: httpbin}}
action: ALLOW
rules:
- from:
  - source: {principals: ["cluster.local/ns/default/sa/sleep"]}
  to:
  - operation: {methods: ["GET"], paths: ["/info*"]}`,
);
const NS_ONLY = policy('ns', 'rules: [{from: [{source: {namespaces: ["foo", "prod-*"]}}]}]');
const DENY_OUTSIDE_FOO = policy('deny-outside', 'action: DENY\nrules: [{from: [{source: {notNamespaces: ["foo"]}}]}]');
const IP_BLOCKS = policy('ips', 'rules: [{from: [{source: {ipBlocks: ["1.2.3.4", "5.6.7.0/24", "2001:db8::/32"]}}]}]');
const DENY_IPS = policy('deny-ips', 'action: DENY\nrules: [{from: [{source: {notIpBlocks: ["10.0.0.0/8"]}}]}]');
const REMOTE_IPS = policy('remote', 'rules: [{from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]}]');
const PATHS = policy('paths', 'rules: [{to: [{operation: {paths: ["/api/*", "*/healthz", "/ip"]}}]}]');
const TEMPLATE = policy('template', 'rules: [{to: [{operation: {paths: ["/users/{*}/info", "/files/{**}"]}}]}]');
const NOT_PATHS = policy('not-admin', 'rules: [{to: [{operation: {notPaths: ["/admin*"]}}]}]');
const METHODS = policy('read-only', 'rules: [{to: [{operation: {methods: ["GET", "HEAD"]}}]}]');
const PORTS = policy('ports', 'rules: [{to: [{operation: {ports: ["8000", 9001]}}]}]');
const HOSTS = policy('hosts', 'rules: [{to: [{operation: {hosts: ["httpbin.foo:8000", "*.example.com"]}}]}]');
const HEADER_VERSION = policy('version', 'rules: [{when: [{key: "request.headers[version]", values: ["v1", "v2"]}]}]');
const SOURCE_NS = policy('source-ns', 'rules: [{when: [{key: source.namespace, values: ["default"]}]}]');
const ALLOW_GET_DENY_ADMIN =
  policy('allow-get', 'rules: [{to: [{operation: {methods: [GET]}}]}]') +
  policy('deny-admin', 'action: DENY\nrules: [{to: [{operation: {paths: ["/admin*"]}}]}]');
const JWT_ANY = policy('jwt', 'rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]');
const REQUIRE_JWT = policy('require-jwt', 'action: DENY\nrules: [{from: [{source: {notRequestPrincipals: ["*"]}}]}]');
const DENY_JWT_USER = policy('deny-jwt', 'action: DENY\nrules: [{from: [{source: {requestPrincipals: ["issuer/user"]}}]}]');
const CLAIMS = policy('claims', 'rules: [{when: [{key: "request.auth.claims[iss]", values: ["https://accounts.google.com"]}]}]');
const NOT_CLAIMS = policy('not-claims', 'rules: [{when: [{key: "request.auth.claims[groups]", notValues: ["admin"]}]}]');
const OTHER_APP = policy('other', 'selector: {matchLabels: {app: reviews}}');
const MESH_ALLOW_NOTHING = policy('global', '{}', 'istio-system');
const MESH_SELECTOR = policy('mesh-httpbin', 'selector: {matchLabels: {app: httpbin}}\naction: DENY\nrules: [{to: [{operation: {methods: [DELETE]}}]}]', 'istio-system');
const AUDIT = policy('audit', 'action: AUDIT\nrules: [{}]');
const ANY_PEER = policy('mtls-only', 'rules: [{from: [{source: {principals: ["*"]}}]}]');
const NOT_PRINCIPALS = policy('not-sleep', 'action: DENY\nrules: [{from: [{source: {notPrincipals: ["cluster.local/ns/default/*"]}}]}]');
const SERVICE_ACCOUNTS = policy('sa', 'rules: [{from: [{source: {serviceAccounts: ["default/sleep", "httpbin"]}}]}]');
const PORT_CONDITION = policy('no-9000', 'action: DENY\nrules: [{when: [{key: destination.port, notValues: ["8000"]}]}]');
const SNI = policy('sni', 'rules: [{when: [{key: connection.sni, values: ["*.foo.svc.cluster.local"]}]}]');
const TWO_FROMS = policy(
  'two-froms',
  `rules:
- from:
  - source: {principals: ["cluster.local/ns/default/sa/sleep"]}
  - source: {namespaces: ["dev"]}
  to:
  - operation: {methods: ["GET"]}`,
);

const rows: Row[] = [
  { name: 'no policy: everything is allowed', yaml: '', allowed: true },
  { name: 'allow-nothing (spec: {}) denies all', yaml: ALLOW_NOTHING_SPEC, allowed: false },
  { name: 'allow-nothing in the root namespace denies in every namespace', yaml: MESH_ALLOW_NOTHING, allowed: false },
  { name: 'deny-all (DENY, rules: [{}]) denies all', yaml: DENY_ALL, allowed: false, policy: 'ns[foo]-policy[deny-all]-rule[0]' },
  { name: 'allow-all (rules: [{}]) allows all', yaml: ALLOW_ALL, allowed: true, policy: 'ns[foo]-policy[allow-all]-rule[0]' },
  { name: 'allow-all beside allow-nothing: one matching ALLOW policy is enough', yaml: ALLOW_ALL + ALLOW_NOTHING, allowed: true },
  { name: 'deny-all overrides allow-all', yaml: ALLOW_ALL + DENY_ALL, allowed: false, policy: 'ns[foo]-policy[deny-all]-rule[0]' },
  { name: 'sleep GETs /info', yaml: SLEEP_INFO, req: { path: '/info' }, allowed: true, policy: 'ns[foo]-policy[httpbin]-rule[0]' },
  { name: 'sleep GETs /info/x?q=1 (prefix, query ignored)', yaml: SLEEP_INFO, req: { path: '/info/x?q=1' }, allowed: true },
  { name: 'sleep POSTs /info: wrong method', yaml: SLEEP_INFO, req: { method: 'POST', path: '/info' }, allowed: false },
  { name: 'sleep GETs /status: wrong path', yaml: SLEEP_INFO, req: { path: '/status' }, allowed: false },
  { name: 'another service account GETs /info', yaml: SLEEP_INFO, req: { path: '/info', from: 'ns/default/sa/other' }, allowed: false },
  { name: 'plaintext GETs /info: no principal', yaml: SLEEP_INFO, req: { path: '/info', from: null }, allowed: false },
  { name: 'namespaces: from foo', yaml: NS_ONLY, req: { from: 'ns/foo/sa/any' }, allowed: true },
  { name: 'namespaces: from prod-eu (prefix wildcard)', yaml: NS_ONLY, req: { from: 'ns/prod-eu/sa/any' }, allowed: true },
  { name: 'namespaces: from bar', yaml: NS_ONLY, req: { from: 'ns/bar/sa/any' }, allowed: false },
  { name: 'namespaces: plaintext has no namespace', yaml: NS_ONLY, req: { from: null }, allowed: false },
  { name: 'notNamespaces DENY: from bar is denied', yaml: DENY_OUTSIDE_FOO, req: { from: 'ns/bar/sa/x' }, allowed: false },
  { name: 'notNamespaces DENY: from foo passes', yaml: DENY_OUTSIDE_FOO, req: { from: 'ns/foo/sa/x' }, allowed: true },
  { name: 'notNamespaces DENY: plaintext is denied', yaml: DENY_OUTSIDE_FOO, req: { from: null }, allowed: false },
  { name: 'ipBlocks: a listed address', yaml: IP_BLOCKS, req: { sourceIp: '1.2.3.4' }, allowed: true },
  { name: 'ipBlocks: inside a /24', yaml: IP_BLOCKS, req: { sourceIp: '5.6.7.200' }, allowed: true },
  { name: 'ipBlocks: an IPv4-mapped peer inside the /24', yaml: IP_BLOCKS, req: { sourceIp: '::ffff:5.6.7.8' }, allowed: true },
  { name: 'ipBlocks: IPv6 inside 2001:db8::/32', yaml: IP_BLOCKS, req: { sourceIp: '2001:db8:1::7' }, allowed: true },
  { name: 'ipBlocks: outside', yaml: IP_BLOCKS, req: { sourceIp: '5.6.8.1' }, allowed: false },
  { name: 'notIpBlocks DENY: outside 10/8 is denied', yaml: DENY_IPS, req: { sourceIp: '192.168.1.1' }, allowed: false },
  { name: 'notIpBlocks DENY: inside 10/8 passes', yaml: DENY_IPS, req: { sourceIp: '10.1.2.3' }, allowed: true },
  { name: 'remoteIpBlocks: the original client, not the peer', yaml: REMOTE_IPS, req: { sourceIp: '10.0.0.2', remoteIp: '203.0.113.9' }, allowed: true },
  { name: 'remoteIpBlocks: peer address alone does not count', yaml: REMOTE_IPS, req: { sourceIp: '203.0.113.9', remoteIp: '10.0.0.2' }, allowed: false },
  { name: 'paths: prefix /api/*', yaml: PATHS, req: { path: '/api/v1/users' }, allowed: true },
  { name: 'paths: suffix */healthz', yaml: PATHS, req: { path: '/app/healthz' }, allowed: true },
  { name: 'paths: exact /ip with a query', yaml: PATHS, req: { path: '/ip?format=json' }, allowed: true },
  { name: 'paths: /ip/x is not /ip', yaml: PATHS, req: { path: '/ip/x' }, allowed: false },
  { name: 'paths: /api without the slash', yaml: PATHS, req: { path: '/api' }, allowed: false },
  { name: 'path template {*}: one segment', yaml: TEMPLATE, req: { path: '/users/42/info' }, allowed: true },
  { name: 'path template {*}: not two segments', yaml: TEMPLATE, req: { path: '/users/4/2/info' }, allowed: false },
  { name: 'path template {**}: the rest', yaml: TEMPLATE, req: { path: '/files/a/b/c.txt' }, allowed: true },
  { name: 'notPaths: /admin/x is excluded', yaml: NOT_PATHS, req: { path: '/admin/x' }, allowed: false },
  { name: 'notPaths: /public is allowed', yaml: NOT_PATHS, req: { path: '/public' }, allowed: true },
  { name: 'methods: HEAD allowed', yaml: METHODS, req: { method: 'HEAD' }, allowed: true },
  { name: 'methods: POST denied', yaml: METHODS, req: { method: 'POST' }, allowed: false },
  { name: 'ports: 8000 allowed', yaml: PORTS, allowed: true },
  { name: 'ports: 9001 given as a number', yaml: PORTS, req: { port: 9001 }, allowed: true },
  { name: 'ports: 9000 denied', yaml: PORTS, req: { port: 9000 }, allowed: false },
  { name: 'hosts: case-insensitive', yaml: HOSTS, req: { authority: 'HTTPBIN.foo:8000' }, allowed: true },
  { name: 'hosts: suffix wildcard', yaml: HOSTS, req: { authority: 'api.example.com' }, allowed: true },
  { name: 'hosts: other host', yaml: HOSTS, req: { authority: 'httpbin.foo' }, allowed: false },
  { name: 'when request.headers[version]: v2', yaml: HEADER_VERSION, req: { headers: { version: 'v2' } }, allowed: true },
  { name: 'when request.headers[version]: v3', yaml: HEADER_VERSION, req: { headers: { version: 'v3' } }, allowed: false },
  { name: 'when request.headers[version]: missing', yaml: HEADER_VERSION, allowed: false },
  { name: 'when source.namespace: default', yaml: SOURCE_NS, allowed: true },
  { name: 'when source.namespace: foo', yaml: SOURCE_NS, req: { from: 'ns/foo/sa/sleep' }, allowed: false },
  { name: 'DENY /admin overrides ALLOW GET', yaml: ALLOW_GET_DENY_ADMIN, req: { path: '/admin/users' }, allowed: false, policy: 'ns[foo]-policy[deny-admin]-rule[0]' },
  { name: 'ALLOW GET still applies beside DENY', yaml: ALLOW_GET_DENY_ADMIN, req: { path: '/users' }, allowed: true, policy: 'ns[foo]-policy[allow-get]-rule[0]' },
  { name: 'requestPrincipals ["*"] without a JWT never match', yaml: JWT_ANY, allowed: false },
  { name: 'DENY notRequestPrincipals ["*"] denies requests without a JWT', yaml: REQUIRE_JWT, allowed: false },
  { name: 'DENY requestPrincipals denies nothing without a JWT', yaml: DENY_JWT_USER, allowed: true },
  { name: 'when request.auth.claims values never match without a JWT', yaml: CLAIMS, allowed: false },
  { name: 'when request.auth.claims notValues always match without a JWT', yaml: NOT_CLAIMS, allowed: true },
  { name: 'a selector that does not match: the policy does not apply', yaml: OTHER_APP, allowed: true },
  { name: 'a policy in another namespace does not apply', yaml: policy('elsewhere', '{}', 'bar'), allowed: true },
  { name: 'a root-namespace policy with a selector applies in every namespace', yaml: MESH_SELECTOR, req: { method: 'DELETE' }, allowed: false },
  { name: 'a root-namespace selector policy spares other workloads', yaml: MESH_SELECTOR, workload: { namespace: 'bar', labels: { app: 'other' } }, req: { method: 'DELETE' }, allowed: true },
  { name: 'AUDIT never denies', yaml: AUDIT, allowed: true },
  { name: 'AUDIT does not count as an ALLOW policy', yaml: AUDIT + ALLOW_NOTHING, allowed: false },
  { name: 'principals ["*"]: any mTLS peer', yaml: ANY_PEER, allowed: true },
  { name: 'principals ["*"]: plaintext denied', yaml: ANY_PEER, req: { from: null }, allowed: false },
  { name: 'notPrincipals DENY: outside default/* denied', yaml: NOT_PRINCIPALS, req: { from: 'ns/bar/sa/sleep' }, allowed: false },
  { name: 'notPrincipals DENY: default/* passes', yaml: NOT_PRINCIPALS, allowed: true },
  { name: 'serviceAccounts: default/sleep', yaml: SERVICE_ACCOUNTS, allowed: true },
  { name: 'serviceAccounts: bare name is in the policy namespace', yaml: SERVICE_ACCOUNTS, req: { from: 'ns/foo/sa/httpbin' }, allowed: true },
  { name: 'serviceAccounts: sleep2 is not sleep', yaml: SERVICE_ACCOUNTS, req: { from: 'ns/default/sa/sleep2' }, allowed: false },
  { name: 'when destination.port notValues: 9000 denied', yaml: PORT_CONDITION, req: { port: 9000 }, allowed: false },
  { name: 'when destination.port notValues: 8000 passes', yaml: PORT_CONDITION, allowed: true },
  { name: 'when connection.sni: matching suffix', yaml: SNI, req: { sni: 'httpbin.foo.svc.cluster.local' }, allowed: true },
  { name: 'when connection.sni: none', yaml: SNI, allowed: false },
  { name: 'two sources: the second (namespace dev) suffices', yaml: TWO_FROMS, req: { from: 'ns/dev/sa/x' }, allowed: true },
  { name: 'two sources: neither', yaml: TWO_FROMS, req: { from: 'ns/prod/sa/x' }, allowed: false },
];

describe('Istio AuthorizationPolicy examples, end to end through Envoy RBAC', () => {
  it.each(rows)('$name', (row) => {
    const d = authorize(row);
    expect(d.allowed).toBe(row.allowed);
    if (row.policy) expect(d.policy).toBe(row.policy);
  });

  it('has the rows it promises', () => {
    expect(rows.length).toBeGreaterThanOrEqual(30);
  });
});
