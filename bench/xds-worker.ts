// A process of simulated sidecars for `make bench-xds`, driven over IPC by bench/xds-fleet.ts:
// thousands of sidecars in the benchmark's own process would make its event loop, not the
// control plane, the thing measured.
import * as grpc from '@grpc/grpc-js';
import { nodeFromWorkload } from '../proto/node-meta';
import { drops, SimSidecar, type Markers } from './xds-sim';

export interface SimSpec {
  id: number;
  service: string;
  address: string;
  /** the service's workload key and certificate chain (replicas share them) */
  keyPem: string;
  chainPem: string;
}

export interface SimStatus {
  id: number;
  synced: boolean;
  short: number;
  routeMarked: boolean;
  endpointMarked: boolean;
  lastAckAt: number;
  lastResponseAt: number;
  upAt: number;
}

export type Command =
  | { cmd: 'init'; target: string; rootPem: string }
  | { cmd: 'add'; sims: SimSpec[] }
  | { cmd: 'expect'; replicas: [string, number][] }
  | { cmd: 'markers'; markers: Markers }
  | { cmd: 'connect'; ids?: number[] }
  | { cmd: 'reconnect'; ids: number[] }
  | { cmd: 'status' }
  | { cmd: 'stop' };

export type Reply = { seq: number; status?: SimStatus[]; drops?: [string, number][] };

let target = '';
let rootPem = '';
const sims = new Map<number, SimSidecar>();
const replicas = new Map<string, number>();
const markers: Markers = {};
const creds = new Map<string, grpc.ChannelCredentials>();

function handle(c: Command): Reply['status'] | undefined {
  switch (c.cmd) {
    case 'init':
      target = c.target;
      rootPem = c.rootPem;
      return undefined;
    case 'add':
      for (const s of c.sims) {
        let cr = creds.get(s.service);
        if (!cr) {
          cr = grpc.credentials.createSsl(Buffer.from(rootPem), Buffer.from(s.keyPem), Buffer.from(s.chainPem));
          creds.set(s.service, cr);
        }
        const node = nodeFromWorkload({ id: `sim-${s.id}`, service: s.service, namespace: 'default', serviceAccount: s.service, labels: { app: s.service }, inboundAddress: s.address, appPort: 8080 });
        sims.set(s.id, new SimSidecar(target, cr, node, markers, (cluster) => replicas.get(cluster) ?? 0));
      }
      return undefined;
    case 'expect':
      for (const [k, n] of c.replicas) replicas.set(k, n);
      for (const s of sims.values()) s.recount();
      return undefined;
    case 'markers':
      Object.assign(markers, c.markers);
      return undefined;
    case 'connect':
      for (const id of c.ids ?? [...sims.keys()]) sims.get(id)?.connect();
      return undefined;
    case 'reconnect':
      // as the sidecar's first retry: full jitter up to 200 ms, at least 50 (sidecar/xds/client.ts)
      for (const id of c.ids) {
        const s = sims.get(id);
        if (!s) continue;
        s.disconnect();
        setTimeout(() => s.connect(), Math.max(50, Math.floor(Math.random() * 200)));
      }
      return undefined;
    case 'status':
      return [...sims].map(([id, s]) => ({
        id,
        synced: s.synced,
        short: s.short,
        routeMarked: s.routeMarked,
        endpointMarked: s.endpointMarked,
        lastAckAt: s.lastAckAt,
        lastResponseAt: s.lastResponseAt,
        upAt: s.upAt,
      }));
    case 'stop':
      for (const s of sims.values()) s.disconnect();
      setTimeout(() => process.exit(0), 100);
      return undefined;
  }
}

process.on('message', (m: Command & { seq: number }) => {
  const status = handle(m);
  process.send?.({ seq: m.seq, status, drops: m.cmd === 'status' ? [...drops] : undefined } satisfies Reply);
});
