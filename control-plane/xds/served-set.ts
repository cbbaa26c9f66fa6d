// What one kind of subscriber is served of one type, and what changed in it since an
// earlier set: for Listener and Cluster a State-of-the-World response must carry the whole
// set, but for RouteConfiguration and ClusterLoadAssignment it may carry only the
// resources that changed, so an endpoint joining costs one ClusterLoadAssignment per
// subscriber, not all of them. Diffs and encodings are made once and shared by every
// stream that needs the same one.
import { encodeResourceField } from '../../proto/wire';
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

export class ServedSet {
  private byName?: Map<string, Resource>;
  private readonly diffs = new WeakMap<ServedSet, Resource[]>();
  private readonly wires = new WeakMap<Resource[], Buffer>();

  constructor(
    readonly version: string,
    readonly resources: Resource[],
  ) {}

  get(name: string): Resource | undefined {
    this.byName ??= new Map(this.resources.map((r) => [r.name, r]));
    return this.byName.get(name);
  }

  /**
   * The resources of this set that a client holding `held` lacks or holds in another form.
   * Resources only `held` has are not listed: a client drops those itself when it
   * unsubscribes, and one still subscribed keeps what it has, as Envoy does.
   */
  changedSince(held: ServedSet): Resource[] {
    let d = this.diffs.get(held);
    if (!d) {
      d = this.resources.filter((r) => {
        const old = held.get(r.name);
        return !old || (old !== r && Buffer.compare(old.any.value, r.any.value) !== 0);
      });
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
}
