// ServiceEntry as Istio has it: what loads (Istio's own examples among it), what it reads
// as, and what is refused, each refusal naming the field.
import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { parseConfigText } from './load';

const se = (spec: string, name = 'ext') => `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${name}}\nspec:\n${spec}`;

const entry = (text: string) => parseConfigText(text, 'mesh.yaml').serviceEntries[0];

function rejects(text: string): ConfigError {
  try {
    parseConfigText(text, 'mesh.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('config was accepted');
}

describe('ServiceEntry: what loads', () => {
  it('defaults to resolution NONE and location MESH_EXTERNAL, as Istio', () => {
    const e = entry(se('  hosts: [api.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n'));
    expect(e).toMatchObject({ resolution: 'NONE', location: 'MESH_EXTERNAL', endpoints: [], addresses: [] });
  });

  it('reads endpoints without a resolution as STATIC', () => {
    expect(entry(se('  hosts: [api.example.com]\n  ports: [{number: 80, name: http}]\n  endpoints: [{address: 10.0.0.1}]\n')).resolution).toBe('STATIC');
  });

  it('reads DNS endpoints by host name, with weights, localities, labels and port maps', () => {
    const e = entry(
      se(`  hosts: [foo.bar.com]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  resolution: DNS
  endpoints:
  - {address: US.foo.bar.com, ports: {http: 8081}, weight: 3, locality: us-east/zone-a, labels: {region: us}}
  - {address: 10.0.0.2, weight: 0}
`),
    );
    expect(e.ports).toEqual([{ number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 }]);
    expect(e.endpoints).toEqual([
      { address: 'us.foo.bar.com', ports: { http: 8081 }, labels: { region: 'us' }, weight: 3, locality: 'us-east/zone-a' },
      // weight 0 is unset, as in Istio
      { address: '10.0.0.2', labels: {} },
    ]);
  });

  it('reads addresses (a /32 is one address) and subjectAltNames', () => {
    const e = entry(se('  hosts: [db.example.com]\n  addresses: [192.0.2.10, 192.0.2.11/32, "2001:db8::1"]\n  ports: [{number: 80, name: http}]\n  subjectAltNames: [db.example.com]\n  location: MESH_INTERNAL\n'));
    expect(e).toMatchObject({ addresses: ['192.0.2.10', '192.0.2.11', '2001:db8::1'], subjectAltNames: ['db.example.com'], location: 'MESH_INTERNAL' });
  });

  it('takes the protocol from Istio port names, else HTTP (what sniffing finds on an HTTP port)', () => {
    const e = entry(se('  hosts: [a.example.com]\n  ports: [{number: 80, name: http-web}, {number: 81, name: grpc}, {number: 82, name: web}, {number: 443, name: https}]\n'));
    expect(e.ports.map((p) => p.protocol)).toEqual(['HTTP', 'GRPC', 'HTTP', 'HTTPS']);
  });

  // github.com/istio/api networking/v1alpha3/service_entry.proto and the istio.io egress tasks
  it.each([
    [
      'external-svc-dns (api reference)',
      `  hosts: [foo.bar.com]\n  location: MESH_EXTERNAL\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n  endpoints:\n  - {address: us.foo.bar.com, ports: {http: 8080}}\n  - {address: uk.foo.bar.com, ports: {http: 9080}}\n  - {address: in.foo.bar.com, ports: {http: 7080}}\n`,
    ],
    ['external-svc-wildcard-example (api reference)', `  hosts: ["*.bar.com"]\n  location: MESH_EXTERNAL\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: NONE\n`],
    [
      'httpbin with subjectAltNames (api reference)',
      `  hosts: [example.com]\n  location: MESH_INTERNAL\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints:\n  - address: 2.2.2.2\n  - address: 3.3.3.3\n  subjectAltNames: ["spiffe://cluster.local/ns/httpbin-ns/sa/httpbin-service-account"]\n`,
    ],
    ['external-svc-httpbin (api reference)', `  hosts: [example.com]\n  exportTo: ["."]\n  location: MESH_EXTERNAL\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n`],
    ['httpbin-ext (egress-control task)', `  hosts: [httpbin.org]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n  location: MESH_EXTERNAL\n`],
    [
      'edition-cnn-com (egress TLS origination task)',
      `  hosts: [edition.cnn.com]\n  ports:\n  - {number: 80, name: http-port, protocol: HTTP, targetPort: 443}\n  - {number: 443, name: https-port, protocol: HTTPS}\n  resolution: DNS\n`,
    ],
  ])('loads %s', (_name, spec) => {
    expect(entry(se(spec)).hosts.length).toBeGreaterThan(0);
  });
});

describe('ServiceEntry: what is refused, naming the field', () => {
  it.each<[string, string, string, RegExp]>([
    ['TLS passthrough (the google example of the egress-control task)', '  hosts: [www.google.com]\n  ports: [{number: 443, name: https, protocol: HTTPS}]\n  resolution: DNS\n', 'spec.ports[0].protocol', /TCP or TLS passthrough, which is not supported by Tandem/],
    ['TCP only (the mongo example)', '  hosts: [mymongodb.somedomain]\n  ports: [{number: 27018, name: mongodb, protocol: MONGO}]\n  resolution: STATIC\n  endpoints: [{address: 2.2.2.2}]\n', 'spec.ports[0].protocol', /not supported by Tandem/],
    ['an unknown protocol', '  hosts: [a.example.com]\n  ports: [{number: 80, name: http, protocol: SPDY}]\n', 'spec.ports[0].protocol', /must be one of/],
    ['a CIDR range', '  hosts: [a.example.com]\n  addresses: [192.192.192.192/24]\n  ports: [{number: 80, name: http}]\n', 'spec.addresses[0]', /CIDR range .* not supported by Tandem/],
    ['an address that is not one', '  hosts: [a.example.com]\n  addresses: [db.example.com]\n  ports: [{number: 80, name: http}]\n', 'spec.addresses[0]', /must be an IP address or a CIDR range/],
    ['DYNAMIC_DNS', '  hosts: ["*.example.com"]\n  ports: [{number: 80, name: http}]\n  resolution: DYNAMIC_DNS\n', 'spec.resolution', /not supported by Tandem/],
    ['workloadSelector', '  hosts: [details.bookinfo.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  workloadSelector: {labels: {app: details}}\n', 'spec.workloadSelector', /not supported by Tandem/],
    ['a Unix socket endpoint', '  hosts: [example.unix.local]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: "unix:///var/run/example/socket"}]\n', 'spec.endpoints[0].address', /Unix domain socket endpoints are not supported by Tandem/],
    ['an endpoint network', '  hosts: [a.example.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1, network: west}]\n', 'spec.endpoints[0].network', /not supported by Tandem/],
    ['an endpoint serviceAccount', '  hosts: [a.example.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints: [{address: 10.0.0.1, serviceAccount: vm}]\n', 'spec.endpoints[0].serviceAccount', /not supported by Tandem/],
    ['endpoints with resolution NONE', '  hosts: [a.example.com]\n  ports: [{number: 80, name: http}]\n  resolution: NONE\n  endpoints: [{address: 10.0.0.1}]\n', 'spec.endpoints', /NONE .* takes no endpoints/],
    ['a host name with STATIC', '  hosts: [a.example.com]\n  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  endpoints: [{address: b.example.com}]\n', 'spec.endpoints[0].address', /must be an IP address \(resolution is STATIC/],
    ['two endpoints with DNS_ROUND_ROBIN', '  hosts: [a.example.com]\n  ports: [{number: 80, name: http}]\n  resolution: DNS_ROUND_ROBIN\n  endpoints: [{address: b.example.com}, {address: c.example.com}]\n', 'spec.endpoints', /at most one endpoint/],
    ['a wildcard host to resolve', '  hosts: ["*.example.com"]\n  ports: [{number: 80, name: http}]\n  resolution: DNS\n', 'spec.hosts[0]', /a wildcard cannot be resolved/],
    ['several hosts with a TCP port', '  hosts: [a.example.com, b.example.com]\n  ports: [{number: 80, name: http}, {number: 5432, name: tcp-db}]\n  resolution: DNS\n', 'spec.ports[1].protocol', /cannot tell several hosts apart/],
    ['a bad targetPort', '  hosts: [a.example.com]\n  ports: [{number: 80, name: http, targetPort: 0}]\n', 'spec.ports[0].targetPort', /must be an integer 1\.\.65535/],
    ['a negative weight', '  hosts: [a.example.com]\n  ports: [{number: 80, name: http}]\n  endpoints: [{address: 10.0.0.1, weight: -1}]\n', 'spec.endpoints[0].weight', /must be an integer/],
    ['an unknown field', '  hosts: [a.example.com]\n  ports: [{number: 80, name: http}]\n  resolutions: DNS\n', 'spec.resolutions', /unknown field/],
  ])('%s', (_name, spec, field, detail) => {
    const e = rejects(se(spec));
    expect(e.errors[0].field).toBe(field);
    expect(e.errors[0].detail).toMatch(detail);
  });
});
