// Wiring only: config watcher -> snapshot cache -> ADS server; the CA service beside it
// on the TLS port; the admin server.
import * as grpc from '@grpc/grpc-js';
import type { AddressInfo } from 'node:net';
import { adsService } from '../proto/ads';
import { caService } from '../proto/ca';
import { shortName } from '../proto/type-urls';
import { loadOrCreateRootCA, CertificateAuthority, CONTROL_PLANE_SNI } from '../certs/ca';
import { formatHostPort, type HostPort } from '../common/addr';
import { logger } from '../common/log';
import { adminServer } from '../common/admin-http';
import { ConfigWatcher, type ConfigError } from './config';
import { CONFIG_LIMITS, type ConfigLimits } from './config/limits';
import type { MeshConfig } from './model/types';
import { realClock, SnapshotCache, type Debounce } from './xds/cache';
import { OversizedConfigError } from './xds/message-size';
import { AdsServer, adsHandlers, type StreamPolicy } from './xds/server';
import { caHandlers } from './identity/ca-service';
import { CallRefused, peerIdentity } from './identity/peer';
import { meshServerCredentials } from './identity/server-credentials';
import { CertTracker } from './identity/cert-tracker';
import { ControlPlaneMetrics, metricType } from './metrics';
import { syncz } from './syncz';

// Pings on every connection: a sidecar whose machine vanished (a half-open stream) is
// noticed within seconds and its endpoint leaves EDS, instead of lingering until TCP gives up.
const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  // sidecars ping every 10 s themselves; allow it
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
};

// istiod's PILOT_DEBOUNCE_AFTER is 100ms; its PILOT_DEBOUNCE_MAX of 10s is far past the
// one second a push must take, so a steady stream of changes is pushed every half second.
const PUSH_DEBOUNCE: Debounce = { afterMs: 100, maxMs: 500 };

export interface ControlPlaneOptions {
  config: string;
  listen: HostPort;
  xdsPlaintext?: HostPort;
  admin: HostPort;
  caDir: string;
  trustDomain: string;
  certTtlMs: number;
  /** how long reconnecting clients wait after a restart; see AdsServer */
  warmupMs?: number;
  /** how changes are gathered into one push (PUSH_DEBOUNCE unless told) */
  debounce?: Debounce;
  /** how much config is read at all (CONFIG_LIMITS unless told) */
  configLimits?: Partial<ConfigLimits>;
  /** how long a service known only from its sidecars outlives the last one (SERVICE_GRACE_MS unless told; 0: not at all) */
  serviceGraceMs?: number;
  /** how long a sidecar whose stream ended without a goodbye stays an endpoint (ENDPOINT_GRACE_MS unless told) */
  endpointGraceMs?: number;
}

/** A sidecar reconnecting (its control plane restarted, the network blinked) changes nothing for its peers. */
export const ENDPOINT_GRACE_MS = 5_000;

/** A sidecar restarting, or a wave of them reconnecting, does not take its service out of every proxy's config. */
export const SERVICE_GRACE_MS = 30_000;

export interface ConfigStatus {
  config?: MeshConfig;
  files: string[];
  hash?: string;
  loadedAt?: string;
  lastError?: { message: string; file?: string; document?: number; field?: string; at: string };
}

export async function runControlPlane(o: ControlPlaneOptions): Promise<{ stop(): Promise<void> }> {
  const log = logger('control-plane');
  const metrics = new ControlPlaneMetrics();
  const root = loadOrCreateRootCA(o.caDir, o.trustDomain);
  const ca = new CertificateAuthority(root);
  // streams stay bound to the certificate they connected with, past its expiry: the tracker
  // keeps those links (ads is declared below; this is called only once certificates are issued)
  const certs = new CertTracker(Date.now, () => [...ads.streams.values()].flatMap((s) => (s.peer ? [s.peer.serial] : [])));
  const cache = new SnapshotCache({ domain: 'cluster.local', trustDomain: o.trustDomain }, o.debounce ?? PUSH_DEBOUNCE, realClock, {
    serviceMs: o.serviceGraceMs ?? SERVICE_GRACE_MS,
    endpointMs: o.endpointGraceMs ?? ENDPOINT_GRACE_MS,
  });
  cache.on('buildError', (err: Error) => log.error(`snapshot build failed, serving the previous one: ${err.message}`));
  const ads = new AdsServer(
    cache,
    {
      onPush: (t) => metrics.pushes.inc({ type: metricType(t) }),
      onNack: (s, t, msg) => {
        metrics.nacks.inc({ type: metricType(t) });
        log.warn(`${s.node?.id ?? s.key} rejected ${shortName[t]}: ${msg}`);
      },
      onAck: (_s, t, _v, since) => {
        if (since) metrics.convergence.observe({ type: metricType(t) }, (Date.now() - since) / 1000);
      },
      onStreamsChanged: (n) => metrics.connectedProxies.set(n),
      onRefused: (reason, msg) => {
        metrics.streamsRefused.inc({ reason });
        log.warn(`xDS stream refused (${reason}): ${msg}`);
      },
      onUnknownType: (s, t) => log.warn(`${s.node?.id ?? s.key} asked for ${t}, which is not served; answered with no resources`),
    },
    o.warmupMs ?? 5000,
  );

  const status: ConfigStatus = { files: [] };
  const watcher = new ConfigWatcher(o.config, {
    onConfig: (r) => {
      try {
        cache.setConfig(r.config, r.changedAt);
      } catch (err) {
        const why = err instanceof OversizedConfigError ? 'too large for the sidecars' : 'cannot translate config';
        reject({ message: `${o.config}: ${why}: ${(err as Error).message}` } as ConfigError);
        return;
      }
      Object.assign(status, { config: r.config, files: r.files, hash: r.hash, loadedAt: new Date().toISOString() });
      status.lastError = undefined;
      metrics.configReloads.inc({ result: 'success' });
      metrics.configValid.set(1);
      if (r.files.length) log.info(`config loaded from ${r.files.join(', ')}`);
      if (r.skipped.length) {
        const what = r.skipped.map((k) => `${k.kind} ${k.namespace ?? 'default'}/${k.name ?? '?'}`);
        log.info(`config: skipped ${r.skipped.length} Kubernetes object(s) that are not mesh config: ${what.join(', ')}`);
      }
      else log.warn(`no config at ${o.config}: serving an empty config until it appears`);
    },
    onError: (e) => reject(e),
  }, { limits: { ...CONFIG_LIMITS, ...o.configLimits } });
  function reject(e: ConfigError): void {
    status.lastError = { message: e.message, file: e.file, document: e.doc, field: e.field, at: new Date().toISOString() };
    metrics.configReloads.inc({ result: 'error' });
    metrics.configValid.set(0);
    log.error(`config rejected, keeping the last good config: ${e.message}`);
  }
  watcher.start();

  const serving = ca.issueServing({
    commonName: CONTROL_PLANE_SNI,
    dnsNames: [CONTROL_PLANE_SNI, 'localhost'],
    ips: ['127.0.0.1'],
    uris: [`spiffe://${o.trustDomain}/ns/tandem-system/sa/control-plane`],
    ttlMs: 365 * 24 * 3600e3,
    client: false,
  });
  // ADS on the TLS port serves only workloads with a mesh certificate, and registers them
  const meshPolicy: StreamPolicy = {
    register: true,
    authenticate: (call) => {
      const peer = peerIdentity(call, root.certPem, o.trustDomain);
      if (!peer) throw new CallRefused(grpc.status.UNAUTHENTICATED, 'NO_CERTIFICATE', 'ADS on this port needs a workload certificate from the mesh CA');
      return peer;
    },
  };
  const tlsServer = new grpc.Server(SERVER_OPTIONS);
  tlsServer.addService(adsService, adsHandlers(ads, meshPolicy));
  tlsServer.addService(
    caService,
    caHandlers({
      ca,
      trustDomain: o.trustDomain,
      certTtlMs: o.certTtlMs,
      onIssued: (id, services, via, cert) => {
        metrics.certsIssued.inc({ via });
        certs.issued(cert);
        log.info(`issued a certificate for ${id} (services ${services.join(', ')}) on its ${via}`);
      },
      onRefused: (reason, msg) => {
        metrics.csrRefused.inc({ reason });
        log.warn(`certificate request refused (${reason}): ${msg}`);
      },
    }),
  );
  const listenPort = await bind(tlsServer, o.listen, meshServerCredentials(root.certPem, serving.certPem + root.certPem, serving.keyPem));
  log.info(`ADS and CA (TLS) on ${formatHostPort({ ...o.listen, port: listenPort })}`);

  let plainServer: grpc.Server | undefined;
  if (o.xdsPlaintext) {
    plainServer = new grpc.Server(SERVER_OPTIONS);
    // config for proxyless clients; nothing here ever becomes an endpoint
    plainServer.addService(adsService, adsHandlers(ads, { register: false, authenticate: () => undefined }));
    const port = await bind(plainServer, o.xdsPlaintext, grpc.ServerCredentials.createInsecure());
    log.info(`ADS (plaintext, proxyless gRPC, never registers endpoints) on ${formatHostPort({ ...o.xdsPlaintext, port })}`);
  }
  ads.startWarmup();

  const admin = adminServer({
    'GET /ready': () => (status.config || status.lastError ? { body: 'ready\n' } : { status: 503, body: 'loading config\n' }),
    'GET /metrics': async () => ({ type: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    'GET /debug/syncz': () => ({ body: syncz(ads, certs) }),
    'GET /debug/config': () => ({ body: { ...status, snapshotGeneration: cache.snapshot.generation } }),
  });
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(o.admin.port, o.admin.host, () => resolve());
  });
  log.info(`admin on ${o.admin.host}:${(admin.address() as AddressInfo).port}`);

  return {
    async stop() {
      watcher.stop();
      admin.close();
      for (const s of [tlsServer, plainServer]) s?.forceShutdown();
    },
  };
}

function bind(server: grpc.Server, a: HostPort, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(formatHostPort(a), creds, (err, port) => (err ? reject(err) : resolve(port))),
  );
}
