// Delta (incremental) xDS over DeltaAggregatedResources: per type, a client subscribes and
// unsubscribes names (or the wildcard, for Listener, Cluster and VirtualHost), and each response carries
// only the resources that changed, each with its own version, plus the names removed.
// A reconnecting client names what it holds (initial_resource_versions) and is sent only
// what differs. A resource's version is the digest of its encoding (served-set.ts), so the
// same resource has the same version in every snapshot and over both protocols. A push
// larger than a client's message limit goes as several responses (delta-split.ts), every one
// but the last marked (proto/delta-parts.ts), so that a sidecar puts it in force whole.
//
// The stream itself (who may connect, registration, flow control, warm-up, events) is the
// AdsServer's, shared with State of the World; this file is how Delta speaks.
import * as grpc from '@grpc/grpc-js';
import type { DeltaDiscoveryRequest, PreparedDeltaResponse } from '../../proto/ads';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import type { SnapshotCache } from './cache';
import { partVersion } from '../../proto/delta-parts';
import { digestOf, type Resource } from './served-set';
import { splitDelta } from './delta-split';
import { ENVELOPE_BYTES } from './message-size';
import { subscriptionKey, type Snapshot } from './snapshot';
import { CallRefused } from '../identity/peer';
import { MAX_NAMES_PER_REQUEST, type StreamInfo, type TypeState } from './stream-state';
import type { AdsEvents } from './server';

/** What the AdsServer lends a protocol: its cache, events, bounds and flow control. */
export interface ProtocolHost {
  readonly cache: SnapshotCache;
  readonly events: AdsEvents;
  /** throws CallRefused past the bounds; false for a type not served (answered already) */
  checkRequest(info: StreamInfo, type: string, names: number): type is XdsTypeUrl;
  nextNonce(): string;
  holdForWarmup(info: StreamInfo, type: XdsTypeUrl): boolean;
  /** `responses`: the parts of one push, admitted together */
  admit(info: StreamInfo, changedAt?: number, responses?: number): boolean;
  send(info: StreamInfo, res: PreparedDeltaResponse, type: XdsTypeUrl): void;
  intern(key: string, names: string[]): string[];
  /** the largest message a client takes (proto/limits.ts); a push larger than it goes in parts */
  readonly maxMessageBytes: number;
}

/**
 * Listener, Cluster and VirtualHost: the types a client may subscribe to as a wildcard, and
 * whose resources are said gone (removed_resources) when they leave the set.
 */
const WHOLE_SET_TYPES: string[] = [TypeUrl.Listener, TypeUrl.Cluster, TypeUrl.VirtualHost];

/** What a stream's client holds of a type, by name and version: as last sent, or as it said when it connected. */
const heldBy = (st: TypeState): Map<string, string> => (st.sentSet ? st.sentSet.digests : (st.heldVersions ?? new Map<string, string>()));

export class DeltaProtocol {
  constructor(private readonly host: ProtocolHost) {}

  onRequest(info: StreamInfo, req: DeltaDiscoveryRequest): void {
    const type = req.type_url ?? '';
    const subscribe = req.resource_names_subscribe ?? [];
    const unsubscribe = req.resource_names_unsubscribe ?? [];
    const initial = req.initial_resource_versions ?? {};
    const initialNames = Object.keys(initial);
    if (!this.host.checkRequest(info, type, subscribe.length + unsubscribe.length + initialNames.length)) return;
    let st = info.types.get(type);
    const isNew = !st;
    if (!st) {
      st = { names: [], subscribed: [], wildcard: false, heldVersions: new Map(initialNames.map((n) => [n, initial[n]])) };
      info.types.set(type, st);
    }
    if (req.response_nonce && !isNew) this.onAnswer(info, type, st, req);

    const changed = this.subscribe(type, st, isNew, subscribe, unsubscribe);
    if (!changed) return;
    // a first request with nothing held is answered even if empty: the client then knows it is in sync
    if (isNew && initialNames.length === 0) st.answerOwed = true;
    if (isNew && initialNames.length > 0 && this.host.holdForWarmup(info, type)) return;
    if (info.heldUntil === undefined) this.push(info, type, this.host.cache.snapshot);
  }

  /** An ACK or a NACK of a response. */
  private onAnswer(info: StreamInfo, type: XdsTypeUrl, st: TypeState, req: DeltaDiscoveryRequest): void {
    if (req.error_detail) {
      // a part of the push in flight refused: the push is not taken, whatever its last part's answer
      if (st.partNonces?.includes(req.response_nonce ?? '')) st.sentNonce = undefined;
      st.lastNack = { version: st.sentVersion ?? '', message: req.error_detail.message ?? '', at: Date.now() };
      // The client kept what it had of that response's resources: which those are is not
      // known here, so the next push sends it every resource it is subscribed to again.
      st.heldVersions = new Map([...heldBy(st).keys()].map((n) => [n, '']));
      st.sentSet = undefined;
      this.host.events.onNack?.(info, type, st.lastNack.message);
    } else if (req.response_nonce === st.sentNonce) {
      // an ACK of an older response is overtaken by the newer one in flight
      st.ackedVersion = st.sentVersion ?? '';
      this.host.events.onAck?.(info, type, st.ackedVersion, st.pendingSince);
      st.pendingSince = undefined;
    }
  }

  /** Applies a request's subscribe and unsubscribe; whether the subscription changed. */
  private subscribe(type: XdsTypeUrl, st: TypeState, isNew: boolean, subscribe: string[], unsubscribe: string[]): boolean {
    const wildcardType = WHOLE_SET_TYPES.includes(type);
    let wildcard = st.wildcard ?? false;
    // the legacy wildcard: a first request that names nothing, for Listener and Cluster
    if (isNew && wildcardType && subscribe.length === 0) wildcard = true;
    if (wildcardType && subscribe.includes('*')) wildcard = true;
    if (unsubscribe.includes('*')) wildcard = false;
    const names = new Set(st.subscribed);
    const added: string[] = [];
    for (const n of subscribe) if (n !== '*' && !names.has(n)) { names.add(n); added.push(n); }
    const dropped = unsubscribe.filter((n) => n !== '*' && names.delete(n));
    // subscriptions add up over requests: bounded as one State-of-the-World request is
    if (names.size > MAX_NAMES_PER_REQUEST) {
      throw new CallRefused(grpc.status.INVALID_ARGUMENT, 'TOO_MANY_NAMES', `a stream may subscribe to at most ${MAX_NAMES_PER_REQUEST} resources of a type`);
    }
    if (!isNew && wildcard === st.wildcard && !added.length && !dropped.length) return false;
    st.wildcard = wildcard;
    const sorted = [...names].sort();
    const key = subscriptionKey(sorted);
    // alike sidecars subscribe to the same thousand names: one array is kept for all of them
    st.subscribed = this.host.intern(key, sorted);
    // with the wildcard, Listener and Cluster are served whole, named ones among them
    st.names = wildcard ? null : st.subscribed;
    st.namesKey = wildcard ? subscriptionKey(null) : key;
    if (!isNew) st.answerOwed ||= added.length > 0;
    // a name the client says it holds (a reconnect) is not asked about: it keeps it, as in SotW
    const asked = added.filter((n) => !st.heldVersions?.has(n));
    if (asked.length) st.asked = [...(st.asked ?? []), ...asked];
    if (dropped.length && !wildcard) {
      // the client drops what it unsubscribed from itself
      const held = new Map(heldBy(st));
      for (const n of dropped) held.delete(n);
      st.heldVersions = held;
      st.sentSet = undefined;
    }
    return true;
  }

  /** Sends the stream what changed of one type since what it holds, if anything did. */
  push(info: StreamInfo, type: XdsTypeUrl, snap: Snapshot, changedAt?: number): void {
    const st = info.types.get(type);
    if (!st || st.names === undefined || st.wildcard === undefined) return;
    const set = snap.served(type, st.names, info.workload, st.namesKey, info.routeForm);
    if (set.summary === st.sentSet && !st.answerOwed) return;
    let changed: Resource[];
    let removed: string[];
    if (st.sentSet) {
      // in step with a set others were sent too: the diff, and its encoding, are shared
      changed = set.changedSince(st.sentSet);
      removed = set.removedSince(st.sentSet);
    } else {
      const held = heldBy(st);
      changed = set.resources.filter((r) => held.get(r.name) !== digestOf(r));
      // all of it (a first answer): the set's own list, whose encoding every stream shares
      if (changed.length === set.resources.length) changed = set.resources;
      removed = [...held.keys()].filter((n) => !set.summary.digests.has(n));
    }
    // As in State of the World, a route or endpoint set the client still subscribes to is
    // kept by it when it goes (a cluster draining under make-before-break keeps its
    // endpoints); the client drops it when it unsubscribes. Listeners, clusters and virtual hosts go.
    if (!WHOLE_SET_TYPES.includes(type)) removed = [];
    // a name asked for that does not exist is said to be absent, so the client need not wait for it
    const absent = (st.asked ?? []).filter((n) => !set.summary.digests.has(n) && !removed.includes(n));
    if (absent.length) removed = [...removed, ...absent];
    if (!changed.length && !removed.length && !st.answerOwed) {
      // the client holds this set already (a reconnect that named it)
      if (st.sentVersion === undefined) st.ackedVersion = set.version;
      st.sentSet = set.summary;
      st.heldVersions = undefined;
      st.asked = undefined;
      return;
    }
    // a push too large for one message goes in parts, each within the sidecars' limit
    // (delta-split.ts); its parts are admitted together and each counts as a response
    const parts = splitDelta(set, changed, removed, this.host.maxMessageBytes - ENVELOPE_BYTES);
    if (!this.host.admit(info, changedAt, parts.length)) return;
    st.sentSet = set.summary;
    st.heldVersions = undefined;
    st.asked = undefined;
    st.answerOwed = false;
    st.sentVersion = set.version;
    if (changedAt !== undefined) st.pendingSince ??= changedAt;
    const nonces = parts.map(() => this.host.nextNonce());
    // the push is taken when its last part is: an ACK of an earlier one is not the push's
    st.sentNonce = nonces.at(-1);
    st.partNonces = parts.length > 1 ? nonces.slice(0, -1) : undefined;
    parts.forEach((part, i) => {
      // the resources go as their shared encoding alone (proto/ads.ts writes resourcesWire),
      // not as objects made again for every stream
      const res: PreparedDeltaResponse = {
        system_version_info: partVersion(set.version, i + 1, parts.length),
        type_url: type,
        nonce: nonces[i],
        removed_resources: part.removed,
        resourcesWire: set.deltaWire(part.resources),
      };
      this.host.send(info, res, type);
    });
  }
}
