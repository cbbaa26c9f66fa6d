import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ConfigError } from './errors';
import type { SkippedDocument } from './kubernetes';
import { parseConfigText } from './load';
import { validateDocuments } from './validate';

const FULL = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  annotations:
    tandem.io/split-key: "header:X-User-Id"
spec:
  hosts: [reviews]
  http:
  - name: jason
    match:
    - uri: {prefix: /api}
      headers:
        X-End-User: {exact: jason}
      method: {regex: "GET|HEAD"}
      queryParams:
        debug: {exact: "1"}
    route:
    - destination: {host: reviews, subset: v2, port: {number: 9080}}
    timeout: 1.5s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx, connect-failure,503"}
    fault:
      delay: {fixedDelay: 100ms, percentage: {value: 10}}
      abort: {httpStatus: 503}
    headers:
      request:
        set: {X-Canary: "yes"}
        remove: [X-Debug]
    rewrite: {uri: /v2/api}
  - route:
    - destination: {host: reviews.default.svc.cluster.local, subset: v1}
      weight: 90
      headers: {response: {add: {x-version: v1}}}
    - destination: {host: reviews, subset: v2}
      weight: 10
    mirror: {host: reviews, subset: v3}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 1000, maxRequestsPerConnection: 0, maxRetries: 3}
    outlierDetection:
      consecutive5xxErrors: 5
      consecutiveGatewayErrors: 2
      interval: 10s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpCookie: {name: user, ttl: 0s}}
  - name: v3
    labels: {version: v3}
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: httpbin, namespace: shop}
spec:
  hosts: [httpbin.org, payments]
  location: MESH_EXTERNAL
  ports:
  - {number: 80, name: http, protocol: http}
  - {number: 9000, name: grpc-api}
  - {number: 5432, name: db}
  endpoints:
  - address: 127.0.0.1
    ports: {http: 8081}
    labels: {zone: a}
  - address: "::1"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: shop}
spec:
  hosts: [httpbin.org]
  http:
  - route:
    - destination: {host: httpbin.org}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: strict}
spec:
  selector: {matchLabels: {app: reviews}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/frontend", "*/sa/admin"]}
    to:
    - operation: {methods: [GET], paths: ["/api/*"]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: locked}
spec:
  action: DENY
  rules: [{}]
---
`;

describe('a valid config with every kind', () => {
  const c = parseConfigText(FULL, 'mesh.yaml');

  it('reads VirtualService routes, matches, defaults and durations', () => {
    expect(c.virtualServices).toHaveLength(2);
    const vs = c.virtualServices[0];
    expect(vs).toMatchObject({
      name: 'reviews',
      namespace: 'default',
      hosts: ['reviews.default.svc.cluster.local'],
      splitKey: { kind: 'header', name: 'x-user-id' },
      source: { file: 'mesh.yaml', doc: 0 },
    });
    expect(vs.http[0]).toEqual({
      name: 'jason',
      match: [
        {
          uri: { prefix: '/api' },
          headers: { 'x-end-user': { exact: 'jason' } },
          method: { regex: 'GET|HEAD' },
          queryParams: { debug: { exact: '1' } },
        },
      ],
      route: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v2', port: 9080 }, weight: 100 }],
      timeoutMs: 1500,
      retries: { attempts: 3, perTryTimeoutMs: 500, retryOn: '5xx,connect-failure,503' },
      // no percentage: no request is aborted (Istio)
      fault: { delay: { fixedDelayMs: 100, percentage: 10 }, abort: { httpStatus: 503, percentage: 0 } },
      headers: { request: { set: { 'x-canary': 'yes' }, remove: ['x-debug'] } },
      rewrite: { uri: '/v2/api' },
      mirrors: [],
    });
    expect(vs.http[1]).toEqual({
      match: [],
      route: [
        {
          destination: { host: 'reviews.default.svc.cluster.local', subset: 'v1' },
          weight: 90,
          headers: { response: { add: { 'x-version': 'v1' } } },
        },
        { destination: { host: 'reviews.default.svc.cluster.local', subset: 'v2' }, weight: 10 },
      ],
      mirrors: [{ destination: { host: 'reviews.default.svc.cluster.local', subset: 'v3' }, percentage: 100, field: 'mirror' }],
    });
  });

  it('reads DestinationRule policies and subsets', () => {
    expect(c.destinationRules).toEqual([
      {
        name: 'reviews',
        namespace: 'default',
        host: 'reviews.default.svc.cluster.local',
        trafficPolicy: {
          loadBalancer: { simple: 'LEAST_REQUEST' },
          connectionPool: {
            tcp: { maxConnections: 100, connectTimeoutMs: 2000 },
            http: { http1MaxPendingRequests: 10, http2MaxRequests: 1000, maxRequestsPerConnection: 0, maxRetries: 3 },
          },
          outlierDetection: {
            consecutive5xxErrors: 5,
            consecutiveGatewayErrors: 2,
            intervalMs: 10_000,
            baseEjectionTimeMs: 30_000,
            maxEjectionPercent: 50,
          },
        },
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          {
            name: 'v2',
            labels: { version: 'v2' },
            trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: 'user', ttlMs: 0 } } } },
          },
          { name: 'v3', labels: { version: 'v3' } },
        ],
        source: { file: 'mesh.yaml', doc: 1 },
      },
    ]);
  });

  it('reads ServiceEntry, keeping its dotted hosts literal everywhere', () => {
    expect(c.serviceEntries).toEqual([
      {
        name: 'httpbin',
        namespace: 'shop',
        hosts: ['httpbin.org', 'payments.shop.svc.cluster.local'],
        ports: [
          { number: 80, name: 'http', protocol: 'HTTP' },
          { number: 9000, name: 'grpc-api', protocol: 'GRPC' },
          // no protocol and no conventional name: Istio sniffs it, and what reaches the outbound port is HTTP
          { number: 5432, name: 'db', protocol: 'HTTP' },
        ],
        addresses: [],
        endpoints: [
          { address: '127.0.0.1', ports: { http: 8081 }, labels: { zone: 'a' } },
          { address: '::1', labels: {} },
        ],
        // endpoints and no resolution: STATIC
        resolution: 'STATIC',
        location: 'MESH_EXTERNAL',
        source: { file: 'mesh.yaml', doc: 2 },
      },
    ]);
    expect(c.virtualServices[1].hosts).toEqual(['httpbin.org']);
    expect(c.virtualServices[1].http[0].route[0].destination.host).toBe('httpbin.org');
  });

  it('reads security policies with their defaults', () => {
    expect(c.peerAuthentications).toEqual([
      { name: 'default', namespace: 'istio-system', mode: 'PERMISSIVE', source: { file: 'mesh.yaml', doc: 4 } },
      // no mtls: UNSET, inherited (see model/peer-authentication.ts)
      { name: 'strict', namespace: 'default', selector: { app: 'reviews' }, source: { file: 'mesh.yaml', doc: 5 } },
    ]);
    expect(c.authorizationPolicies).toEqual([
      {
        name: 'reviews-viewer',
        namespace: 'default',
        action: 'ALLOW',
        selector: { app: 'reviews' },
        rules: [
          {
            from: [{ principals: ['cluster.local/ns/default/sa/frontend', '*/sa/admin'] }],
            to: [{ methods: ['GET'], paths: ['/api/*'] }],
          },
        ],
        source: { file: 'mesh.yaml', doc: 6 },
      },
      { name: 'deny-all', namespace: 'locked', action: 'DENY', rules: [{}], source: { file: 'mesh.yaml', doc: 7 } },
    ]);
  });

  it('accepts an empty file', () => {
    expect(parseConfigText('', 'empty.yaml').virtualServices).toEqual([]);
    expect(parseConfigText('---\n# nothing\n---\n', 'empty.yaml').destinationRules).toEqual([]);
  });
});

function rejects(text: string): ConfigError {
  try {
    parseConfigText(text, 'mesh.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('config was accepted');
}

const VS_HEAD = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
`;
const DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`;
const vs = (spec: string): string => `${DR}---\n${VS_HEAD}spec:\n  hosts: [reviews]\n${spec}`;
const route = (extra: string): string => vs(`  http:\n  - route:\n    - destination: {host: reviews}\n${extra}`);

describe('rejected configs name file, document and field', () => {
  it.each<[string, string, number | undefined, string | undefined, RegExp]>([
    ['unknown kind', `apiVersion: networking.istio.io/v1\nkind: VirtualServices\nmetadata: {name: gw}\nspec: {}\n`, 0, 'kind', /unknown kind "VirtualServices"/],
    ['wrong apiVersion group', `apiVersion: security.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [r]}\n`, 0, 'apiVersion', /not valid for VirtualService/],
    ['unknown top-level field', `${VS_HEAD}spec: {hosts: [r]}\nspecs: {}\n`, 0, 'specs', /unknown field/],
    ['unknown metadata field', `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, label: x}\nspec: {hosts: [r]}\n`, 0, 'metadata.label', /unknown field/],
    ['unknown nested field', route('      weigth: 100\n'), 1, 'spec.http[0].route[0].weigth', /unknown field/],
    ['unknown field deep in a match', vs('  http:\n  - match: [{uri: {exact: /a, ignoreCase: true}}]\n    route: [{destination: {host: reviews}}]\n'), 1, 'spec.http[0].match[0].uri.ignoreCase', /unknown field/],
    ['wrong type', vs('  http:\n  - route:\n    - destination: {host: reviews, port: {number: "80"}}\n'), 1, 'spec.http[0].route[0].destination.port.number', /must be an integer 1\.\.65535/],
    ['hosts not a list', `${VS_HEAD}spec: {hosts: reviews}\n`, 0, 'spec.hosts', /must be a list/],
    ['negative weight', vs('  http:\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 90}\n    - {destination: {host: reviews, subset: v2}, weight: -10}\n'), 1, 'spec.http[0].route[1].weight', /must be an integer 0\.\.2147483647/],
    ['weights all zero', vs('  http:\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 0}\n    - {destination: {host: reviews, subset: v2}}\n'), 1, 'spec.http[0].route', /weights are all 0/],
    ['unknown subset', vs('  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n'), 1, 'spec.http[0].route[0].destination.subset', /subset "v3" is not defined by any DestinationRule for host reviews\.default\.svc\.cluster\.local/],
    ['unknown mirror subset', route('    mirror: {host: reviews, subset: v9}\n'), 1, 'spec.http[0].mirror.subset', /subset "v9"/],
    ['unknown subset in mirrors[]', route('    mirrors: [{destination: {host: reviews, subset: v1}}, {destination: {host: reviews, subset: v9}, percentage: {value: 5}}]\n'), 1, 'spec.http[0].mirrors[1].destination.subset', /subset "v9"/],
    ['mirror and mirrors together', route('    mirror: {host: reviews}\n    mirrors: [{destination: {host: reviews}}]\n'), 1, 'spec.http[0].mirrors', /together with mirror/],
    ['bad regex', vs('  http:\n  - match: [{uri: {regex: "(unclosed"}}]\n    route: [{destination: {host: reviews}}]\n'), 1, 'spec.http[0].match[0].uri.regex', /invalid regex "\(unclosed": missing closing \)/],
    ['two match kinds', vs('  http:\n  - match: [{uri: {exact: /a, prefix: /b}}]\n    route: [{destination: {host: reviews}}]\n'), 1, 'spec.http[0].match[0].uri', /at most one of exact, prefix, regex/],
    ['bad duration', route('    timeout: 10\n'), 1, 'spec.http[0].timeout', /must be a duration/],
    ['bad duration string', route('    retries: {attempts: 2, perTryTimeout: 2 seconds}\n'), 1, 'spec.http[0].retries.perTryTimeout', /invalid duration/],
    ['negative count', `${DR}  trafficPolicy: {connectionPool: {http: {maxRetries: -1}}}\n`, 0, 'spec.trafficPolicy.connectionPool.http.maxRetries', /must be an integer >= 0/],
    ['bad enum', `${DR}  trafficPolicy: {loadBalancer: {simple: FASTEST}}\n`, 0, 'spec.trafficPolicy.loadBalancer.simple', /must be one of ROUND_ROBIN/],
    ['percentage out of range', route('    mirror: {host: reviews}\n    mirrorPercentage: {value: 150}\n'), 1, 'spec.http[0].mirrorPercentage.value', /must be a number 0\.\.100/],
    ['bad split-key', `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\n  annotations: {tandem.io/split-key: "query:user"}\nspec: {hosts: [r]}\n`, 0, 'metadata.annotations["tandem.io/split-key"]', /must be "header:NAME" or "cookie:NAME"/],
    ['portLevelMtls without a selector', `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec: {mtls: {mode: DISABLE}, portLevelMtls: {8080: {mode: STRICT}}}\n`, 0, 'spec.portLevelMtls', /requires a selector/],
    ['CUSTOM authorization', `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec: {action: CUSTOM, provider: {name: ext}, rules: [{}]}\n`, 0, 'spec.provider', /not supported by Tandem/],
    ['ServiceEntry resolution', `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec: {hosts: [a.example.com], ports: [{number: 80, name: http}], resolution: DYNAMIC_DNS}\n`, 0, 'spec.resolution', /not supported by Tandem/],
    ['ServiceEntry endpoint port name', `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec: {hosts: [a.example.com], ports: [{number: 80, name: http}], endpoints: [{address: 10.0.0.1, ports: {https: 443}}]}\n`, 0, 'spec.endpoints[0].ports.https', /no port named "https"/],
    ['document not a mapping', `- a\n- b\n`, 0, undefined, /must be a mapping/],
    // Kubernetes' limits: a name is a DNS-1123 subdomain of at most 253 characters, a namespace a label of at most 63
    ['name too long', `${VS_HEAD.replace('name: reviews', `name: ${'a'.repeat(250)}.bcd`)}spec: {hosts: [r]}\n`, 0, 'metadata.name', /must be a DNS name of at most 253 characters, got 254/],
    ['name not a DNS name', `${VS_HEAD.replace('name: reviews', 'name: Reviews_1')}spec: {hosts: [r]}\n`, 0, 'metadata.name', /must be a DNS name \(lower-case/],
    ['namespace too long', `${VS_HEAD.replace('name: reviews', `name: reviews, namespace: ${'n'.repeat(64)}`)}spec: {hosts: [r]}\n`, 0, 'metadata.namespace', /must be a DNS label of at most 63 characters, got 64/],
    ['namespace with a dot', `${VS_HEAD.replace('name: reviews', 'name: reviews, namespace: a.b')}spec: {hosts: [r]}\n`, 0, 'metadata.namespace', /must be a DNS label/],
  ])('%s', (_name, text, doc, field, detail) => {
    const e = rejects(text);
    expect(e.file).toBe('mesh.yaml');
    expect(e.doc).toBe(doc);
    expect(e.field).toBe(field);
    expect(e.detail).toMatch(detail);
    expect(e.message).toContain(`mesh.yaml: document ${doc}`);
    if (field) expect(e.message).toContain(`: ${field}: `);
  });

  it('formats the message as file: document (kind ns/name): field: problem', () => {
    const e = rejects(vs('  http:\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: 90}\n    - {destination: {host: reviews, subset: v2}, weight: -1}\n'));
    expect(e.message).toBe(
      'mesh.yaml: document 1 (VirtualService default/reviews): spec.http[0].route[1].weight: must be an integer 0..2147483647, got number -1',
    );
  });

  it('reports a YAML syntax error with its line and no document', () => {
    const e = rejects(`${DR}---\nkind: VirtualService\nspec: {hosts: [a\n  b: c\n`);
    expect(e.doc).toBeUndefined();
    expect(e.field).toBeUndefined();
    expect(e.line).toBeGreaterThanOrEqual(9);
    expect(e.message).toMatch(/^mesh\.yaml: line \d+, column \d+: /);
  });

  it('reports duplicate keys as YAML errors', () => {
    expect(rejects(`${DR}  host: ratings\n`).message).toMatch(/^mesh\.yaml: line 7, column 3: Map keys must be unique/);
  });

  it('rejects duplicate kind/namespace/name, blaming the second', () => {
    const e = rejects(`${DR}---\n${DR}`);
    expect(e.doc).toBe(1);
    expect(e.field).toBe('metadata.name');
    expect(e.detail).toMatch(/duplicate DestinationRule default\/reviews \(first defined in mesh\.yaml document 0\)/);
  });

  it('allows the same name in another namespace or kind', () => {
    const other = DR.replace('metadata: {name: reviews}', 'metadata: {name: reviews, namespace: prod}');
    expect(() => parseConfigText(`${DR}---\n${other}---\n${VS_HEAD}spec: {hosts: [reviews]}\n`, 'mesh.yaml')).not.toThrow();
  });

  it('collects several problems, locating the first', () => {
    const e = rejects(`${VS_HEAD}spec: {hosts: 1}\n---\n${DR}  extra: 1\n`);
    expect(e.errors).toHaveLength(2);
    expect(e.doc).toBe(0);
    expect(e.field).toBe('spec.hosts');
    expect(e.message.split('\n')).toEqual([e.errors[0].message, e.errors[1].message]);
    expect(e.errors[1].field).toBe('spec.extra');
    expect(JSON.parse(JSON.stringify(e))).toMatchObject({ file: 'mesh.yaml', doc: 0, field: 'spec.hosts' });
  });

  it('does not treat prototype names as known kinds or fields', () => {
    expect(rejects(`apiVersion: networking.istio.io/v1\nkind: constructor\nmetadata: {name: x}\n`).field).toBe('kind');
    expect(rejects(`${VS_HEAD}spec: {hosts: [r], toString: 1}\n`).field).toBe('spec.toString');
  });
});

describe('Kubernetes habits', () => {
  const KUBECTL = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"annotations":{},"name":"reviews","namespace":"default"},"spec":{"hosts":["reviews"],"http":[{"route":[{"destination":{"host":"reviews","subset":"v1"}}]}]}}
  creationTimestamp: "2024-05-01T10:00:00Z"
  deletionGracePeriodSeconds: 0
  finalizers: [example.com/keep]
  generation: 3
  labels: {app: reviews}
  managedFields:
  - apiVersion: networking.istio.io/v1
    fieldsType: FieldsV1
    fieldsV1: {f:spec: {f:hosts: {}}}
    manager: kubectl-client-side-apply
    operation: Update
    time: "2024-05-01T10:00:00Z"
  name: reviews
  namespace: default
  ownerReferences: [{apiVersion: v1, kind: ConfigMap, name: owner, uid: 1d2c}]
  resourceVersion: "123456"
  selfLink: /apis/networking.istio.io/v1/namespaces/default/virtualservices/reviews
  uid: 8d0e0f5e-4b1a-4c1e-9f53-3d2c1b0a9f88
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
status:
  observedGeneration: 3
  validationMessages: [{documentationUrl: "https://istio.io", level: WARNING, type: {code: IST0101, name: ReferencedResourceNotFound}}]
`;
  const PLAIN = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`;
  const load = (text: string) => parseConfigText(`${DR}---\n${text}`, 'mesh.yaml');
  const withoutSource = (c: ReturnType<typeof load>) => c.virtualServices.map(({ source: _source, ...vs }) => vs);

  it('reads `kubectl get -o yaml` output as the object it describes, ignoring the bookkeeping', () => {
    expect(withoutSource(load(KUBECTL))).toEqual(withoutSource(load(PLAIN)));
  });

  it('unpacks kind: List, naming items[i] in errors, cross-document ones included', () => {
    const list = (items: string): string => `apiVersion: v1\nkind: List\nmetadata: {resourceVersion: ""}\nitems:\n${items}`;
    const item = (name: string, subset: string): string =>
      `- apiVersion: networking.istio.io/v1\n  kind: VirtualService\n  metadata: {name: ${name}, resourceVersion: "1"}\n  spec:\n    hosts: [${name}]\n    http:\n    - route:\n      - destination: {host: reviews, subset: ${subset}}\n`;
    const c = load(list(item('a', 'v1') + item('b', 'v2')));
    expect(c.virtualServices.map((v) => v.name)).toEqual(['a', 'b']);
    expect(c.virtualServices[1].source).toEqual({ file: 'mesh.yaml', doc: 1 });

    const bad = rejects(`${DR}---\n${list(item('a', 'v1') + item('b', 'v1').replace('hosts: [b]', 'hosts: b'))}`);
    expect(bad.message).toBe('mesh.yaml: document 1 (VirtualService default/b): items[1].spec.hosts: must be a list, got string "b"');

    const missing = rejects(`${DR}---\n${list(item('a', 'v1') + item('b', 'v9'))}`);
    expect(missing.field).toBe('items[1].spec.http[0].route[0].destination.subset');
    expect(missing.detail).toMatch(/subset "v9" is not defined/);
  });

  it('unpacks a typed list, whose items may leave out kind and apiVersion', () => {
    const c = load(`apiVersion: networking.istio.io/v1\nkind: VirtualServiceList\nitems:\n- metadata: {name: a}\n  spec: {hosts: [a]}\n- metadata: {name: b}\n  spec: {hosts: [b]}\n`);
    expect(c.virtualServices.map((v) => v.hosts[0])).toEqual(['a.default.svc.cluster.local', 'b.default.svc.cluster.local']);
  });

  it('refuses a List whose items are not a list, and a List in a List', () => {
    expect(rejects(`apiVersion: v1\nkind: List\nitems: {a: 1}\n`).field).toBe('items');
    const nested = rejects(`apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: List, items: []}\n`);
    expect(nested.field).toBe('items[0].kind');
    expect(nested.detail).toMatch(/a List cannot hold another List/);
  });

  it("skips Kubernetes' own objects, saying which, and still refuses kinds nobody knows", () => {
    const skipped: SkippedDocument[] = [];
    const text = `apiVersion: v1\nkind: Service\nmetadata: {name: reviews, labels: {app: reviews}}\nspec: {ports: [{port: 9080, name: http}], selector: {app: reviews}}\n---
apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: reviews-v1, namespace: shop}\nspec: {replicas: 1}\n---
apiVersion: v1\nkind: Endpoints\nmetadata: {name: my-wikipedia}\nsubsets: [{addresses: [{ip: 198.35.26.96}]}]\n---
apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules: []\n---
apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ServiceAccount, metadata: {name: bookinfo-reviews}}\n`;
    const c = validateDocuments(
      parseAllDocuments(text).map((d, i) => ({ file: 'k8s.yaml', doc: i, value: d.toJS() })),
      { onSkipped: (s) => skipped.push(s) },
    );
    expect(c).toEqual(parseConfigText('', 'empty.yaml'));
    expect(skipped).toEqual([
      { file: 'k8s.yaml', doc: 0, path: undefined, apiVersion: 'v1', kind: 'Service', name: 'reviews', namespace: undefined },
      { file: 'k8s.yaml', doc: 1, path: undefined, apiVersion: 'apps/v1', kind: 'Deployment', name: 'reviews-v1', namespace: 'shop' },
      { file: 'k8s.yaml', doc: 2, path: undefined, apiVersion: 'v1', kind: 'Endpoints', name: 'my-wikipedia', namespace: undefined },
      { file: 'k8s.yaml', doc: 3, path: undefined, apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', name: 'r', namespace: undefined },
      { file: 'k8s.yaml', doc: 4, path: 'items[0]', apiVersion: 'v1', kind: 'ServiceAccount', name: 'bookinfo-reviews', namespace: undefined },
    ]);
    const crd = rejects(`apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {}\n`);
    expect(crd.field).toBe('kind');
    expect(crd.detail).toMatch(/unknown kind "Certificate"/);
  });

  it.each([
    ['Gateway', 'networking.istio.io/v1', 'Gateway'],
    ['EnvoyFilter', 'networking.istio.io/v1alpha3', 'EnvoyFilter'],
    ['WorkloadEntry', 'networking.istio.io/v1', 'WorkloadEntry'],
    ['WorkloadGroup', 'networking.istio.io/v1', 'WorkloadGroup'],
    ['RequestAuthentication', 'security.istio.io/v1', 'RequestAuthentication'],
    ['Telemetry', 'telemetry.istio.io/v1', 'Telemetry'],
    ['IstioOperator', 'install.istio.io/v1alpha1', 'IstioOperator'],
    ['MeshPolicy', 'authentication.istio.io/v1alpha1', 'MeshPolicy'],
    ['HTTPRoute', 'gateway.networking.k8s.io/v1', 'Gateway API (HTTPRoute)'],
    ['Gateway', 'gateway.networking.k8s.io/v1', 'Gateway API (Gateway)'],
    ['Ingress', 'networking.k8s.io/v1', 'Ingress'],
  ])('refuses %s (%s) as not supported by Tandem', (kind, apiVersion, named) => {
    const e = rejects(`apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: x}\nspec: {whatever: 1}\n`);
    expect(e.field).toBe('kind');
    expect(e.errors).toHaveLength(1);
    expect(e.detail).toContain(named);
    expect(e.detail).toContain('not supported by Tandem');
  });

  it('refuses L4 routes and real gateways as not supported by Tandem', () => {
    const e = rejects(`${VS_HEAD}spec:\n  hosts: [reviews]\n  gateways: [mesh, istio-system/ingress]\n  tcp: [{route: [{destination: {host: reviews}}]}]\n  tls: [{match: [{sniHosts: [reviews]}], route: [{destination: {host: reviews}}]}]\n`);
    expect(e.errors.map((x) => [x.field, /not supported by Tandem/.test(x.detail)])).toEqual([
      ['spec.gateways[1]', true],
      ['spec.tcp', true],
      ['spec.tls', true],
    ]);
  });

  it("refuses Istio's dry-run AuthorizationPolicy rather than enforcing it", () => {
    const policy = (v: string): string =>
      `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: p\n  annotations: {"istio.io/dry-run": "${v}"}\nspec: {action: DENY, rules: [{}]}\n`;
    const e = rejects(policy('true'));
    expect(e.field).toBe('metadata.annotations["istio.io/dry-run"]');
    expect(e.detail).toMatch(/not supported by Tandem/);
    expect(parseConfigText(policy('false'), 'mesh.yaml').authorizationPolicies).toHaveLength(1);
  });
});

describe('every problem of a document is reported', () => {
  it('reports independent problems of one document, each with its field, one per line', () => {
    const e = rejects(
      vs(`  http:
  - route:
    - destination: {host: reviews, subset: v1}
    timeout: soon
  - route:
    - destination: {host: reviews}
    retries: {attempts: 2, perTryTimout: 1s}
  - match: [{uri: {prefix: /a}, methd: {exact: GET}}]
    route: [{destination: {host: reviews}}]
    mirror: {host: reviews, port: {number: 0}}
`).replace('name: reviews}\nspec:\n  hosts', 'name: Reviews}\nspec:\n  hosts'),
    );
    expect(e.errors.map((x) => x.field)).toEqual([
      'metadata.name',
      'spec.http[0].timeout',
      'spec.http[1].retries.perTryTimout',
      'spec.http[2].mirror.port.number',
      'spec.http[2].match[0].methd',
    ]);
    for (const x of e.errors) {
      expect(x.file).toBe('mesh.yaml');
      expect(x.doc).toBe(1);
      expect(x.message).toBe(`mesh.yaml: document 1 (VirtualService default/Reviews): ${x.field}: ${x.detail}`);
    }
    expect(e.message.split('\n')).toEqual(e.errors.map((x) => x.message));
  });

  it('reports each bad item of a list and each bad key of a map', () => {
    const e = rejects(vs('  http:\n  - match: [{headers: {"a b": {exact: x}, "c d": {exact: y}}}]\n    route: [{destination: {host: reviews}}]\n  - 7\n  - route: [{destination: {host: "bad host"}}, {destination: {host: "worse host"}}]\n'));
    expect(e.errors.map((x) => x.field)).toEqual([
      'spec.http[0].match[0].headers["a b"]',
      'spec.http[0].match[0].headers["c d"]',
      'spec.http[1]',
      'spec.http[2].route[0].destination.host',
      'spec.http[2].route[1].destination.host',
    ]);
  });

  it('does not report what follows from a problem already reported', () => {
    // The bad weight makes the route's weights unknowable: no "weights are all 0".
    const e = rejects(vs('  http:\n  - route:\n    - {destination: {host: reviews, subset: v1}, weight: "90"}\n    - {destination: {host: reviews, subset: v2}, weight: 10}\n'));
    expect(e.errors.map((x) => `${x.field}: ${x.detail}`)).toEqual(['spec.http[0].route[0].weight: must be an integer 0..2147483647, got string "90"']);
  });

  it('reports a missing required field next to other problems', () => {
    // (no hosts is no problem: such a VirtualService is a delegate)
    const e = rejects(`${VS_HEAD}spec:\n  http: [{route: [{destination: {subset: v1}}]}]\n  exportTo: 1\n`);
    expect(e.errors.map((x) => `${x.field}: ${x.detail}`)).toEqual([
      'spec.exportTo: must be a list, got number 1',
      'spec.http[0].route[0].destination.host: is required',
    ]);
  });

  it('stops at 20 problems', () => {
    const routes = Array.from({ length: 30 }, () => '  - route: [{destination: {host: reviews}}]\n    timeout: x\n').join('');
    expect(rejects(vs(`  http:\n${routes}`)).errors).toHaveLength(20);
  });
});
