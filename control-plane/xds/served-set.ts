// What one kind of subscriber is served of one type, and what changed in it since an
// earlier set: for Listener and Cluster a State-of-the-World response must carry the whole
// set, but for RouteConfiguration and ClusterLoadAssignment it may carry only the
// resources that changed, so an endpoint joining costs one ClusterLoadAssignment per
// subscriber, not all of them. Diffs and encodings are made once and shared by every
// stream that needs the same one.
import { createHash } from 'node:crypto';
import { encodeDeltaResourceField, encodeResourceField } from '../../proto/wire';
import type { AnyMessage } from '../../proto/any';

export interface Resource {
  name: string;
  any: AnyMessage;
  /** the plain object, for /debug views */
  obj: Record<string, unknown>;
}

const wires = new WeakMap<Resource, Buffer>();

/** The resource as DiscoveryResponse field 2, encoded once. */
export function wireOf(r: Resource): Buffer {
  let w = wires.get(r);
  if (!w) {
    w = encodeResourceField(r.any);
    wires.set(r, w);
  }
  return w;
}

/**
 * What a client was sent of a set, without the resources: a stream keeps this, so that a
 * stream behind by a few snapshots does not keep those snapshots' resources alive.
 */
export interface Held {
  version: string;
  /** resource name -> digest of its encoding */
  digests: Map<string, string>;
}

const digests = new WeakMap<Resource, string>();

/** A resource's version in Delta xDS: a digest of its encoding, made once. */
export function digestOf(r: Resource): string {
  let d = digests.get(r);
  if (d === undefined) {
    d = createHash('sha256').update(r.any.value).digest('base64url').slice(0, 22);
    digests.set(r, d);
  }
  return d;
}

const deltaWires = new WeakMap<Resource, Buffer>();

/** The resource as DeltaDiscoveryResponse field 2 (a Resource named and versioned by its digest), encoded once. */
export function deltaWireOf(r: Resource): Buffer {
  let w = deltaWires.get(r);
  if (!w) {
    w = encodeDeltaResourceField(r.name, digestOf(r), r.any);
    deltaWires.set(r, w);
  }
  return w;
}

export class ServedSet {
  private held?: Held;
  private readonly diffs = new WeakMap<Held, Resource[]>();
  private readonly gone = new WeakMap<Held, string[]>();
  private readonly wires = new WeakMap<Resource[], Buffer>();
  private readonly deltaWires = new WeakMap<Resource[], Buffer>();

  constructor(
    readonly version: string,
    readonly resources: Resource[],
  ) {}

  /** This set as a client that was sent it holds it. */
  get summary(): Held {
    this.held ??= { version: this.version, digests: new Map(this.resources.map((r) => [r.name, digestOf(r)])) };
    return this.held;
  }

  /**
   * The resources of this set that a client holding `held` lacks or holds in another form.
   * Resources only `held` has are not listed: a client drops those itself when it
   * unsubscribes, and one still subscribed keeps what it has, as Envoy does.
   */
  changedSince(held: Held): Resource[] {
    let d = this.diffs.get(held);
    if (!d) {
      d = held === this.held ? [] : this.resources.filter((r) => held.digests.get(r.name) !== digestOf(r));
      this.diffs.set(held, d);
    }
    return d;
  }

  /** `list` (this set's resources, or a diff of it) encoded, once for every stream sent it. */
  wire(list: Resource[]): Buffer {
    let w = this.wires.get(list);
    if (!w) {
      w = Buffer.concat(list.map(wireOf));
      this.wires.set(list, w);
    }
    return w;
  }

  /** The names a client holding `held` holds that this set no longer has (Delta xDS removed_resources). */
  removedSince(held: Held): string[] {
    let g = this.gone.get(held);
    if (!g) {
      const have = this.summary.digests;
      g = held === this.held ? [] : [...held.digests.keys()].filter((n) => !have.has(n));
      this.gone.set(held, g);
    }
    return g;
  }

  /** `list` as DeltaDiscoveryResponse resources, encoded once for every stream sent it. */
  deltaWire(list: Resource[]): Buffer {
    let w = this.deltaWires.get(list);
    if (!w) {
      w = Buffer.concat(list.map(deltaWireOf));
      this.deltaWires.set(list, w);
    }
    return w;
  }
}
