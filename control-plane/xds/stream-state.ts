// A stream's bookkeeping, apart from how the server speaks: what each client subscribed to
// per type, what it holds, what it acknowledged or refused, and what it is owed.
import type { XdsNode } from '../../proto/ads';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import type { PeerIdentity } from '../identity/peer';
import type { Workload } from '../model/workload';
import type { Held } from './served-set';
import type { RouteForm } from './vhds';

/** a stream's bookkeeping is bounded: no client needs more types or names than this */
export const MAX_TYPES_PER_STREAM = 16;
/** names one request may carry; with Delta xDS, also the names a stream may hold subscribed per type */
export const MAX_NAMES_PER_REQUEST = 50_000;

export interface NackRecord {
  version: string;
  message: string;
  at: number;
}

export interface TypeState {
  /** null: wildcard */
  names: string[] | null;
  /** `names` as one string, the key of the set served for them */
  namesKey?: string;
  /** what the client holds: the set it was last sent or brought up to; undefined: unknown (first answer, after a NACK) */
  sentSet?: Held;
  /** the subscription changed and the client is owed an answer even if the version is the same */
  answerOwed?: boolean;
  sentVersion?: string;
  sentNonce?: string;
  /** Delta xDS: the nonces of the parts before the last of a push sent in parts (delta-split.ts) */
  partNonces?: string[];
  ackedVersion?: string;
  lastNack?: NackRecord;
  /**
   * when the config change or endpoint event behind the unacknowledged response happened;
   * unset for a first answer to a subscription, which is sync, not convergence
   */
  pendingSince?: number;
  /** Delta xDS: the names subscribed by name, sorted (`names` is null while `wildcard`) */
  subscribed?: string[];
  wildcard?: boolean;
  /** Delta xDS: what the client holds (name -> version) when that is not `sentSet` (a reconnect, after a NACK, an unsubscribe) */
  heldVersions?: Map<string, string>;
  /** Delta xDS: names newly subscribed, owed word (removed_resources) if they do not exist */
  asked?: string[];
}

export type XdsProtocol = 'sotw' | 'delta';

export interface StreamInfo {
  key: string;
  /** State of the World (StreamAggregatedResources) or Delta (DeltaAggregatedResources) */
  protocol: XdsProtocol;
  node?: XdsNode;
  /** how its client takes the outbound routes: split (VHDS) only for a Delta client whose node declares it */
  routeForm?: RouteForm;
  /** the sidecar behind the stream; registered as an endpoint only when `registered` */
  workload?: Workload;
  registered: boolean;
  peer?: PeerIdentity;
  connectedAt: number;
  types: Map<XdsTypeUrl, TypeState>;
  /** a reconnecting client held through the warm-up: no pushes before this time */
  heldUntil?: number;
  /** responses written that the client has not taken yet, and their bytes */
  inFlight: number;
  bytesInFlight: number;
  /** a push waits for the client to read; with when the earliest change behind it happened */
  owed?: { changedAt?: number };
}

const WILDCARD_TYPES: string[] = [TypeUrl.Listener, TypeUrl.Cluster];

/**
 * The names a request subscribes to; null is the wildcard. An empty list means
 * "everything" only on a type's first request (or while already wildcard); after named
 * subscriptions it means "nothing any more". "*" is the explicit wildcard, and with
 * other names beside it those are served too — for Listener and Cluster, the wildcard
 * already includes them.
 */
export function subscription(type: XdsTypeUrl, requested: string[], mayBeImplicitWildcard: boolean, held: string[] | null): string[] | null {
  // an ACK names what it subscribed to before, in the same order: no need to sort it again
  if (held !== null && sameNames(held, requested)) return held;
  const wildcardType = WILDCARD_TYPES.includes(type);
  if (requested.includes('*')) return wildcardType ? null : [...new Set(requested.filter((n) => n !== '*'))].sort();
  if (requested.length === 0 && wildcardType && mayBeImplicitWildcard) return null;
  return [...new Set(requested)].sort();
}

export function sameNames(a: string[] | null, b: string[] | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
