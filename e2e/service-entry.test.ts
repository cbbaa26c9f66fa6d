// A service outside the mesh, declared by a ServiceEntry, reached in plaintext through a sidecar.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as h from './harness';

let dir: string;
let client: h.Sidecar;
let v1: h.App;
let v2: h.App;

const yaml = (v1Port: number, v2Port: number, deadPort: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: down}
spec:
  hosts: [down.payments.example]
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${deadPort}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments}
spec:
  hosts: [api.payments.example]
  ports: [{number: 8443, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 127.0.0.1, ports: {http: ${v1Port}}, labels: {version: v1}}
  - {address: 127.0.0.1, ports: {http: ${v2Port}}, labels: {version: v2}}
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
`;

beforeAll(async () => {
  dir = h.tmpDir('tandem-se-');
  v1 = await h.startApp('payments-v1');
  v2 = await h.startApp('payments-v2');
  const config = path.join(dir, 'mesh.yaml');
  // nothing listens there: a port just found free and not bound again
  fs.writeFileSync(config, yaml(v1.port, v2.port, await h.freePort()));
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
});
