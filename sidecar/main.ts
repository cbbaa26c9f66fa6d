// Wiring only: workload identity (key, CSR, certificate, rotation) -> xDS client ->
// runtime config (swapped whole) -> listeners; admin beside.
import * as fs from 'node:fs';
import { randomPool } from '../common/random-pool';
import * as os from 'node:os';
import cluster from 'node:cluster';
import * as grpc from '@grpc/grpc-js';
import type { AddressInfo } from 'node:net';
import { CONTROL_PLANE_SNI } from '../certs/ca';
import { spiffeUri } from '../certs/spiffe';
import { nodeFromWorkload } from '../proto/node-meta';
import { shortName } from '../proto/type-urls';
import { formatHostPort, type HostPort } from '../common/addr';
import { logger } from '../common/log';
import { XdsClient, type XdsProtocol } from './xds/client';
import { RuntimeConfig, EndpointStats, ClusterStats } from './runtime/config';
import { DnsCache, dnsNames } from './runtime/dns';
import { dualProtocolServer, type DualServer, type DownstreamEvents } from './proxy/downstream';
import { defaultLimits, inboundLimits, type ListenerLimits } from './proxy/limits';
import { H1Dispatcher } from './proxy/dispatch-h1';
import { H2Dispatcher } from './proxy/dispatch-h2';
import { outboundHandler } from './proxy/outbound';
import { inboundHandler } from './proxy/inbound';
import { openAccessLog } from './proxy/access-log';
import { traceIds } from './proxy/trace-context';
import { samplerFromEnv } from './proxy/sampler';
import { WorkloadIdentity } from './identity/workload-identity';
import { requestCertificate } from './identity/ca-client';
import { MeshTls } from './identity/mesh-tls';
import { readToken, trustDomainOf } from './identity/bootstrap';
import { SidecarMetrics } from './metrics';
import { workerMetrics } from './cluster-metrics';
import { connectionLabels, metricsObserver, type Self } from './proxy/observe-metrics';
import { ownWorkload } from './proxy/peer-metadata';
import type { ConnectionInfo } from './proxy/downstream';
import type { Socket } from 'node:net';
import { sidecarAdmin } from './admin';
import { hrNow, type Spans } from './proxy/spans';
import { spansObserver } from './proxy/observe-spans';
import type { Observer } from './proxy/observe-metrics';
import type { AppProtocol } from './proxy/layers/protocol';

export interface SidecarOptions {
  service: string;
  namespace: string;
  serviceAccount: string;
  labels: Record<string, string>;
  app: HostPort;
  inbound: HostPort;
  advertise?: string;
  outbound: HostPort;
  admin: HostPort;
  controlPlane: HostPort;
  rootCert: string;
  /** a token file, or the token itself */
  token: string;
  /** default: the root certificate's O= (what `tandem certs init` writes) */
  trustDomain?: string;
  accessLog: string;
  /** Istio's request and TCP metrics (default on); off leaves /metrics with the tandem_ internals only */
  metrics?: boolean;
  /** what the application speaks: auto (the caller's protocol), http1 or http2 */
  appProtocol?: AppProtocol;
  /** the xDS protocol spoken to the control plane: Delta (the default) or State of the World */
  xdsProtocol?: XdsProtocol;
  /** the outbound listener's limits (defaultLimits() for what is not given); the inbound one's follow from them (inboundLimits) */
  limits?: Partial<ListenerLimits>;
}

export async function runSidecar(o: SidecarOptions): Promise<{ stop(graceMs?: number): Promise<void> }> {
  const log = logger(`sidecar ${o.service}`);
  const metrics = new SidecarMetrics();
  const stats = new Map<string, EndpointStats>();
  const statsFor = (k: string) => {
    let s = stats.get(k);
    if (!s) stats.set(k, (s = new EndpointStats(k)));
    return s;
  };
  const random = Math.random;
  const clusterStats = new Map<string, ClusterStats>();
  const clusterStatsFor = (name: string) => {
    let s = clusterStats.get(name);
    if (!s) clusterStats.set(name, (s = new ClusterStats(name)));
    return s;
  };

  let rootPem: string;
  try {
    rootPem = fs.readFileSync(o.rootCert, 'utf8');
  } catch (err) {
    throw new Error(`--root-cert: cannot read ${o.rootCert}: ${(err as Error).message}`, { cause: err });
  }
  readToken(o.token); // a missing or empty token is a startup error, not a retry loop
  const trustDomain = o.trustDomain ?? trustDomainOf(rootPem);
  const spiffeId = spiffeUri({ trustDomain, namespace: o.namespace, serviceAccount: o.serviceAccount });
  const cpTarget = formatHostPort(o.controlPlane);
  const identity = new WorkloadIdentity({
    spiffeId,
    trustDomain,
    rootPem,
    token: () => readToken(o.token),
    request: (key, id, cred) => requestCertificate({ target: cpTarget, rootPem }, key, id, cred),
    log,
  });
  const meshTls = new MeshTls(identity, rootPem);
  identity.on('rotated', (c) => {
    metrics.certExpiry.set(c.info.notAfter.getTime() / 1000);
    metrics.rotations.inc();
    log.info(`certificate ${c.info.serial} for ${c.info.spiffeId} until ${c.info.notAfter.toISOString()}`);
  });

  const own = ownWorkload(o.service, o.namespace, o.labels);
  const self: Self = { ...own, service: o.service, principal: () => identity.current?.info.spiffeId };
  const recording = o.metrics ?? true;
  // off: the observer is not installed at all, so the request path pays nothing for it
  const observeMetrics = recording ? metricsObserver(metrics, self) : undefined;
  metrics.clusterTallies(() => clusterStats.values());
  // Istio's TCP metrics, per downstream connection of each listener
  const countConnection = (direction: 'inbound' | 'outbound') => (socket: Socket, info: ConnectionInfo) => {
    const labels = connectionLabels(self, direction, info);
    metrics.tcpOpened.inc(labels);
    metrics.tcpOpenedShort.inc(labels);
    socket.once('close', () => {
      metrics.tcpClosed.inc(labels);
      metrics.tcpClosedShort.inc(labels);
      metrics.tcpSent.inc(labels, socket.bytesWritten);
      metrics.tcpReceived.inc(labels, socket.bytesRead);
    });
  };

  let lastLogError = 0;
  const access = await openAccessLog(o.accessLog, {
    registry: metrics.registry,
    onError: (err) => {
      // a full disk fails every batch: say so now and then, not per batch
      if (Date.now() - lastLogError < 10_000) return;
      lastLogError = Date.now();
      log.warn(`access log: ${err.message} (lines dropped)`);
    },
  });
  const sampling = samplerFromEnv(process.env);
  if (sampling.warning) log.warn(sampling.warning);
  const trace = { ids: traceIds(randomPool()), sample: sampling.sampler };
  const spans = await startSpans(o, trace.ids, self, metrics, log);
  const observeSpans = spans && spansObserver(spans);
  const observe: Observer | undefined =
    observeSpans && observeMetrics
      ? (ob) => {
          observeMetrics(ob);
          observeSpans(ob);
        }
      : (observeMetrics ?? observeSpans);
  const mesh = new H2Dispatcher();
  const meshH1 = new H1Dispatcher();
  const externalH1 = new H1Dispatcher();
  const externalH2 = new H2Dispatcher();
  const appH1 = new H1Dispatcher();
  const appH2 = new H2Dispatcher();

  // listeners first: the advertised inbound address must be the real one
  let runtime: RuntimeConfig | undefined;
  const emptyRuntime = new RuntimeConfig(0, { clusters: new Map(), endpoints: new Map(), listeners: new Map(), routes: new Map() }, statsFor, random);
  const current = () => runtime ?? emptyRuntime;
  const outboundLimits: ListenerLimits = { ...defaultLimits(), ...o.limits };
  const limited = (listener: string): DownstreamEvents => ({
    onRefused: (reason) => metrics.downstreamLimited.inc({ listener, reason }),
    onRapidReset: () => metrics.downstreamLimited.inc({ listener, reason: 'rapid_reset' }),
  });
  const outbound = dualProtocolServer(
    outboundHandler({
      runtime: current,
      mesh,
      meshH1,
      externalH1,
      externalH2,
      log: access.log,
      random,
      own,
      observe,
      trace,
      spans,
      limits: outboundLimits,
    }),
    { onConnection: recording ? countConnection('outbound') : undefined, limits: outboundLimits, events: limited('outbound') },
  );
  const inbound = dualProtocolServer(
    inboundHandler({
      app: o.app,
      appH1,
      appH2,
      appProtocol: o.appProtocol ?? 'auto',
      log: access.log,
      runtime: current,
      trace,
      ownIdentity: () => identity.current?.info.spiffeId,
      observe,
      limits: inboundLimits(outboundLimits),
    }),
    {
      tls: {
        server: meshTls.server,
        plaintextAllowed: () => runtime?.inbound?.plaintextAllowed ?? false,
        onRefused: (reason) => metrics.inboundRefused.inc({ reason }),
      },
      onConnection: recording ? countConnection('inbound') : undefined,
      limits: inboundLimits(outboundLimits),
      events: limited('inbound'),
    },
  );
  const inboundPort = await listen(inbound, o.inbound);
  const outboundPort = await listen(outbound, o.outbound);
  const inboundAddress = advertisedAddress(o.advertise, o.inbound, inboundPort);
  const id = `${o.service}-${o.labels.version ?? 'v0'}~${inboundAddress}~${os.hostname()}.${process.pid}`;

  let adminAddress: string | undefined;
  const xds = new XdsClient(
    cpTarget,
    () => {
      const c = identity.current!;
      return grpc.credentials.createSsl(Buffer.from(rootPem), Buffer.from(c.key.keyPem), Buffer.from(c.chainPem));
    },
    // read when the stream opens, after the admin is bound: its port is announced for `tandem stat`
    () => nodeFromWorkload({ id, service: o.service, namespace: o.namespace, serviceAccount: o.serviceAccount, labels: o.labels, inboundAddress, appPort: o.app.port, adminAddress }),
    log,
    undefined,
    {
      'grpc.ssl_target_name_override': CONTROL_PLANE_SNI,
      'grpc.default_authority': CONTROL_PLANE_SNI,
      // a half-open stream is noticed, so the control plane does not keep a dead endpoint either
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    },
    o.xdsProtocol ?? 'delta',
  );
  const dns = new DnsCache();
  let generation = 0;
  let compileScheduled = false;
  const compile = () => {
    if (compileScheduled) return;
    compileScheduled = true;
    setImmediate(() => {
      compileScheduled = false;
      // the names DNS clusters list are resolved in the background; an answer recompiles
      dns.want(dnsNames(xds.resources.clusters.values()));
      runtime = new RuntimeConfig(++generation, xds.resources, statsFor, random, { meshTls, clusterStats: clusterStatsFor, dns });
      // endpoints that left every cluster take their counters with them
      const live = new Set<string>();
      for (const c of runtime.clusters.values()) for (const e of c.endpoints) live.add(e.stats.key);
      for (const k of stats.keys()) if (!live.has(k) && stats.get(k)!.activeRequests === 0) stats.delete(k);
      for (const [k, c] of clusterStats) if (!runtime.clusters.has(k) && c.active === 0 && c.pending === 0) clusterStats.delete(k);
    });
  };
  xds.on('update', compile);
  xds.on('ack', (t: keyof typeof shortName) => {
    metrics.xdsAcks.inc({ type: shortName[t] });
    metrics.xdsLastAck.set({ type: shortName[t] }, Date.now() / 1000);
  });
  xds.on('nack', (t: keyof typeof shortName) => {
    metrics.xdsNacks.inc({ type: shortName[t] });
    metrics.xdsLastNack.set({ type: shortName[t] }, Date.now() / 1000);
  });
  metrics.xdsConnected.set(0);
  xds.on('connected', () => metrics.xdsConnected.set(1));
  xds.on('disconnected', () => metrics.xdsConnected.set(0));
  dns.on('change', compile);
  // under --concurrency a scrape answers for every worker
  const scrape = cluster.isWorker ? workerMetrics(metrics.registry) : () => metrics.registry.metrics();
  // Draining: leave EDS first (the control plane drops this endpoint and tells the peers),
  // then move clients off (GOAWAY, Connection: close) while still taking new connections
  // for a moment, from peers that have not heard yet; then finish what is in flight.
  let drained: Promise<void> | undefined;
  const drain = (graceMs: number): Promise<void> =>
    (drained ??= (async () => {
      log.info(`draining: leaving EDS, finishing in-flight requests (up to ${graceMs} ms)`);
      xds.stop();
      const acceptForMs = Math.min(DEREGISTER_MS, graceMs / 2);
      await Promise.all([outbound.drain(graceMs, acceptForMs), inbound.drain(graceMs, acceptForMs)]);
    })());
  const admin = sidecarAdmin({ xds, runtime: () => runtime, id, inboundAddress, stats, identity, metrics, scrape, drain: () => void drain(5000), draining: () => drained !== undefined });
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(o.admin.port, o.admin.host, () => resolve());
  });
  adminAddress = advertisedAddress(undefined, o.admin, (admin.address() as AddressInfo).port);
  // ADS needs the workload certificate: start it once the first one is in
  identity.once('rotated', () => xds.start());
  identity.start();
  log.info(
    `${spiffeId}: inbound ${inboundAddress} -> app ${formatHostPort(o.app)}; outbound ${o.outbound.host}:${outboundPort}; admin ${o.admin.host}:${(admin.address() as AddressInfo).port}; control plane ${cpTarget}`,
  );

  return {
    async stop(graceMs = 5000) {
      const deadline = Date.now() + graceMs;
      await drain(graceMs);
      // the drained requests' spans go out too, within what is left of the budget (at least a moment)
      await spans?.shutdown(Math.max(deadline - Date.now(), 250));
      identity.stop();
      dns.stop();
      admin.close();
      for (const d of [mesh, meshH1, externalH1, externalH2, appH1, appH2]) d.close();
      await access.close();
    },
  };
}

/**
 * OpenTelemetry spans when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set; undefined (no SDK
 * at all) otherwise. A bad OTEL_* setting is a startup error, not a silent default.
 */
async function startSpans(
  o: SidecarOptions,
  ids: Spans['ids'],
  self: Self,
  metrics: SidecarMetrics,
  log: ReturnType<typeof logger>,
): Promise<(Spans & { shutdown(ms: number): Promise<void> }) | undefined> {
  const env = process.env;
  // the SDK is not even loaded unless an endpoint is named
  if (!env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() && !env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()) return undefined;
  const { otlpSpansFromEnv } = await import('./otlp-export');
  let lastDrop = 0;
  const otlp = otlpSpansFromEnv(
    env,
    { service: o.service, namespace: o.namespace, version: o.labels.version, instanceId: `${o.service}-${o.labels.version ?? 'v0'}.${os.hostname()}.${process.pid}` },
    (reason, n) => {
      metrics.spansDropped.inc({ reason }, n);
      // a collector that is down fails every batch: say so now and then, not per batch
      if (Date.now() - lastDrop < 10_000) return;
      lastDrop = Date.now();
      log.warn(`spans: ${n} dropped (${reason === 'queue_full' ? 'export queue full' : 'the collector did not take them'})`);
    },
  );
  if (!otlp) return undefined;
  log.info(`spans exported over OTLP ${otlp.target.protocol} to ${otlp.target.endpoint}`);
  return { sink: otlp.sink, ids, now: hrNow, principal: self.principal, attempted: new WeakSet(), shutdown: (ms) => otlp.shutdown(ms) };
}

/**
 * The address peers are told to use: --advertise HOST or HOST:PORT (a NAT or a port
 * mapping in front of the sidecar), else the inbound listener's (127.0.0.1 for 0.0.0.0).
 */
/** how long a draining sidecar still takes new connections, while peers learn it left EDS */
const DEREGISTER_MS = 1000;

function advertisedAddress(advertise: string | undefined, inbound: HostPort, boundPort: number): string {
  const bracket = (h: string) => (h.includes(':') ? `[${h}]` : h);
  if (advertise && /^(\[[^\]]+\]|[^:]+):\d+$/.test(advertise)) return advertise;
  const host = advertise ?? (inbound.host === '0.0.0.0' || inbound.host === '::' ? '127.0.0.1' : inbound.host);
  return `${bracket(host)}:${boundPort}`;
}

function listen(s: DualServer, a: HostPort): Promise<number> {
  return new Promise((resolve, reject) => {
    s.server.once('error', reject);
    s.server.listen(a.port, a.host, () => resolve((s.server.address() as AddressInfo).port));
  });
}
