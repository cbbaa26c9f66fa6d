// Services outside the mesh, declared by ServiceEntries, reached in plaintext through a
// sidecar: static endpoints by subset, names the sidecar resolves itself (DNS and
// DNS_ROUND_ROBIN, on localhost), the destination the application names (NONE), endpoint
// weights and targetPort.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as h from './harness';

let dir: string;
let client: h.Sidecar;
let v1: h.App;
let v2: h.App;
let dnsApp: h.App;
let rrApp: h.App;
let noneApp: h.App;
let light: h.App;
let heavy: h.App;

interface Ports {
  v1: number;
  v2: number;
  dead: number;
  dns: number;
  rr: number;
  none: number;
  light: number;
  heavy: number;
}

const yaml = (p: Ports) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: down}
spec:
  hosts: [down.payments.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${p.dead}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments}
spec:
  hosts: [api.payments.example]
  ports: [{number: 8443, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 127.0.0.1, ports: {http: ${p.v1}}, labels: {version: v1}}
  - {address: 127.0.0.1, ports: {http: ${p.v2}}, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: payments}
spec:
  host: api.payments.example
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: payments}
spec:
  hosts: [api.payments.example]
  http:
  - match: [{uri: {prefix: /v2/}}]
    rewrite: {uri: /}
    route: [{destination: {host: api.payments.example, subset: v2}}]
  - route: [{destination: {host: api.payments.example, subset: v1}}]
---
# the sidecar resolves localhost itself; the endpoint names no port, so targetPort is used
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns}
spec:
  hosts: [api.dns.example]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: ${p.dns}}]
  resolution: DNS
  location: MESH_EXTERNAL
  endpoints: [{address: localhost}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: rr}
spec:
  hosts: [api.rr.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS_ROUND_ROBIN
  endpoints: [{address: localhost, ports: {http: ${p.rr}}}]
---
# no resolution: NONE, the destination the application names, on targetPort
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: none}
spec:
  hosts: [api.none.example]
  addresses: [127.0.0.1]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: ${p.none}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: weighted}
spec:
  hosts: [api.weighted.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 127.0.0.1, ports: {http: ${p.light}}, weight: 1}
  - {address: 127.0.0.1, ports: {http: ${p.heavy}}, weight: 3}
`;

beforeAll(async () => {
  dir = h.tmpDir('tandem-se-');
  v1 = await h.startApp('payments-v1');
  v2 = await h.startApp('payments-v2');
  dnsApp = await h.startApp('dns');
  rrApp = await h.startApp('rr');
  noneApp = await h.startApp('none');
  light = await h.startApp('light');
  heavy = await h.startApp('heavy');
  const config = path.join(dir, 'mesh.yaml');
  // nothing listens on `dead`: a port just found free and not bound again
  fs.writeFileSync(config, yaml({ v1: v1.port, v2: v2.port, dead: await h.freePort(), dns: dnsApp.port, rr: rrApp.port, none: noneApp.port, light: light.port, heavy: heavy.port }));
  const cp = await h.startControlPlane(dir, config);
  const app = await h.startApp('caller');
  client = await h.startSidecar(cp, 'caller', app.port);
});

afterAll(async () => {
  await h.stopAll();
  await h.closeApps();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('ServiceEntry', () => {
  it('reaches the static endpoints directly, by subset, with the Host kept', async () => {
    const r = await h.request(client.outbound, { host: 'api.payments.example:8443', path: '/charge?id=7' });
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body) as { app: string; host: string; path: string };
    expect(body).toMatchObject({ app: 'payments-v1', host: 'api.payments.example:8443', path: '/charge?id=7' });
    expect(r.headers['x-tandem-response-flags']).toBeUndefined();
  });

  it('applies a prefix rewrite on the way', async () => {
    const r = await h.request(client.outbound, { host: 'api.payments.example', path: '/v2/refund' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ app: 'payments-v2', path: '/refund' });
  });

  it('answers 503 UF when the endpoint refuses connections', async () => {
    const r = await h.request(client.outbound, { host: 'down.payments.example', path: '/charge' });
    expect(r.status).toBe(503);
    expect(r.headers['x-tandem-response-flags']).toBe('UF');
  });

  it('resolution DNS: the sidecar resolves the endpoint name (localhost) and connects to targetPort', async () => {
    const hits = dnsApp.hits;
    const r = await h.request(client.outbound, { host: 'api.dns.example', path: '/get' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ app: 'dns', host: 'api.dns.example', path: '/get' });
    expect(dnsApp.hits).toBe(hits + 1);
    const clusters = await h.json<{ name: string; endpoints: { address: string }[] }[]>(client.admin, '/clusters');
    expect(clusters.find((c) => c.name === 'outbound|80||api.dns.example')!.endpoints.map((e) => e.address)).toEqual([`127.0.0.1:${dnsApp.port}`]);
  });

  it('resolution DNS_ROUND_ROBIN: the first address of the name', async () => {
    const r = await h.request(client.outbound, { host: 'api.rr.example', path: '/' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ app: 'rr' });
  });

  it('resolution NONE: the destination the application named (an address of the entry), on targetPort', async () => {
    const hits = noneApp.hits;
    const r = await h.request(client.outbound, { host: '127.0.0.1', path: '/passthrough' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ app: 'none', host: '127.0.0.1', path: '/passthrough' });
    expect(noneApp.hits).toBe(hits + 1);
  });

  it('resolution NONE: a host name that does not resolve is a connect failure (503 UF)', async () => {
    const r = await h.request(client.outbound, { host: 'api.none.example', path: '/' });
    expect(r.status).toBe(503);
    expect(r.headers['x-tandem-response-flags']).toBe('UF');
  });

  it('endpoint weights 1:3 share the requests exactly 1:3', async () => {
    const before = [light.hits, heavy.hits];
    for (let i = 0; i < 40; i++) expect((await h.request(client.outbound, { host: 'api.weighted.example', path: `/w/${i}` })).status).toBe(200);
    expect([light.hits - before[0], heavy.hits - before[1]]).toEqual([10, 30]);
  });
});
