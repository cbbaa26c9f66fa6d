// What the control plane translates, the sidecar applies: the security-bearing resources
// (cluster transport sockets, the inbound listener) go through translation and the
// sidecar's decoders with no process in between, for every mode the config allows.
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../control-plane/config';
import { Snapshot } from '../control-plane/xds/snapshot';
import type { Workload } from '../control-plane/model/workload';
import { TypeUrl } from '../proto/type-urls';
import { decodeCluster, decodeListener } from '../proto/decode/decode';

const OPTS = { domain: 'cluster.local', trustDomain: 'cluster.local' };
const REVIEWS = 'reviews.default.svc.cluster.local';

const reviews: Workload = {
  id: 'reviews-1',
  service: 'reviews',
  namespace: 'default',
  serviceAccount: 'reviews',
  labels: { app: 'reviews', version: 'v1' },
  inboundAddress: '127.0.0.1:15106',
  appPort: 9080,
  identity: 'spiffe://cluster.local/ns/default/sa/reviews',
};

const snapshot = (yaml: string, workloads: Workload[] = [reviews]) => new Snapshot(1, parseConfigText(yaml, 'mesh.yaml'), workloads, OPTS);

function clusters(snap: Snapshot) {
  return new Map(snap.served(TypeUrl.Cluster, null).resources.map((r) => [r.name, decodeCluster(r.any)]));
}

function inbound(snap: Snapshot, w: Workload = reviews) {
  const l = snap.served(TypeUrl.Listener, null, w).resources.find((r) => r.name === 'virtualInbound');
  if (!l) throw new Error('no inbound listener');
  const m = decodeListener(l.any);
  if (m.kind !== 'inbound') throw new Error('not inbound');
  return m;
}

const SE = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`;

describe('cluster transport sockets', () => {
  it('mesh services are mutual TLS by default; ServiceEntry hosts are plaintext', () => {
    const c = clusters(snapshot(SE));
    expect(c.get(`outbound|80||${REVIEWS}`)!.tls).toEqual({ kind: 'mesh', sni: `outbound_.80_._.${REVIEWS}`, alpn: ['h2', 'http/1.1'], identities: [] });
    expect(c.get('outbound|443||api.example.com')!.tls).toBeUndefined();
  });

  it('DestinationRule tls: DISABLE, ISTIO_MUTUAL with subjectAltNames, SIMPLE with caCertificates and sni, MUTUAL with files', () => {
    const yaml = `${SE}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: DISABLE}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {tls: {mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/default/sa/reviews]}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ext}
spec:
  host: api.example.com
  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: /etc/ca.pem, sni: api.example.com, subjectAltNames: [api.example.com]}}
  subsets:
  - name: mutual
    labels: {}
    trafficPolicy: {tls: {mode: MUTUAL, clientCertificate: /etc/c.pem, privateKey: /etc/k.pem}}
  - name: insecure
    labels: {}
    trafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}
`;
    const c = clusters(snapshot(yaml));
    expect(c.get(`outbound|80||${REVIEWS}`)!.tls).toBeUndefined();
    expect(c.get(`outbound|80|v1|${REVIEWS}`)!.tls).toMatchObject({ kind: 'mesh', identities: ['spiffe://cluster.local/ns/default/sa/reviews'] });
    expect(c.get('outbound|443||api.example.com')!.tls).toEqual({
      kind: 'origination', sni: 'api.example.com', alpn: [], verify: true, caFile: '/etc/ca.pem', certFile: undefined, keyFile: undefined, dnsNames: ['api.example.com'],
    });
    expect(c.get('outbound|443|mutual|api.example.com')!.tls).toMatchObject({ kind: 'origination', verify: true, certFile: '/etc/c.pem', keyFile: '/etc/k.pem' });
    expect(c.get('outbound|443|insecure|api.example.com')!.tls).toMatchObject({ kind: 'origination', verify: false });
  });

  it('refuses at load a tls block whose fields do not fit its mode, naming the field', () => {
    const bad = (tls: string) => () =>
      parseConfigText(`apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: reviews\n  trafficPolicy: {tls: ${tls}}\n`, 'mesh.yaml');
    expect(bad('{mode: MUTUAL}')).toThrow(/spec\.trafficPolicy\.tls: .*MUTUAL needs clientCertificate/);
    expect(bad('{mode: SIMPLE, credentialName: secret}')).toThrow(/tls\.credentialName: not supported by Tandem/);
    expect(bad('{mode: DISABLE, sni: x}')).toThrow(/spec\.trafficPolicy\.tls/);
    expect(bad('{mode: ISTIO_MUTUAL, caCertificates: /x}')).toThrow(/spec\.trafficPolicy\.tls/);
  });
});

describe('the inbound listener', () => {
  const pa = (ns: string, spec: string) => `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: pa-${ns}, namespace: ${ns}}
spec: ${spec}
`;

  it('is STRICT with no policy: mTLS only, no authorization filters, XFCC set', () => {
    expect(inbound(snapshot(''))).toEqual({ kind: 'inbound', name: 'virtualInbound', plaintext: false, rbac: [], setClientCert: true });
  });

  it('takes plaintext too under PERMISSIVE (mesh-wide, namespace, selector, port level)', () => {
    expect(inbound(snapshot(pa('istio-system', '{mtls: {mode: PERMISSIVE}}'))).plaintext).toBe(true);
    expect(inbound(snapshot(pa('default', '{mtls: {mode: PERMISSIVE}}'))).plaintext).toBe(true);
    expect(inbound(snapshot(pa('other', '{mtls: {mode: PERMISSIVE}}'))).plaintext).toBe(false);
    expect(inbound(snapshot(pa('default', '{selector: {matchLabels: {app: reviews}}, mtls: {mode: DISABLE}}'))).plaintext).toBe(true);
    expect(inbound(snapshot(pa('default', '{selector: {matchLabels: {app: ratings}}, mtls: {mode: DISABLE}}'))).plaintext).toBe(false);
    expect(inbound(snapshot(pa('default', '{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}, portLevelMtls: {9080: {mode: PERMISSIVE}}}'))).plaintext).toBe(true);
    expect(inbound(snapshot(pa('default', '{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}, portLevelMtls: {9999: {mode: PERMISSIVE}}}'))).plaintext).toBe(false);
  });

  it('carries the AuthorizationPolicies that select the workload as RBAC filters the sidecar decodes', () => {
    const yaml = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: default}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-delete, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules: [{to: [{operation: {methods: [DELETE]}}]}]
`;
    const m = inbound(snapshot(yaml));
    expect(m.rbac.map((f) => f.rules?.action)).toEqual(['DENY', 'ALLOW']);
    const other = inbound(snapshot(yaml, [{ ...reviews, labels: { app: 'ratings' } }]), { ...reviews, labels: { app: 'ratings' } });
    expect(other.rbac.map((f) => f.rules?.action)).toEqual(['ALLOW']);
  });

  it('is only sent to sidecars, never to proxyless clients', () => {
    const snap = snapshot('');
    expect(snap.served(TypeUrl.Listener, null).resources.map((r) => r.name)).toEqual(['outbound']);
  });
});
