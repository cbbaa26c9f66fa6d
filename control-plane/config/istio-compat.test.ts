import { describe, expect, it } from 'vitest';
import { parseConfigText } from './load';

const vs = (extra: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
${extra}
  http:
  - route: [{destination: {host: reviews}}]
`;

describe('resources written for Istio', () => {
  it('accepts gateways: [mesh] and exportTo', () => {
    const c = parseConfigText(vs('  gateways: [mesh]\n  exportTo: ["*"]'), 'mesh.yaml');
    expect(c.virtualServices[0].hosts).toEqual(['reviews.default.svc.cluster.local']);
  });

  it('refuses a real gateway, naming the field', () => {
    expect(() => parseConfigText(vs('  gateways: [istio-system/ingress]'), 'mesh.yaml')).toThrow(/mesh\.yaml: document 0 .*spec\.gateways\[0\]: only "mesh" is supported/);
  });

  it('accepts exportTo on DestinationRule and ServiceEntry', () => {
    const c = parseConfigText(
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec: {host: reviews, exportTo: ["."]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec: {hosts: [api.example.com], exportTo: ["*"], ports: [{number: 80, name: http, protocol: HTTP}], endpoints: [{address: 127.0.0.1}]}
`,
      'mesh.yaml',
    );
    expect(c.destinationRules).toHaveLength(1);
    expect(c.serviceEntries[0].hosts).toEqual(['api.example.com']);
  });
});
