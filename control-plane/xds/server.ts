// "How to speak xDS": ADS over one gRPC stream per client, State of the World here and
// Delta in delta-server.ts; both share the streams, registration, bounds, warm-up and flow
// control below, and are listed alike in /debug/syncz. Each
// type has its own subscription, version, nonce, acked version and last NACK. Who may
// connect, and whether a stream may register its workload, is the port's StreamPolicy.
//
// What a push costs: each stream remembers the set it was last sent per type, so
// RouteConfiguration and ClusterLoadAssignment responses carry only what changed since
// (served-set.ts), and every response is written from resources encoded once per
// snapshot. Flow control: a stream has at most MAX_WRITES_IN_FLIGHT responses not yet
// taken by its client (or one Delta push in more parts than that, delta-split.ts), and
// all streams together at most maxBytesInFlight (a thousand sidecars connecting at once
// would otherwise each be handed the whole mesh at once); past either, pushes are not
// queued but noted, and when the client reads again (or the budget frees) the stream is
// sent the latest state, whatever happened meanwhile.
import * as grpc from '@grpc/grpc-js';
import type { AdsStream, DeltaDiscoveryRequest, DeltaStream, DiscoveryRequest, PreparedResponse } from '../../proto/ads';
import { isXdsType, TypeUrl, xdsTypes, type XdsTypeUrl } from '../../proto/type-urls';
import { declaresVhds, isLeaving } from '../../proto/node-meta';
import { CallRefused, refuse, type PeerIdentity } from '../identity/peer';
import type { SnapshotCache } from './cache';
import { subscriptionKey, type Snapshot } from './snapshot';
import { MAX_NAMES_PER_REQUEST, MAX_TYPES_PER_STREAM, sameNames, subscription, type StreamInfo, type XdsProtocol } from './stream-state';
import { identify, type StreamPolicy } from './registration';
import { MAX_XDS_MESSAGE_BYTES } from '../../proto/limits';
import { DeltaProtocol, type ProtocolHost } from './delta-server';

export { MAX_NAMES_PER_REQUEST, MAX_TYPES_PER_STREAM } from './stream-state';
export type { NackRecord, StreamInfo, TypeState, XdsProtocol } from './stream-state';
export type { StreamPolicy } from './registration';

/**
 * Responses a stream may have in flight before further pushes wait for its client to read:
 * one per type, so a normal push of all four is not held up, and a stalled client pins at
 * most that many responses.
 */
export const MAX_WRITES_IN_FLIGHT = 4;

/** From this many resources, a diff that is most of its set is sent as the whole set. */
const SHARED_SET_MIN = 64;

/** Bytes of responses written and not yet taken, over all streams, before pushes wait. */
export const MAX_BYTES_IN_FLIGHT = 64 * 2 ** 20;

export interface AdsEvents {
  onPush?(type: XdsTypeUrl): void;
  onNack?(info: StreamInfo, type: XdsTypeUrl, message: string): void;
  onAck?(info: StreamInfo, type: XdsTypeUrl, version: string, changeSeenAt?: number): void;
  onStreamsChanged?(count: number): void;
  onRefused?(reason: string, message: string, peer?: PeerIdentity): void;
  onUnknownType?(info: StreamInfo, typeUrl: string): void;
}

export class AdsServer implements ProtocolHost {
  readonly streams = new Map<string, StreamInfo>();
  private nonce = 0;
  private seq = 0;
  private startedAt = Date.now();
  private bytesInFlight = 0;
  /** streams owed a push that waits for the byte budget, in the order they came */
  private readonly waiting = new Set<StreamInfo>();
  private waking = false;
  /** alike sidecars subscribe to the same thousand names: one array is kept for all of them */
  private readonly interned = new Map<string, WeakRef<string[]>>();
  private readonly uninterned = new FinalizationRegistry<string>((key) => {
    if (!this.interned.get(key)?.deref()) this.interned.delete(key);
  });

  private readonly delta = new DeltaProtocol(this);

  /**
   * @param warmupMs after a restart, clients that already hold config (their request
   *   carries a version) wait this long before being answered, so that they are not
   *   handed endpoint sets from which the not-yet-reconnected sidecars are missing.
   */
  constructor(
    readonly cache: SnapshotCache,
    readonly events: AdsEvents = {},
    private readonly warmupMs = 0,
    private readonly maxBytesInFlight = MAX_BYTES_IN_FLIGHT,
    /** the clients' message limit; a Delta push larger than it goes in parts (injectable for tests) */
    readonly maxMessageBytes = MAX_XDS_MESSAGE_BYTES,
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

  /** a stream's writing end, whichever the protocol (responses are typed where they are made) */
  private readonly writers = new Map<string, { write(res: object, cb?: () => void): boolean }>();

  /** Serves one ADS stream: State of the World (StreamAggregatedResources) or Delta (DeltaAggregatedResources). */
  handle(call: AdsStream, policy: StreamPolicy, protocol?: 'sotw'): void;
  handle(call: DeltaStream, policy: StreamPolicy, protocol: 'delta'): void;
  handle(call: AdsStream | DeltaStream, policy: StreamPolicy, protocol: XdsProtocol = 'sotw'): void {
    let peer: PeerIdentity | undefined;
    try {
      peer = policy.authenticate(call);
    } catch (err) {
      this.refuse(call, err);
      return;
    }
    const key = `s${++this.seq}`;
    const info: StreamInfo = { key, protocol, peer, registered: false, connectedAt: Date.now(), types: new Map(), inFlight: 0, bytesInFlight: 0 };
    this.streams.set(key, info);
    this.writers.set(key, call as unknown as { write(res: object, cb?: () => void): boolean });
    // headers now, so a client that is sent nothing (its config is current) knows it is connected
    call.sendMetadata(new grpc.Metadata());
    this.events.onStreamsChanged?.(this.streams.size);
    // goodbye: the stream was refused (a sidecar that says goodbye as it drains has left
    // already, below); else (a reset, a dropped connection, a crash) its endpoint stays for the
    // cache's grace, for it to come back
    const close = (goodbye: boolean) => {
      if (!this.streams.delete(key)) return;
      this.writers.delete(key);
      // a closed call never completes its writes: their bytes are freed here
      this.bytesInFlight -= info.bytesInFlight;
      info.bytesInFlight = 0;
      this.waiting.delete(info);
      this.wake();
      if (info.registered) {
        if (goodbye) this.cache.removeWorkload(key);
        else this.cache.loseWorkload(key);
      }
      this.events.onStreamsChanged?.(this.streams.size);
    };
    call.on('data', (req: DiscoveryRequest | DeltaDiscoveryRequest) => {
      if (!this.streams.has(key)) return;
      // a draining sidecar's goodbye: its endpoint leaves now; the request carries nothing else
      if (isLeaving(req.node)) {
        if (info.registered) {
          info.registered = false;
          this.cache.removeWorkload(key);
        }
        return;
      }
      try {
        if (!info.node && req.node) {
          identify(this.cache, info, req.node, policy);
          // VHDS needs Delta xDS: over State of the World the whole table goes, feature or not
          info.routeForm = protocol === 'delta' && declaresVhds(req.node) ? 'vhds' : 'whole';
        }
        if (protocol === 'delta') this.delta.onRequest(info, req as DeltaDiscoveryRequest);
        else this.onRequest(info, req as DiscoveryRequest);
      } catch (err) {
        close(true);
        this.refuse(call, err, peer);
      }
    });
    // an end alone is no goodbye: grpc-js ends a call the same way when its connection drops
    call.on('end', () => {
      close(false);
      call.end();
    });
    call.on('error', () => close(false));
    call.on('close', () => close(false));
  }

  private refuse(call: AdsStream | DeltaStream, err: unknown, peer?: PeerIdentity): void {
    const r = err instanceof CallRefused ? err : new CallRefused(grpc.status.INTERNAL, 'INTERNAL', (err as Error).message, { cause: err });
    this.events.onRefused?.(r.reason, r.message, peer);
    refuse(call, r);
  }

  /**
   * The bounds every request is held to, whichever the protocol; throws CallRefused.
   * @returns whether the type is one served (an unknown one is answered, empty, the first time)
   */
  checkRequest(info: StreamInfo, type: string, names: number): type is XdsTypeUrl {
    if (names > MAX_NAMES_PER_REQUEST) {
      throw new CallRefused(grpc.status.INVALID_ARGUMENT, 'TOO_MANY_NAMES', `a request may name at most ${MAX_NAMES_PER_REQUEST} resources`);
    }
    if (type && !info.types.has(type as XdsTypeUrl) && info.types.size >= MAX_TYPES_PER_STREAM) {
      throw new CallRefused(grpc.status.INVALID_ARGUMENT, 'TOO_MANY_TYPES', `a stream may subscribe to at most ${MAX_TYPES_PER_STREAM} types`);
    }
    if (isXdsType(type)) return true;
    // SDS, RTDS, …: nothing is served under them; say so rather than leave the client waiting
    if (!info.types.has(type as XdsTypeUrl) && type) {
      this.events.onUnknownType?.(info, type);
      info.types.set(type as XdsTypeUrl, { names: [] });
      const nonce = this.nextNonce();
      this.writers.get(info.key)?.write(info.protocol === 'delta' ? { type_url: type, nonce } : { version_info: '', type_url: type, nonce, resources: [] });
    }
    return false;
  }

  nextNonce(): string {
    return String(++this.nonce);
  }

  /**
   * After a restart, a client that already holds config is answered when the warm-up ends.
   * @returns whether the stream is held (its answer then comes when the warm-up ends)
   */
  holdForWarmup(info: StreamInfo, type: XdsTypeUrl): boolean {
    if (Date.now() - this.startedAt >= this.warmupMs) return false;
    info.heldUntil = this.startedAt + this.warmupMs;
    setTimeout(() => {
      info.heldUntil = undefined;
      this.push(info, type, this.cache.snapshot);
    }, this.warmupMs - (Date.now() - this.startedAt));
    return true;
  }

  private onRequest(info: StreamInfo, req: DiscoveryRequest): void {
    const type = req.type_url ?? '';
    if (!this.checkRequest(info, type, req.resource_names?.length ?? 0)) return;
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
        // the client kept what it had before: the next push gives it everything
        st.sentSet = undefined;
        this.events.onNack?.(info, type, st.lastNack.message);
      } else {
        st.ackedVersion = req.version_info ?? '';
        this.events.onAck?.(info, type, st.ackedVersion, st.pendingSince);
        st.pendingSince = undefined;
      }
    }
    const names = subscription(type, req.resource_names ?? [], isNew || st.names === null, isNew ? null : st.names);
    const changed = isNew || !sameNames(st.names, names);
    if (changed) {
      st.namesKey = subscriptionKey(names);
      st.names = names && this.intern(st.namesKey, names);
      st.answerOwed = !isNew && st.sentVersion !== undefined;
    }
    if (isNew && req.version_info) {
      st.ackedVersion = req.version_info; // what a reconnecting client already holds
      if (this.holdForWarmup(info, type)) return;
    }
    // held through the warm-up, a subscription change is answered when it ends
    if (changed && info.heldUntil === undefined) this.push(info, type, this.cache.snapshot);
  }

  private pushAll(info: StreamInfo, snap: Snapshot, changedAt?: number): void {
    // Held through the warm-up, the client is answered once, when it ends: snapshots built
    // meanwhile (others reconnecting) would hand it endpoint sets with sidecars missing.
    if (info.heldUntil !== undefined) return;
    // Envoy's order: clusters and their endpoints before the listeners and routes that use them
    for (const type of xdsTypes) if (info.types.has(type)) this.push(info, type, snap, changedAt);
  }

  /** `changedAt`: when the change being pushed happened; none for answers to a subscription */
  private push(info: StreamInfo, type: XdsTypeUrl, snap: Snapshot, changedAt?: number): void {
    if (info.protocol === 'delta') return this.delta.push(info, type, snap, changedAt);
    const call = this.writers.get(info.key);
    const st = info.types.get(type);
    if (!call || !st) return;
    const set = snap.served(type, st.names, info.workload, st.namesKey);
    if (set.summary === st.sentSet && !st.answerOwed) return;
    const held = st.sentVersion ?? st.ackedVersion;
    if (set.version === held && !st.answerOwed) {
      // the same content: later diffs may start from this set, unless the client's state is
      // unknown (after a NACK); a reconnecting client that named this version holds it
      if (st.sentSet || st.sentVersion === undefined) st.sentSet = set.summary;
      return;
    }
    if (!this.admit(info, changedAt)) return;
    const partial = st.sentSet !== undefined && (type === TypeUrl.ClusterLoadAssignment || type === TypeUrl.RouteConfiguration);
    // a diff that is most of a large set goes as the whole set, whose encoding every stream
    // shares (streams syncing, each at its own stage, would otherwise each encode their own)
    const diff = partial ? set.changedSince(st.sentSet!) : set.resources;
    const resources = set.resources.length >= SHARED_SET_MIN && diff.length * 2 > set.resources.length ? set.resources : diff;
    st.sentVersion = set.version;
    st.sentSet = set.summary;
    st.answerOwed = false;
    st.sentNonce = String(++this.nonce);
    if (changedAt !== undefined) st.pendingSince ??= changedAt;
    const res: PreparedResponse = {
      version_info: set.version,
      type_url: type,
      nonce: st.sentNonce,
      resources: resources.map((r) => r.any),
      resourcesWire: set.wire(resources),
    };
    this.send(info, res, type);
  }

  /**
   * Flow control, for both protocols: whether a response may be written to the stream now.
   * If not, nothing is queued: when the client reads again (or the budget frees) it is sent
   * the state of that moment. `responses`: a Delta push in parts is written whole or not at
   * all, each part counted as a response; one of more parts than MAX_WRITES_IN_FLIGHT goes
   * when nothing else is in flight.
   */
  admit(info: StreamInfo, changedAt?: number, responses = 1): boolean {
    const overBudget = this.bytesInFlight >= this.maxBytesInFlight;
    const room = info.inFlight === 0 || info.inFlight + responses <= MAX_WRITES_IN_FLIGHT;
    if (room && !overBudget) return true;
    const owed = (info.owed ??= {});
    if (changedAt !== undefined && (owed.changedAt === undefined || changedAt < owed.changedAt)) owed.changedAt = changedAt;
    if (overBudget) this.waiting.add(info);
    return false;
  }

  /** Writes a response `admit` let through, counting its bytes until the client takes it. */
  send(info: StreamInfo, res: { resourcesWire: Buffer }, type: XdsTypeUrl): void {
    const call = this.writers.get(info.key);
    if (!call) return;
    const bytes = res.resourcesWire.length;
    info.inFlight++;
    info.bytesInFlight += bytes;
    this.bytesInFlight += bytes;
    call.write(res, () => this.written(info, bytes));
    this.events.onPush?.(type);
  }

  /** bytes written to all streams and not yet taken by their clients (a stalled client's stay bounded) */
  get bytesPending(): number {
    return this.bytesInFlight;
  }

  /** one array for alike subscriptions (never changed in place: a change makes a new one) */
  intern(key: string, names: string[]): string[] {
    const have = this.interned.get(key)?.deref();
    if (have) return have;
    this.interned.set(key, new WeakRef(names));
    this.uninterned.register(names, key);
    return names;
  }

  /** The client took a response: what waited for it goes now, as the latest state. */
  private written(info: StreamInfo, bytes: number): void {
    if (!this.streams.has(info.key)) return; // freed when it closed
    info.inFlight--;
    info.bytesInFlight -= bytes;
    this.bytesInFlight -= bytes;
    if (info.owed && info.inFlight === 0 && !this.waiting.has(info)) this.settle(info);
    this.wake();
  }

  /** Sends a stream what it was owed, as the state now. */
  private settle(info: StreamInfo): void {
    const changedAt = info.owed?.changedAt;
    info.owed = undefined;
    this.pushAll(info, this.cache.snapshot, changedAt);
  }

  /** Streams waiting for the byte budget go, in the order they came, while it lasts. */
  private wake(): void {
    if (this.waking) return;
    this.waking = true;
    try {
      for (const w of this.waiting) {
        if (this.bytesInFlight >= this.maxBytesInFlight) break;
        this.waiting.delete(w);
        if (this.streams.has(w.key) && w.inFlight < MAX_WRITES_IN_FLIGHT) this.settle(w);
      }
    } finally {
      this.waking = false;
    }
  }
}

export function adsHandlers(server: AdsServer, policy: StreamPolicy): grpc.UntypedServiceImplementation {
  const sotw = (call: AdsStream) => server.handle(call, policy);
  const delta = (call: DeltaStream) => server.handle(call, policy, 'delta');
  return {
    StreamAggregatedResources: sotw as grpc.handleBidiStreamingCall<unknown, unknown>,
    DeltaAggregatedResources: delta as grpc.handleBidiStreamingCall<unknown, unknown>,
  };
}
