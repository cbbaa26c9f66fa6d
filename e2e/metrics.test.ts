// Istio's standard metrics at the sidecars' admin /metrics, end to end: productpage v1
// calls reviews v2 through both sidecars; each side counts every request once, the
// client as reporter "source", the server as reporter "destination" over mutual TLS,
// with the workloads, versions and principals of both ends. A route to an empty
// subset gives 503 UH, counted with its flag. With --concurrency 2 a scrape is the sum
// over both workers.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

const MESH = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v2
    labels:
      version: v2
  - name: empty
    labels:
      version: none
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - match:
    - headers:
        x-empty:
          exact: "yes"
    route:
    - destination:
        host: reviews
        subset: empty
  - route:
    - destination:
        host: reviews
        subset: v2
`;

const REVIEWS = 'reviews.default.svc.cluster.local';

describe('metrics e2e: Istio standard metrics at both sidecars', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let product: h.Sidecar;
  let reviews: h.Sidecar;
  let reviewsApp: h.App;

  const scrape = async (sc: h.Sidecar) => (await h.request(sc.admin, { path: '/metrics' })).body;
  // A request is counted as its exchange ends, a moment after the client has its response:
  // a scrape is read once what it counts has settled (the same twice running), or has reached a mark.
  const settled = async (sc: h.Sidecar, value: (text: string) => number): Promise<string> => {
    let last = NaN;
    return (
      await h.waitFor(`${sc.service}'s count to settle`, async () => {
        const text = await scrape(sc);
        const v = value(text);
        const same = v === last;
        last = v;
        return same ? { text } : undefined;
      }, 10_000, 150)
    ).text;
  };
  const reached = async (sc: h.Sidecar, ok: (text: string) => boolean): Promise<string> =>
    (await h.waitFor(`${sc.service}'s count`, async () => {
      const text = await scrape(sc);
      return ok(text) ? { text } : undefined;
    }, 10_000, 50)).text;

  beforeAll(async () => {
    dir = h.tmpDir('tandem-metrics-e2e-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, MESH);
    cp = await h.startControlPlane(dir, configPath);
    reviewsApp = await h.startApp('reviews-v2');
    const productApp = await h.startApp('productpage');
    reviews = await h.startSidecar(cp, 'reviews', reviewsApp.port, { version: 'v2' });
    product = await h.startSidecar(cp, 'productpage', productApp.port, { version: 'v1' });
    // the client knows the reviews endpoint
    await h.waitFor('productpage reaches reviews', async () => ((await h.request(product.outbound, { host: 'reviews', path: '/warm' })).status === 200 ? true : undefined), 10_000);
  }, 60_000);

  afterAll(async () => {
    await h.closeApps();
    await h.stopAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts N requests on both sidecars with Istio labels, and a 503 UH with its flag', async () => {
    const base = (text: string, labels: Record<string, string>) => h.metricValue(text, 'istio_requests_total', labels) ?? 0;
    const clientOk = { reporter: 'source', source_workload: 'productpage-v1', source_version: 'v1', destination_service: REVIEWS, destination_workload: 'reviews-v2', destination_version: 'v2', response_code: '200', response_flags: '-', request_protocol: 'http' };
    const serverOk = {
      reporter: 'destination',
      source_workload: 'productpage-v1',
      source_workload_namespace: 'default',
      source_principal: 'spiffe://cluster.local/ns/default/sa/productpage',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/reviews',
      destination_service: REVIEWS,
      destination_workload: 'reviews-v2',
      destination_version: 'v2',
      response_code: '200',
      connection_security_policy: 'mutual_tls',
    };
    const before = await Promise.all([settled(product, (t) => base(t, clientOk)), settled(reviews, (t) => base(t, serverOk))]);
    const c0 = base(before[0], clientOk);
    const s0 = base(before[1], serverOk);
    const d0 = h.metricValue(before[0], 'istio_request_duration_milliseconds_count', clientOk) ?? 0;

    const N = 25;
    const answers = await h.pool(N, 5, () => h.request(product.outbound, { host: 'reviews', path: '/r' }));
    expect(answers.map((a) => a.status)).toEqual(new Array(N).fill(200));
    // the peer metadata is for the sidecars: the application never sees it
    expect(reviewsApp.last?.['x-tandem-peer-metadata']).toBeUndefined();
    const uh = await h.request(product.outbound, { host: 'reviews', path: '/r', headers: { 'x-empty': 'yes' } });
    expect(uh.status).toBe(503);

    const uhCount = (t: string) => h.metricValue(t, 'istio_requests_total', { reporter: 'source', destination_service: REVIEWS, response_code: '503', response_flags: 'UH' }) ?? 0;
    const [client, server] = await Promise.all([
      reached(product, (t) => base(t, clientOk) - c0 >= N && uhCount(t) >= 1),
      reached(reviews, (t) => base(t, serverOk) - s0 >= N),
    ]);
    expect(base(client, clientOk) - c0).toBe(N);
    expect(base(server, serverOk) - s0).toBe(N);
    // Istio's client side does not claim to know the transport policy
    expect(h.metricValue(client, 'istio_requests_total', { ...clientOk, connection_security_policy: 'unknown' })).toBeGreaterThanOrEqual(N);
    expect(h.metricValue(client, 'istio_requests_total', { reporter: 'source', destination_service: REVIEWS, response_code: '503', response_flags: 'UH' })).toBe(1);
    // every request is one observation of the duration histogram, in Istio's buckets
    expect((h.metricValue(client, 'istio_request_duration_milliseconds_count', clientOk) ?? 0) - d0).toBe(N);
    expect(client).toMatch(/istio_request_duration_milliseconds_bucket\{le="0\.5",reporter="source"/);
    expect(client).toMatch(/istio_request_duration_milliseconds_bucket\{le="3600000",/);
    expect(client).toMatch(/istio_response_bytes_bucket\{le="10000000",/);
    // downstream connections: the server's inbound ones are mutual TLS from productpage
    expect(h.metricValue(server, 'istio_tcp_connections_opened_total', { reporter: 'destination', source_principal: 'spiffe://cluster.local/ns/default/sa/productpage', connection_security_policy: 'mutual_tls' })).toBeGreaterThanOrEqual(1);
    expect(h.metricValue(client, 'istio_tcp_connections_opened_total', { reporter: 'source', request_protocol: 'tcp' })).toBeGreaterThanOrEqual(1);
    // proxy internals
    expect(h.metricValue(client, 'tandem_xds_connected')).toBe(1);
    expect(h.metricValue(client, 'tandem_xds_acks_total', { type: 'CDS' })).toBeGreaterThanOrEqual(1);
    expect(h.metricValue(client, 'tandem_certificate_expiry_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000);
  });

  it('--metrics off: no request or TCP metrics after traffic, the tandem_ internals still there', async () => {
    const ratingsApp = await h.startApp('ratings');
    const ratings = await h.startSidecar(cp, 'ratings', ratingsApp.port, { version: 'v1' }, { args: ['--metrics', 'off'] });
    await h.waitFor('ratings reaches reviews', async () => ((await h.request(ratings.outbound, { host: 'reviews', path: '/warm' })).status === 200 ? true : undefined), 10_000);
    const answers = await h.pool(10, 5, () => h.request(ratings.outbound, { host: 'reviews', path: '/m' }));
    expect(answers.map((a) => a.status)).toEqual(new Array(10).fill(200));
    // what the reviews sidecar (metrics on) counts from ratings shows the requests were over
    const fromRatings = { reporter: 'destination', source_workload: 'ratings-v1', response_code: '200' };
    await reached(reviews, (t) => (h.metricValue(t, 'istio_requests_total', fromRatings) ?? 0) >= 10);
    const text = await scrape(ratings);
    expect(text).not.toMatch(/^istio_requests_total\{/m);
    expect(text).not.toMatch(/^istio_request_duration_milliseconds_count\{/m);
    expect(text).not.toMatch(/^istio_tcp_connections_opened_total\{/m);
    expect(h.metricValue(text, 'tandem_xds_connected')).toBe(1);
  }, 60_000);

  it('--concurrency 2: one scrape is the sum over both workers', async () => {
    const detailsApp = await h.startApp('details');
    const details = await h.startSidecar(cp, 'details', detailsApp.port, { version: 'v1' }, { args: ['--concurrency', '2'] });
    const M = 40;
    const labels = { reporter: 'source', source_workload: 'details-v1', destination_workload: 'reviews-v2', response_code: '200' };
    // every request on a connection of its own, so node:cluster hands them to both workers in turn
    await h.waitFor(
      'both workers route to reviews',
      async () => {
        const r = await h.pool(4, 1, () => h.request(details.outbound, { host: 'reviews', path: '/warm', headers: { connection: 'close' } }));
        return r.every((a) => a.status === 200) ? true : undefined;
      },
      10_000,
    );
    const count = (text: string) => h.metricValue(text, 'istio_requests_total', labels) ?? 0;
    const before = count(await settled(details, count));
    const answers = await h.pool(M, 1, () => h.request(details.outbound, { host: 'reviews', path: '/d', headers: { connection: 'close' } }));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    await reached(details, (t) => count(t) - before >= M).catch(async (err) => {
      const lines = (await scrape(details)).split('\n').filter((l) => l.startsWith('istio_requests_total'));
      throw new Error(`${(err as Error).message}; before ${before}; ${lines.join('\n')}`);
    });
    // whichever worker answers the scrape, it is the whole sidecar's count
    for (let i = 0; i < 4; i++) {
      const text = (await h.request(details.admin, { path: '/metrics', headers: { connection: 'close' } })).body;
      expect((h.metricValue(text, 'istio_requests_total', labels) ?? 0) - before).toBe(M);
    }
  }, 60_000);
});
