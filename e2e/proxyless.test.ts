// Proxyless gRPC (SPEC §4): a real @grpc/grpc-js-xds client talks ADS to the control
// plane's plaintext port and routes to two real gRPC backends by what it was sent:
// weighted clusters, a header match, and a config edit followed live.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as grpcXds from '@grpc/grpc-js-xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, startControlPlane, stopAll, tmpDir, waitFor, type ControlPlane } from './harness';

// The bootstrap is otherwise read once per process (GRPC_XDS_BOOTSTRAP*); this channel
// option gives each channel its own XdsClient, and so its own ADS stream and node id.
const BOOTSTRAP_OPTION = 'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config';
// The ServiceEntry's service port: a name in the mesh only, nothing listens on it.
const SERVICE_PORT = 9080;
const FQDN = 'reviews.default.svc.cluster.local';

interface GetReply {
  version: string;
  canary: string;
}
type ReviewsClient = grpc.Client & {
  Get(req: { product: string }, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: GetReply) => void): grpc.ClientUnaryCall;
};

const packageDef = protoLoader.loadSync(path.join(__dirname, 'fixtures', 'reviews.proto'), { keepCase: true });
const Reviews = (grpc.loadPackageDefinition(packageDef) as unknown as { tandem: { e2e: { Reviews: grpc.ServiceClientConstructor } } }).tandem.e2e
  .Reviews;

interface Backend {
  version: string;
  port: number;
  hits: number;
  server: grpc.Server;
}

async function startBackend(version: string): Promise<Backend> {
  const server = new grpc.Server();
  const b: Backend = { version, port: 0, hits: 0, server };
  server.addService(Reviews.service, {
    Get: (call: grpc.ServerUnaryCall<unknown, GetReply>, cb: grpc.sendUnaryData<GetReply>) => {
      b.hits++;
      cb(null, { version, canary: String(call.metadata.get('x-canary')[0] ?? '') });
    },
  });
  b.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  return b;
}

function meshYaml(v1: number, v2: number, ports: { v1: number; v2: number }): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  ports: [{number: ${SERVICE_PORT}, name: grpc, protocol: GRPC}]
  endpoints:
  - {address: 127.0.0.1, ports: {grpc: ${ports.v1}}, labels: {version: v1}}
  - {address: 127.0.0.1, ports: {grpc: ${ports.v2}}, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: canary
    match: [{headers: {x-canary: {exact: "yes"}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - name: fault
    match: [{headers: {x-fault: {exact: "abort"}}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: reviews, subset: v1}}]
  - name: split
    # gRPC clients have no CORS filter: the route's policy must not make them refuse the routes
    corsPolicy: {allowOrigins: [{exact: "https://example.com"}], allowMethods: [POST]}
    route:
    - {destination: {host: reviews, subset: v1}, weight: ${v1}}
    - {destination: {host: reviews, subset: v2}, weight: ${v2}}
`;
}

// Replace, never rewrite in place, so the watcher cannot read half a file.
function writeConfig(file: string, body: string): void {
  fs.writeFileSync(`${file}.tmp`, body);
  fs.renameSync(`${file}.tmp`, file);
}

function bootstrap(cp: ControlPlane, nodeId: string): string {
  return JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${cp.xdsPlaintext}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: nodeId, cluster: 'proxyless-e2e', locality: {}, metadata: { PROXYLESS: 'true' } },
  });
}

function call(client: ReviewsClient, md = new grpc.Metadata(), timeoutMs = 5000): Promise<GetReply> {
  return new Promise((resolve, reject) =>
    client.Get({ product: 'p1' }, md, { deadline: Date.now() + timeoutMs }, (err, reply) => (err ? reject(err) : resolve(reply!))),
  );
}

/** n calls, `concurrency` in flight at once; counts answers per version. */
async function tally(client: ReviewsClient, n: number, md?: grpc.Metadata, concurrency = 50): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const r = await call(client, md);
      counts[r.version] = (counts[r.version] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

const share = (c: Record<string, number>, v: string) => (c[v] ?? 0) / Object.values(c).reduce((a, b) => a + b, 0);

interface SyncEntry {
  id: string;
  proxyless: boolean;
  types: Record<string, { sent?: string; acked?: string; status: string }>;
}

async function expectSynced(cp: ControlPlane, ids: string[]): Promise<SyncEntry[]> {
  return waitFor(
    `syncz SYNCED for ${ids.join(', ')}`,
    async () => {
      const all = await json<SyncEntry[]>(cp.admin, '/debug/syncz');
      const mine = ids.map((id) => all.find((e) => e.id === id));
      const ok = mine.every(
        (e) => e && e.proxyless && ['LDS', 'RDS', 'CDS', 'EDS'].every((t) => e.types[t]?.status === 'SYNCED' && e.types[t].acked === e.types[t].sent),
      );
      return ok ? (mine as SyncEntry[]) : false;
    },
    15_000,
    100,
  );
}

// 2000 calls: one standard deviation of an 80/20 share is 0.9 points, of 50/50 1.1,
// so the 4-point tolerance is ~4 sigma and the test is not flaky.
const CALLS = 2000;
const TOLERANCE = 0.04;

describe('proxyless gRPC client (grpc-js-xds) against the plaintext ADS port', () => {
  let dir: string;
  let configPath: string;
  let cp: ControlPlane;
  let v1: Backend;
  let v2: Backend;
  const clients: { name: string; target: string; nodeId: string; client: ReviewsClient }[] = [];

  beforeAll(async () => {
    grpcXds.register();
    dir = tmpDir('tandem-proxyless-');
    [v1, v2] = await Promise.all([startBackend('v1'), startBackend('v2')]);
    configPath = path.join(dir, 'mesh.yaml');
    writeConfig(configPath, meshYaml(80, 20, { v1: v1.port, v2: v2.port }));
    cp = await startControlPlane(dir, configPath);
    for (const [name, target] of [
      ['short', 'xds:///reviews'],
      ['fqdn', `xds:///${FQDN}:${SERVICE_PORT}`],
    ] as const) {
      const nodeId = `proxyless-${name}-${process.pid}`;
      const client = new Reviews(target, grpc.credentials.createInsecure(), { [BOOTSTRAP_OPTION]: bootstrap(cp, nodeId) }) as unknown as ReviewsClient;
      clients.push({ name, target, nodeId, client });
    }
    // First resolution: LDS -> RDS -> CDS -> EDS, then connections to both backends.
    for (const c of clients) await waitFor(`first call via ${c.target}`, () => call(c.client, undefined, 2000).then(() => true), 30_000, 200);
  });

  afterAll(async () => {
    for (const c of clients) c.client.close();
    await Promise.all([v1, v2].filter(Boolean).map((b) => new Promise<void>((r) => b.server.tryShutdown(() => r()))));
    await stopAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('splits 80/20 over weighted clusters, for the short name and the FQDN:port target', async () => {
    for (const c of clients) {
      const counts = await tally(c.client, CALLS);
      expect(Object.keys(counts).sort(), c.target).toEqual(['v1', 'v2']);
      expect(Math.abs(share(counts, 'v1') - 0.8), `${c.target}: ${JSON.stringify(counts)}`).toBeLessThanOrEqual(TOLERANCE);
    }
    expect(v1.hits + v2.hits).toBeGreaterThanOrEqual(2 * CALLS);
  });

  it('routes x-canary: yes to v2 only', async () => {
    const md = new grpc.Metadata();
    md.set('x-canary', 'yes');
    for (const c of clients) {
      const counts = await tally(c.client, 100, md, 20);
      expect(counts, c.target).toEqual({ v2: 100 });
    }
    // other values take the split, not the canary route
    const other = new grpc.Metadata();
    other.set('x-canary', 'no');
    expect((await tally(clients[0].client, 200, other))['v1']).toBeGreaterThan(100);
  });

  it('injects the route\'s fault: an abort with HTTP 503 reaches the client as UNAVAILABLE, and no backend', async () => {
    const md = new grpc.Metadata();
    md.set('x-fault', 'abort');
    const before = v1.hits + v2.hits;
    for (const c of clients) {
      const err = await call(c.client, md).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code, c.target).toBe(grpc.status.UNAVAILABLE);
    }
    expect(v1.hits + v2.hits).toBe(before);
  });

  it('shows each proxyless client in /debug/syncz with LDS, RDS, CDS and EDS SYNCED', async () => {
    const entries = await expectSynced(
      cp,
      clients.map((c) => c.nodeId),
    );
    for (const e of entries) expect(Object.keys(e.types).sort()).toEqual(['CDS', 'EDS', 'LDS', 'RDS']);
  });

  it('follows an edit of the VirtualService to 50/50', async () => {
    const rdsAcked = async () => {
      const all = await json<SyncEntry[]>(cp.admin, '/debug/syncz');
      return clients.map((c) => all.find((e) => e.id === c.nodeId)?.types.RDS?.acked);
    };
    const before = await rdsAcked();
    writeConfig(configPath, meshYaml(50, 50, { v1: v1.port, v2: v2.port }));
    const started = Date.now();
    // SPEC: a valid change reaches every connected client within one second (file write to its ACK)
    await waitFor('every client to ACK the new route config', async () => (await rdsAcked()).every((v, i) => v !== undefined && v !== before[i]), 10_000, 20);
    const followedMs = Date.now() - started;
    expect(followedMs).toBeLessThan(1000);
    for (const c of clients) {
      // Under 80/20, 70+ of 200 calls on v2 is over 5 sigma away: seeing it means the edit arrived.
      await waitFor(
        `${c.target} to follow 50/50`,
        async () => {
          const counts = await tally(c.client, 200);
          return (counts['v2'] ?? 0) >= 70 && (counts['v2'] ?? 0) <= 130;
        },
        20_000,
        0,
      );
    }
    for (const c of clients) {
      const counts = await tally(c.client, CALLS);
      expect(Math.abs(share(counts, 'v1') - 0.5), `${c.target}: ${JSON.stringify(counts)}`).toBeLessThanOrEqual(TOLERANCE);
    }
    // the header route survived the edit
    const md = new grpc.Metadata();
    md.set('x-canary', 'yes');
    expect(await tally(clients[1].client, 50, md, 10)).toEqual({ v2: 50 });
    // and the clients acknowledged the new route config
    await expectSynced(
      cp,
      clients.map((c) => c.nodeId),
    );
  });
});
