// "How to speak xDS": ADS State of the World over one gRPC stream per client. Each
// type has its own subscription, version, nonce, acked version and last NACK.
import * as grpc from '@grpc/grpc-js';
import type { AdsStream, DiscoveryRequest, XdsNode } from '../../proto/ads';
import { isXdsType, TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import { workloadFromNode, type WorkloadInfo } from '../../proto/node-meta';
import type { SnapshotCache } from './cache';
import type { Snapshot } from './snapshot';

export interface NackRecord {
  version: string;
  message: string;
  at: number;
}

export interface TypeState {
  /** null: wildcard */
  names: string[] | null;
  sentVersion?: string;
  sentNonce?: string;
  ackedVersion?: string;
  lastNack?: NackRecord;
  /** when the change behind the unacknowledged response was first seen */
  pendingSince?: number;
}

export interface StreamInfo {
  key: string;
  node?: XdsNode;
  workload?: WorkloadInfo;
  connectedAt: number;
  types: Map<XdsTypeUrl, TypeState>;
  /** a reconnecting client held through the warm-up: no pushes before this time */
  heldUntil?: number;
}

export interface AdsEvents {
  onPush?(type: XdsTypeUrl): void;
  onNack?(info: StreamInfo, type: XdsTypeUrl, message: string): void;
  onAck?(info: StreamInfo, type: XdsTypeUrl, version: string, changeSeenAt?: number): void;
  onStreamsChanged?(count: number): void;
}

const WILDCARD_TYPES: string[] = [TypeUrl.Listener, TypeUrl.Cluster];

export class AdsServer {
  readonly streams = new Map<string, StreamInfo>();
  private nonce = 0;
  private seq = 0;
  private startedAt = Date.now();

  /**
   * @param warmupMs after a restart, clients that already hold config (their request
   *   carries a version) wait this long before being answered, so that they are not
   *   handed endpoint sets from which the not-yet-reconnected sidecars are missing.
   */
  constructor(
    private readonly cache: SnapshotCache,
    private readonly events: AdsEvents = {},
    private readonly warmupMs = 0,
  ) {
    cache.on('snapshot', (snap: Snapshot, changedAt: number) => {
      for (const s of this.streams.values()) this.pushAll(s, snap, changedAt);
    });
  }

  /**
   * Starts the warm-up over; call when the ADS port begins accepting connections, so that
   * startup work (serving certificate, binding) does not eat into the time reconnecting
   * sidecars (backoff at most 5s) have to come back.
   */
  startWarmup(): void {
    this.startedAt = Date.now();
  }

  private readonly writers = new Map<string, AdsStream>();

  handle = (call: AdsStream): void => {
    const key = `s${++this.seq}`;
    const info: StreamInfo = { key, connectedAt: Date.now(), types: new Map() };
    this.streams.set(key, info);
    this.writers.set(key, call);
    // headers now, so a client that is sent nothing (its config is current) knows it is connected
    call.sendMetadata(new grpc.Metadata());
    this.events.onStreamsChanged?.(this.streams.size);
    const close = () => {
      if (!this.streams.delete(key)) return;
      this.writers.delete(key);
      this.cache.removeWorkload(key);
      this.events.onStreamsChanged?.(this.streams.size);
    };
    call.on('data', (req: DiscoveryRequest) => {
      try {
        this.onRequest(info, req);
      } catch (err) {
        call.destroy(err as Error);
        close();
      }
    });
    call.on('end', () => {
      close();
      call.end();
    });
    call.on('error', close);
    call.on('close', close);
  };

  private onRequest(info: StreamInfo, req: DiscoveryRequest): void {
    if (!info.node && req.node) {
      info.node = req.node;
      info.workload = workloadFromNode(req.node);
      if (info.workload) this.cache.addWorkload(info.key, info.workload);
    }
    const type = req.type_url ?? '';
    if (!isXdsType(type)) return;
    let st = info.types.get(type);
    const isNew = !st;
    // stale: a newer response is in flight (a nonce from before this stream sent anything is not stale, just old)
    if (req.response_nonce && st?.sentNonce !== undefined && req.response_nonce !== st.sentNonce) return;
    if (!st) {
      st = { names: null };
      info.types.set(type, st);
    }
    if (req.response_nonce && req.response_nonce === st.sentNonce) {
      if (req.error_detail) {
        st.lastNack = { version: st.sentVersion ?? '', message: req.error_detail.message ?? '', at: Date.now() };
        this.events.onNack?.(info, type, st.lastNack.message);
      } else {
        st.ackedVersion = req.version_info ?? '';
        this.events.onAck?.(info, type, st.ackedVersion, st.pendingSince);
        st.pendingSince = undefined;
      }
    }
    const requested = req.resource_names ?? [];
    // An empty list means "everything" only on a type's first request (or while already
    // wildcard); after named subscriptions it means "nothing any more".
    const wildcard = requested.length === 0 && WILDCARD_TYPES.includes(type) && (isNew || st.names === null);
    const names = wildcard ? null : [...requested].sort();
    const changed = isNew || !sameNames(st.names, names);
    st.names = names;
    if (isNew && req.version_info) {
      st.ackedVersion = req.version_info; // what a reconnecting client already holds
      if (Date.now() - this.startedAt < this.warmupMs) {
        info.heldUntil = this.startedAt + this.warmupMs;
        setTimeout(() => {
          info.heldUntil = undefined;
          this.push(info, type, this.cache.snapshot);
        }, this.warmupMs - (Date.now() - this.startedAt));
        return;
      }
    }
    if (changed) this.push(info, type, this.cache.snapshot, true);
  }

  private pushAll(info: StreamInfo, snap: Snapshot, changedAt: number): void {
    // Held through the warm-up, the client is answered once, when it ends: snapshots built
    // meanwhile (others reconnecting) would hand it endpoint sets with sidecars missing.
    if (info.heldUntil !== undefined) return;
    for (const type of info.types.keys()) this.push(info, type, snap, false, changedAt);
  }

  private push(info: StreamInfo, type: XdsTypeUrl, snap: Snapshot, subscriptionChanged = false, changedAt = Date.now()): void {
    const call = this.writers.get(info.key);
    const st = info.types.get(type);
    if (!call || !st) return;
    const set = snap.served(type, st.names);
    const held = st.sentVersion ?? st.ackedVersion;
    if (set.version === held && !(subscriptionChanged && st.sentVersion !== undefined)) return;
    st.sentVersion = set.version;
    st.sentNonce = String(++this.nonce);
    st.pendingSince ??= changedAt;
    call.write({ version_info: set.version, type_url: type, nonce: st.sentNonce, resources: set.resources.map((r) => r.any) });
    this.events.onPush?.(type);
  }
}

function sameNames(a: string[] | null, b: string[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

export function adsHandlers(server: AdsServer): grpc.UntypedServiceImplementation {
  return { StreamAggregatedResources: server.handle as grpc.handleBidiStreamingCall<unknown, unknown> };
}
