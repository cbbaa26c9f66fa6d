// Config and xDS limits end to end (issue 13, item 4), on real processes: a control plane
// watching a config directory, reviews v1 and v2 behind their sidecars and productpage
// calling reviews. The config in force sends every request to v1; each refused config
// would send them to v2, so "the mesh keeps the previous config" is seen in the answers.
// That an unchanged file is not read again at each poll is tested where it can be counted:
// control-plane/config/watch.test.ts.
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTROL_PLANE_SNI } from '../certs/ca';
import { newKey } from '../certs/keys';
import { adsService, type AdsClientStream, type DiscoveryRequest } from '../proto/ads';
import { nodeFromWorkload } from '../proto/node-meta';
import { TypeUrl } from '../proto/type-urls';
import { requestCertificate } from '../sidecar/identity/ca-client';
import * as h from './harness';

const reviewsTo = (subset: string, routes = ''): string => `${h.REVIEWS_SUBSETS}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
${routes}  - route:
    - destination:
        host: reviews
        subset: ${subset}
`;

/** `n` prefix routes, each to v2: about 120 bytes a route in YAML, 180 in the route table. */
const manyRoutes = (n: number): string => {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`  - match:\n    - uri:\n        prefix: /route-${i}\n    route:\n    - destination:\n        host: reviews\n        subset: v2\n`);
  return out.join('');
};

interface ConfigView {
  files: string[];
  lastError?: { message: string; file?: string };
}

const AdsClient = grpc.makeGenericClientConstructor(adsService, 'AggregatedDiscoveryService');

describe('hostile config: limits on what the control plane loads, sends and registers', () => {
  let dir: string;
  let configDir: string;
  let cp: h.ControlPlane;
  let product: h.Sidecar;
  let reviewsV1: h.Sidecar;
  const scrape = async () => (await h.request(cp.admin, { path: '/metrics' })).body;
  const metric = async (name: string, labels: Record<string, string> = {}) => h.metricValue(await scrape(), name, labels) ?? 0;
  const configView = () => h.json<ConfigView>(cp.admin, '/debug/config');
  /** replaced in one step, so the watcher never sees half a file */
  const put = (name: string, text: string) => {
    const tmp = path.join(configDir, `.${name}.tmp`);
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, path.join(configDir, name));
  };
  /** who answers a request that only the catch-all route matches */
  const served = async () => JSON.parse((await h.request(product.outbound, { host: 'reviews', path: '/' })).body).app as string;
  /** the last load failed, with an error that names `what` */
  const loadFailed = (what: string) =>
    h.waitFor(`the config load to fail on ${what}`, async () => (await metric('tandem_config_last_load_success')) === 0 && (await configView()).lastError?.message.includes(what), 60_000, 100);
  const loadSucceeded = () => h.waitFor('the config load to succeed', async () => (await metric('tandem_config_last_load_success')) === 1, 60_000, 100);

  beforeAll(async () => {
    dir = h.tmpDir('tandem-hostile-config-e2e-');
    configDir = path.join(dir, 'config');
    fs.mkdirSync(configDir);
    put('mesh.yaml', reviewsTo('v1'));
    cp = await h.startControlPlane(dir, configDir);
    const v1 = await h.startApp('reviews-v1');
    const v2 = await h.startApp('reviews-v2');
    const productApp = await h.startApp('productpage');
    reviewsV1 = await h.startSidecar(cp, 'reviews', v1.port, { version: 'v1' });
    await h.startSidecar(cp, 'reviews', v2.port, { version: 'v2' });
    product = await h.startSidecar(cp, 'productpage', productApp.port, { version: 'v1' });
    await h.waitFor('productpage reaches reviews v1', async () => (await served().catch(() => '')) === 'reviews-v1', 15_000);
  }, 60_000);

  afterAll(async () => {
    await h.closeApps();
    await h.stopAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses at load a config whose route table a sidecar could not receive (40,000 routes), naming it, and keeps routing by the previous one', async () => {
    const nacks = await metric('tandem_xds_nacks_total', { type: 'RDS' });
    // valid in every other way: 4.9 MB of YAML, under the file limit; the route table would be over 7 MB
    put('mesh.yaml', reviewsTo('v2', manyRoutes(40_000)));
    await loadFailed('too large for the sidecars');
    const view = await configView();
    expect(view.lastError?.message).toMatch(/too large for the sidecars: the RouteConfiguration response to a sidecar would be [\d,]+ bytes, over the 4,194,304-byte limit/);
    expect(view.lastError?.message).toMatch(/RouteConfiguration "outbound" [\d,]+ bytes \(2 virtual hosts, the most routes in reviews\.default\.svc\.cluster\.local \(40,001\), productpage/);
    // nothing of it reached a sidecar: the streams stay up, nothing NACKed, the old routes answer
    expect(await metric('tandem_connected_proxies')).toBe(3);
    expect(await metric('tandem_xds_nacks_total', { type: 'RDS' })).toBe(nacks);
    for (let i = 0; i < 5; i++) expect(await served()).toBe('reviews-v1');
    // a config the sidecars can take is loaded again
    put('mesh.yaml', reviewsTo('v1', manyRoutes(100)));
    await loadSucceeded();
    expect(await served()).toBe('reviews-v1');
  }, 120_000);

  it('refuses a config file over the size limit naming the file, before reading it, and keeps the previous config', async () => {
    // 9 MiB of comment: valid, and cheap to parse, yet over the 8 MiB a file may be
    const big = path.join(configDir, 'big.yaml');
    put('big.yaml', `# ${'x'.repeat(1021)}\n`.repeat(9 * 1024));
    await loadFailed(big);
    const view = await configView();
    expect(view.lastError?.file).toBe(big);
    expect(view.lastError?.message).toMatch(new RegExp(`^${big.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: is 9,437,184 bytes, over the limit of 8 MiB for one config file`));
    // the admin stays responsive, the mesh keeps its routes
    expect((await h.request(cp.admin, { path: '/ready' })).status).toBe(200);
    expect(await served()).toBe('reviews-v1');
    fs.unlinkSync(big);
    await loadSucceeded();
  }, 120_000);

  it('refuses with INVALID_ARGUMENT a sidecar announcing an address peers could not dial, and pushes nothing of it', async () => {
    const target = `127.0.0.1:${cp.listen}`;
    const rootPem = fs.readFileSync(path.join(cp.caDir, 'root-cert.pem'), 'utf8');
    // a workload with a real certificate for reviews: registration would otherwise be allowed
    const token = fs.readFileSync(h.mintTokenFile(cp, { serviceAccount: 'reviews', services: ['reviews'] }), 'utf8');
    const key = newKey();
    const chain = await requestCertificate({ target, rootPem }, key, 'spiffe://cluster.local/ns/default/sa/reviews', { token });
    const creds = grpc.credentials.createSsl(Buffer.from(rootPem), Buffer.from(key.keyPem), Buffer.from(chain.join('')));
    const refused = () => metric('tandem_xds_streams_refused_total', { reason: 'BAD_NODE' });
    const before = { refused: await refused(), nacks: await metric('tandem_xds_nacks_total', { type: 'EDS' }) };
    const endpoints = await endpointsOf(product, 'reviews');
    expect(endpoints).toContain(`127.0.0.1:${reviewsV1.inbound}`);

    for (const inboundAddress of ['bad host!:15006', '127.0.0.1:99999999']) {
      const node = nodeFromWorkload({ id: `hostile~${inboundAddress}`, service: 'reviews', namespace: 'default', serviceAccount: 'reviews', labels: { version: 'v1' }, inboundAddress });
      const status = await register(target, creds, node);
      expect(status.code, status.details).toBe(grpc.status.INVALID_ARGUMENT);
      expect(status.details).toContain(`metadata.INBOUND_ADDRESS ${JSON.stringify(inboundAddress)}`);
    }
    expect(await refused()).toBe(before.refused + 2);
    // the others keep their endpoints, and none was handed one to refuse
    expect(await endpointsOf(product, 'reviews')).toEqual(endpoints);
    expect(await metric('tandem_xds_nacks_total', { type: 'EDS' })).toBe(before.nacks);
    expect(await served()).toBe('reviews-v1');
  }, 60_000);

  it('tandem sidecar refuses --advertise and --inbound values peers could not dial, at startup, with exit status 2', async () => {
    const common = ['sidecar', '--service', 'reviews', '--token', 'unused', '--control-plane', `127.0.0.1:${cp.listen}`];
    for (const [flag, value, why] of [
      ['--advertise', 'bad host!', /^tandem: --advertise: "bad host!" is not an IP address or a DNS name/],
      ['--advertise', '127.0.0.1:99999999', /^tandem: --advertise: "127\.0\.0\.1:99999999": the port must be 1\.\.65535/],
      ['--inbound', 'bad host!:15006', /^tandem: --inbound: "bad host!" is not an IP address or a DNS name/],
    ] as const) {
      const r = await h.runTandem([...common, flag, value]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(why);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  }, 60_000);
});

async function endpointsOf(sc: { admin: number }, service: string): Promise<string[]> {
  const clusters = await h.json<{ name: string; endpoints: { address: string }[] }[]>(sc.admin, '/clusters');
  return clusters
    .filter((c) => c.name.includes(`|${service}.`))
    .flatMap((c) => c.endpoints.map((e) => e.address))
    .sort();
}

/** An ADS stream that announces `node`; resolves with how the control plane ended it. */
function register(target: string, creds: grpc.ChannelCredentials, node: DiscoveryRequest['node']): Promise<{ code?: grpc.status; details?: string }> {
  const client = new AdsClient(target, creds, {
    'grpc.ssl_target_name_override': CONTROL_PLANE_SNI,
    'grpc.default_authority': CONTROL_PLANE_SNI,
    'grpc.use_local_subchannel_pool': 1,
  });
  const stream = (client as unknown as { StreamAggregatedResources(): AdsClientStream }).StreamAggregatedResources();
  return new Promise((resolve) => {
    const done = (s: { code?: grpc.status; details?: string }) => {
      clearTimeout(timer);
      stream.cancel();
      client.close();
      resolve(s);
    };
    // accepted, it would be answered with clusters; refused, it ends with a status
    const timer = setTimeout(() => done({ details: 'neither answered nor refused in 10 s' }), 10_000);
    stream.on('data', () => done({ code: grpc.status.OK, details: 'accepted: answered with config' }));
    stream.on('error', (err: grpc.ServiceError) => done({ code: err.code, details: err.details }));
    stream.write({ node, type_url: TypeUrl.Cluster, resource_names: [] });
  });
}
