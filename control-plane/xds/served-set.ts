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

/** `make(key)` made once per key, for as long as the key lives. */
function once<K extends object, V>(cache: WeakMap<K, V>, key: K, make: (key: K) => V): V {
  let v = cache.get(key);
  if (v === undefined) {
    v = make(key);
    cache.set(key, v);
  }
  return v;
}

const wires = new WeakMap<Resource, Buffer>();

/** The resource as DiscoveryResponse field 2, encoded once. */
export const wireOf = (r: Resource): Buffer => once(wires, r, (x) => encodeResourceField(x.any));

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
export const digestOf = (r: Resource): string => once(digests, r, (x) => createHash('sha256').update(x.any.value).digest('base64url').slice(0, 22));

const deltaWires = new WeakMap<Resource, Buffer>();

/** The resource as DeltaDiscoveryResponse field 2 (a Resource named and versioned by its digest), encoded once. */
export const deltaWireOf = (r: Resource): Buffer => once(deltaWires, r, (x) => encodeDeltaResourceField(x.name, digestOf(x), x.any));

export class ServedSet {
  private held?: Held;
  private readonly diffs = new WeakMap<Held, Resource[]>();
  private readonly gone = new WeakMap<Held, string[]>();
  private readonly wires = new WeakMap<Resource[], Buffer>();
  private readonly deltaWires = new WeakMap<Resource[], Buffer>();
  private readonly runs = new WeakMap<Resource[], { budget: number; runs: Resource[][] }>();

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
    return once(this.diffs, held, (h) => (h === this.held ? [] : this.resources.filter((r) => h.digests.get(r.name) !== digestOf(r))));
  }

  /** `list` (this set's resources, or a diff of it) encoded, once for every stream sent it. */
  wire(list: Resource[]): Buffer {
    return once(this.wires, list, (l) => Buffer.concat(l.map(wireOf)));
  }

  /** The names a client holding `held` holds that this set no longer has (Delta xDS removed_resources). */
  removedSince(held: Held): string[] {
    const have = this.summary.digests;
    return once(this.gone, held, (h) => (h === this.held ? [] : [...h.digests.keys()].filter((n) => !have.has(n))));
  }

  /** `list` as DeltaDiscoveryResponse resources, encoded once for every stream sent it. */
  deltaWire(list: Resource[]): Buffer {
    return once(this.deltaWires, list, (l) => Buffer.concat(l.map(deltaWireOf)));
  }

  /**
   * `list` cut, in order, into runs of at most `budget` bytes as DeltaDiscoveryResponse
   * resources (a resource larger than that alone in its run), once for every stream sent it:
   * the runs are the same arrays for all of them, so each run's encoding (deltaWire) is too.
   * A list that fits is its own single run.
   */
  deltaRuns(list: Resource[], budget: number): Resource[][] {
    const have = this.runs.get(list);
    if (have?.budget === budget) return have.runs;
    const runs: Resource[][] = [];
    let run: Resource[] = [];
    let bytes = 0;
    for (const r of list) {
      const b = deltaWireOf(r).length;
      if (run.length && bytes + b > budget) {
        runs.push(run);
        run = [];
        bytes = 0;
      }
      run.push(r);
      bytes += b;
    }
    if (run.length) runs.push(runs.length ? run : list);
    this.runs.set(list, { budget, runs });
    return runs;
  }
}
