// Sidecar, and the fields that pick callers elsewhere: VirtualService sourceLabels and
// sourceNamespace, DestinationRule workloadSelector. Istio's own examples load; what
// Tandem cannot honour is refused naming the field.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from './load';

const sidecar = (spec: string, ns = 'prod-us1') => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: ${ns}}
spec:
${spec}
`;

const load = (yaml: string) => parseConfigText(yaml, 'mesh.yaml');

/** The error a config gets; fails the test when it loads. */
function refusal(yaml: string): string {
  try {
    load(yaml);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('the config loaded');
}

describe('Sidecar: what loads', () => {
  // the examples of Istio's reference page (networking/v1alpha3/sidecar.proto) that Tandem honours
  it("reads the root namespace's default: ./* and istio-system/*", () => {
    const c = load(sidecar('  egress:\n  - hosts: ["./*", "istio-system/*"]', 'istio-config'));
    expect(c.sidecars).toEqual([
      {
        name: 'default',
        namespace: 'istio-config',
        egressHosts: [
          { namespace: '.', host: '*', exclude: false },
          { namespace: 'istio-system', host: '*', exclude: false },
        ],
        source: { file: 'mesh.yaml', doc: 0 },
      },
    ]);
  });

  it('reads exclusions, a bare ~ being every namespace', () => {
    const c = load(sidecar('  egress:\n  - hosts: ["*/*", "~prod-us2/*", "~prod-apis/foo.example.com", "~/bar.example.com"]'));
    expect(c.sidecars[0].egressHosts).toEqual([
      { namespace: '*', host: '*', exclude: false },
      { namespace: 'prod-us2', host: '*', exclude: true },
      { namespace: 'prod-apis', host: 'foo.example.com', exclude: true },
      { namespace: '*', host: 'bar.example.com', exclude: true },
    ]);
  });

  it('reads a workload selector, wildcard dnsNames, captureMode NONE and REGISTRY_ONLY', () => {
    const c = load(
      sidecar(`  workloadSelector:
    labels: {app: ratings}
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
  egress:
  - captureMode: NONE
    hosts: ["*/*.example.com", "./Reviews.prod-us1.svc.cluster.local"]`),
    );
    expect(c.sidecars[0]).toMatchObject({
      workloadSelector: { app: 'ratings' },
      egressHosts: [
        { namespace: '*', host: '*.example.com', exclude: false },
        { namespace: '.', host: 'reviews.prod-us1.svc.cluster.local', exclude: false },
      ],
    });
  });

  it('imports everything when only the outbound policy is given (Istio: egress defaults to */*)', () => {
    const c = load(sidecar('  outboundTrafficPolicy: {mode: REGISTRY_ONLY}'));
    expect(c.sidecars[0].egressHosts).toEqual([{ namespace: '*', host: '*', exclude: false }]);
  });

  it('takes an empty workload selector as none (Istio: it applies to the whole namespace)', () => {
    const c = load(sidecar('  workloadSelector: {labels: {}}\n  egress: [{hosts: ["./*"]}]'));
    expect(c.sidecars[0].workloadSelector).toBeUndefined();
  });

  it('accepts every API version Istio serves the kind at', () => {
    for (const v of ['v1', 'v1beta1', 'v1alpha3']) {
      expect(load(sidecar('  egress: [{hosts: ["./*"]}]').replace('networking.istio.io/v1', `networking.istio.io/${v}`)).sidecars).toHaveLength(1);
    }
  });
});

describe('Sidecar: what is refused, naming the field', () => {
  const cases: [string, string, RegExp][] = [
    ['an egress port', '  egress:\n  - port: {number: 9080, protocol: HTTP, name: egresshttp}\n    hosts: ["prod-us1/*"]', /spec\.egress\[0\]\.port: not supported by Tandem/],
    ['an egress bind', '  egress:\n  - bind: 127.0.0.1\n    hosts: ["./*"]', /spec\.egress\[0\]\.bind: not supported by Tandem/],
    ['captureMode IPTABLES', '  egress:\n  - captureMode: IPTABLES\n    hosts: ["*/*"]', /spec\.egress\[0\]\.captureMode: not supported by Tandem/],
    ['a bad captureMode', '  egress:\n  - captureMode: TPROXY\n    hosts: ["*/*"]', /spec\.egress\[0\]\.captureMode: must be one of DEFAULT, IPTABLES, NONE/],
    ['a second egress listener', '  egress:\n  - hosts: ["./*"]\n  - hosts: ["istio-system/*"]', /spec\.egress\[1\]: only one egress listener/],
    ['ingress listeners', '  ingress:\n  - port: {number: 9080, protocol: HTTP, name: somename}\n    defaultEndpoint: 127.0.0.1:8080\n  egress: [{hosts: ["./*"]}]', /spec\.ingress: not supported by Tandem/],
    ['inboundConnectionPool', '  inboundConnectionPool:\n    http: {http1MaxPendingRequests: 1024}', /spec\.inboundConnectionPool: not supported by Tandem/],
    ['ALLOW_ANY', '  outboundTrafficPolicy: {mode: ALLOW_ANY}', /spec\.outboundTrafficPolicy\.mode: not supported by Tandem.*404 NR/],
    ['an egress proxy', '  outboundTrafficPolicy:\n    mode: REGISTRY_ONLY\n    egressProxy: {host: egress.example.com, port: {number: 80}}', /spec\.outboundTrafficPolicy\.egressProxy: not supported by Tandem/],
    ['an unknown mode', '  outboundTrafficPolicy: {mode: ALLOW_ANY_DYNAMIC_DNS}', /spec\.outboundTrafficPolicy\.mode: must be one of REGISTRY_ONLY, ALLOW_ANY/],
    ['a host without a namespace', '  egress: [{hosts: ["reviews.prod.svc.cluster.local"]}]', /spec\.egress\[0\]\.hosts\[0\]: .*must be of the form namespace\/dnsName/],
    ['a host with two slashes', '  egress: [{hosts: ["a/b/c.d"]}]', /spec\.egress\[0\]\.hosts\[0\]: .*must be of the form namespace\/dnsName/],
    ['a short name', '  egress: [{hosts: ["./reviews"]}]', /spec\.egress\[0\]\.hosts\[0\]: .*short names are not allowed/],
    ['a partial wildcard', '  egress: [{hosts: ["./*reviews.example.com"]}]', /spec\.egress\[0\]\.hosts\[0\]: .*partial wildcard/],
    ['a bad namespace', '  egress: [{hosts: ["Prod_1/*"]}]', /spec\.egress\[0\]\.hosts\[0\]: .*invalid namespace/],
    ['an empty dnsName', '  egress: [{hosts: ["prod/"]}]', /spec\.egress\[0\]\.hosts\[0\]: .*may be empty/],
    ['no hosts', '  egress: [{hosts: []}]', /spec\.egress\[0\]\.hosts: must not be empty/],
    ['nothing at all', '  workloadSelector: {labels: {app: a}}', /spec: empty Sidecar/],
    ['a wildcard selector', '  workloadSelector: {labels: {app: "*"}}\n  egress: [{hosts: ["./*"]}]', /spec\.workloadSelector\.labels\.app: wildcards are not supported/],
    ['a bad label name', '  workloadSelector: {labels: {"a b": x}}\n  egress: [{hosts: ["./*"]}]', /spec\.workloadSelector\.labels\["a b"\]: invalid label name/],
    ['an unknown field', '  egress: [{hosts: ["./*"], localhostServerTls: {}}]', /spec\.egress\[0\]\.localhostServerTls: unknown field/],
  ];
  for (const [what, spec, re] of cases) {
    it(`refuses ${what}`, () => {
      const msg = refusal(sidecar(spec));
      expect(msg).toMatch(/^mesh\.yaml: document 0 \(Sidecar prod-us1\/default\): /);
      expect(msg).toMatch(re);
    });
  }

  it('refuses two Sidecars of one name in a namespace', () => {
    const one = sidecar('  egress: [{hosts: ["./*"]}]');
    expect(refusal(`${one}---\n${one}`)).toMatch(/document 1 .*metadata\.name: duplicate Sidecar prod-us1\/default/);
  });
});

const vs = (match: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: prod}
spec:
  hosts: [reviews]
  http:
  - match:
${match}
    route: [{destination: {host: reviews}}]
`;

describe('VirtualService: sourceLabels and sourceNamespace', () => {
  it('reads them into the match clause', () => {
    const c = load(vs('    - sourceLabels: {app: productpage, version: v1}\n      sourceNamespace: bookinfo\n      uri: {prefix: /a}'));
    expect(c.virtualServices[0].http[0].match).toEqual([{ uri: { prefix: '/a' }, sourceLabels: { app: 'productpage', version: 'v1' }, sourceNamespace: 'bookinfo' }]);
  });

  it("takes proto3's empty values as unset", () => {
    const c = load(vs('    - sourceLabels: {}\n      sourceNamespace: ""\n      uri: {prefix: /a}'));
    expect(c.virtualServices[0].http[0].match).toEqual([{ uri: { prefix: '/a' } }]);
  });

  it('refuses a wildcard label, a bad label value and a bad namespace, naming the field', () => {
    expect(refusal(vs('    - sourceLabels: {app: "prod*"}'))).toMatch(/spec\.http\[0\]\.match\[0\]\.sourceLabels\.app: wildcards are not supported/);
    expect(refusal(vs('    - sourceLabels: {app: "-x"}'))).toMatch(/spec\.http\[0\]\.match\[0\]\.sourceLabels\.app: invalid label value/);
    expect(refusal(vs('    - sourceNamespace: Book_Info'))).toMatch(/spec\.http\[0\]\.match\[0\]\.sourceNamespace: must be a namespace name/);
  });
});

const dr = (extra: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: prod}
spec:
  host: reviews
${extra}
`;

describe('DestinationRule: workloadSelector', () => {
  it('reads matchLabels', () => {
    const c = load(dr('  workloadSelector: {matchLabels: {app: productpage}}'));
    expect(c.destinationRules[0].workloadSelector).toEqual({ app: 'productpage' });
  });

  it("keeps a selector without labels: Istio applies it to its namespace's workloads only", () => {
    expect(load(dr('  workloadSelector: {}')).destinationRules[0].workloadSelector).toEqual({});
    expect(load(dr('')).destinationRules[0].workloadSelector).toBeUndefined();
  });

  it('refuses a wildcard or an unknown field, naming it', () => {
    expect(refusal(dr('  workloadSelector: {matchLabels: {app: "*"}}'))).toMatch(/spec\.workloadSelector\.matchLabels\.app: wildcards are not supported/);
    expect(refusal(dr('  workloadSelector: {labels: {app: x}}'))).toMatch(/spec\.workloadSelector\.labels: unknown field/);
  });
});
