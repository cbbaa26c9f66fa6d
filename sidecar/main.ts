// Wiring only: xDS client -> runtime config (swapped whole) -> listeners; admin beside.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import type { AddressInfo } from 'node:net';
import { CONTROL_PLANE_SNI } from '../certs/ca';
import { nodeFromWorkload } from '../proto/node-meta';
import { formatHostPort, type HostPort } from '../common/addr';
import { logger } from '../common/log';
import { XdsClient } from './xds/client';
import { RuntimeConfig, EndpointStats } from './runtime/config';
import { dualProtocolServer, type DualServer } from './proxy/downstream';
import { H1Dispatcher, H2Dispatcher } from './proxy/dispatch';
import { outboundHandler } from './proxy/outbound';
import { inboundHandler } from './proxy/inbound';
import { accessLog } from './proxy/access-log';
import { sidecarAdmin } from './admin';

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
  accessLog: string;
}

export async function runSidecar(o: SidecarOptions): Promise<{ stop(graceMs?: number): Promise<void> }> {
  const log = logger(`sidecar ${o.service}`);
  const stats = new Map<string, EndpointStats>();
  const statsFor = (k: string) => {
    let s = stats.get(k);
    if (!s) stats.set(k, (s = new EndpointStats(k)));
    return s;
  };
  const random = Math.random;

  const access = accessLog(o.accessLog);
  const mesh = new H2Dispatcher('http');
  const externalH1 = new H1Dispatcher();
  const externalH2 = new H2Dispatcher('http');
  const appDispatcher = new H1Dispatcher();

  // listeners first: the advertised inbound address must be the real one
  let runtime: RuntimeConfig | undefined;
  let emptyRuntime: RuntimeConfig | undefined;
  const outbound = dualProtocolServer(
    outboundHandler({
      runtime: () => runtime ?? (emptyRuntime ??= new RuntimeConfig(0, { clusters: new Map(), endpoints: new Map(), listeners: new Map(), routes: new Map() }, statsFor, random)),
      mesh,
      externalH1,
      externalH2,
      log: access,
      random,
    }),
  );
  const inbound = dualProtocolServer(inboundHandler({ app: o.app, dispatcher: appDispatcher, log: access }));
  const inboundPort = await listen(inbound, o.inbound);
  const outboundPort = await listen(outbound, o.outbound);
  const advertiseHost = o.advertise ?? (o.inbound.host === '0.0.0.0' || o.inbound.host === '::' ? '127.0.0.1' : o.inbound.host);
  const inboundAddress = `${advertiseHost}:${inboundPort}`;
  const id = `${o.service}-${o.labels.version ?? 'v0'}~${inboundAddress}~${os.hostname()}.${process.pid}`;

  let rootPem: Buffer;
  try {
    rootPem = fs.readFileSync(o.rootCert);
  } catch (err) {
    throw new Error(`--root-cert: cannot read ${o.rootCert}: ${(err as Error).message}`);
  }
  const xds = new XdsClient(
    formatHostPort(o.controlPlane),
    grpc.credentials.createSsl(rootPem),
    nodeFromWorkload({ id, service: o.service, namespace: o.namespace, serviceAccount: o.serviceAccount, labels: o.labels, inboundAddress }),
    log,
    undefined,
    { 'grpc.ssl_target_name_override': CONTROL_PLANE_SNI, 'grpc.default_authority': CONTROL_PLANE_SNI },
  );
  let generation = 0;
  let compileScheduled = false;
  xds.on('update', () => {
    if (compileScheduled) return;
    compileScheduled = true;
    setImmediate(() => {
      compileScheduled = false;
      runtime = new RuntimeConfig(++generation, xds.resources, statsFor, random);
    });
  });
  xds.start();

  const admin = sidecarAdmin({ xds, runtime: () => runtime, id, inboundAddress, stats });
  await new Promise<void>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(o.admin.port, o.admin.host, () => resolve());
  });
  log.info(
    `inbound ${inboundAddress} -> app ${formatHostPort(o.app)}; outbound ${o.outbound.host}:${outboundPort}; admin ${o.admin.host}:${(admin.address() as AddressInfo).port}; control plane ${formatHostPort(o.controlPlane)}`,
  );

  return {
    async stop(graceMs = 5000) {
      await Promise.all([outbound.drain(graceMs), inbound.drain(graceMs)]);
      xds.stop();
      admin.close();
      for (const d of [mesh, externalH1, externalH2, appDispatcher]) d.close();
    },
  };
}

function listen(s: DualServer, a: HostPort): Promise<number> {
  return new Promise((resolve, reject) => {
    s.server.once('error', reject);
    s.server.listen(a.port, a.host, () => resolve((s.server.address() as AddressInfo).port));
  });
}
