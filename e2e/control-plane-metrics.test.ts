// The control plane's own figures at its admin /metrics, each moving when it should:
// connected proxies with the streams, certificates with the sidecars that were issued
// one, pushes and push convergence with a config edit (counted once per proxy that
// acknowledges it), and a NACK from a hand-made ADS client on the plaintext port.
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adsService, type AdsClientStream, type DiscoveryResponse } from '../proto/ads';
import { TypeUrl } from '../proto/type-urls';
import * as h from './harness';
import type { SyncEntry } from '../control-plane/syncz';

const mesh = (v1: number, v2: number) => `${h.REVIEWS_SUBSETS}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: ${v1}
    - destination:
        host: reviews
        subset: v2
      weight: ${v2}
`;

const AdsClient = grpc.makeGenericClientConstructor(adsService, 'AggregatedDiscoveryService');

describe('control-plane metrics e2e: connected proxies, certificates, pushes, convergence, NACKs', () => {
  let dir: string;
  let configPath: string;
  let cp: h.ControlPlane;
  const scrape = async () => (await h.request(cp.admin, { path: '/metrics' })).body;
  const value = (text: string, name: string, labels: Record<string, string> = {}) => h.metricValue(text, name, labels) ?? 0;

  beforeAll(async () => {
    dir = h.tmpDir('tandem-cp-metrics-e2e-');
    configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, mesh(100, 0));
    cp = await h.startControlPlane(dir, configPath);
    const reviewsApp = await h.startApp('reviews-v1');
    const productApp = await h.startApp('productpage');
    await h.startSidecar(cp, 'reviews', reviewsApp.port, { version: 'v1' });
    const product = await h.startSidecar(cp, 'productpage', productApp.port, { version: 'v1' });
    await h.waitFor('productpage reaches reviews', async () => (await h.request(product.outbound, { host: 'reviews', path: '/' })).status === 200, 10_000);
  }, 60_000);

  afterAll(async () => {
    await h.closeApps();
    await h.stopAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts the connected proxies and the certificates issued to them', async () => {
    const text = await scrape();
    expect(value(text, 'tandem_connected_proxies')).toBe(2);
    expect(value(text, 'tandem_certificates_issued_total', { via: 'token' })).toBeGreaterThanOrEqual(2);
    expect(value(text, 'tandem_xds_pushes_total', { type: 'CDS' })).toBeGreaterThanOrEqual(2);
  });

  it('a route edit is pushed to both sidecars, and its convergence observed once per acknowledging proxy', async () => {
    // the sidecars speak Delta xDS with VHDS (the default): an edit is one VirtualHost, not the
    // route table, and it counts as route discovery (RDS), as dashboards on RDS expect
    const count = (t: string) => value(t, 'tandem_xds_push_convergence_seconds_count', { type: 'RDS' });
    const sum = (t: string) => value(t, 'tandem_xds_push_convergence_seconds_sum', { type: 'RDS' });
    const pushes = (t: string) => value(t, 'tandem_xds_pushes_total', { type: 'RDS' });
    const vhds = (t: string) => value(t, 'tandem_xds_pushes_total', { type: 'VHDS' });
    // The second sidecar's join is pushed to the first too, and that ACK may still be on
    // its way; counted after the reading below, it would pass for the edit's. So: every
    // stream SYNCED, and no push or ACK across a window longer than the debounce's cap.
    const synced = async () => (await h.json<SyncEntry[]>(cp.admin, '/debug/syncz')).every((e) => Object.values(e.types).every((t) => t.status === 'SYNCED'));
    const before = await h.waitFor('the mesh quiet after the joins', async () => {
      const a = await scrape();
      if (!(await synced())) return undefined;
      await new Promise((r) => setTimeout(r, 700));
      const b = await scrape();
      return (await synced()) && pushes(a) === pushes(b) && count(a) === count(b) ? b : undefined;
    }, 15_000, 50);
    // replaced in one step, so the watcher sees one change
    fs.writeFileSync(`${configPath}.tmp`, mesh(50, 50));
    fs.renameSync(`${configPath}.tmp`, configPath);
    const after = await h.waitFor('both sidecars acknowledged the new routes', async () => {
      const t = await scrape();
      return count(t) - count(before) >= 2 ? t : undefined;
    }, 15_000, 100);
    expect(count(after) - count(before)).toBe(2);
    expect(pushes(after) - pushes(before)).toBe(2);
    expect(vhds(after)).toBe(0);
    // from the file change to the ACK: some time, well inside the buckets
    expect(sum(after) - sum(before)).toBeGreaterThan(0);
    expect(after).toMatch(/tandem_xds_push_convergence_seconds_bucket\{le="60",type="RDS"\}/);
  });

  it('a NACK from a client is counted under its type, and the stream with the proxies', async () => {
    const client = new AdsClient(`127.0.0.1:${cp.xdsPlaintext}`, grpc.credentials.createInsecure());
    const stream = (client as unknown as { StreamAggregatedResources(): AdsClientStream }).StreamAggregatedResources();
    try {
      const first = new Promise<DiscoveryResponse>((resolve, reject) => {
        stream.once('data', resolve);
        stream.once('error', reject);
      });
      stream.write({ node: { id: 'metrics-test-client' }, type_url: TypeUrl.Cluster, resource_names: [] });
      const res = await first;
      expect(value(await scrape(), 'tandem_connected_proxies')).toBe(3);
      const before = value(await scrape(), 'tandem_xds_nacks_total', { type: 'CDS' });
      stream.write({ type_url: TypeUrl.Cluster, response_nonce: res.nonce, version_info: '', error_detail: { code: 3, message: 'refused by the metrics test' } });
      await h.waitFor('the NACK counted', async () => value(await scrape(), 'tandem_xds_nacks_total', { type: 'CDS' }) === before + 1, 10_000, 50);
      expect(value(await scrape(), 'tandem_xds_nacks_total', { type: 'LDS' })).toBe(0);
    } finally {
      stream.end();
      client.close();
    }
    await h.waitFor('the stream gone from the proxies', async () => value(await scrape(), 'tandem_connected_proxies') === 2, 10_000, 50);
  });
});
