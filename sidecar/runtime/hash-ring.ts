// Consistent hashing for RING_HASH (and MAGLEV, which shares it here): each endpoint
// owns many points on a 32-bit ring; a request's hash goes to the next point clockwise.
// Adding or removing an endpoint moves only the keys between its points.

/** FNV-1a, 32 bits: fast, good enough spread for keys and ring points. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // a final avalanche, so similar keys ("user-1", "user-2") land far apart
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class HashRing<T> {
  private readonly points: Uint32Array;
  private readonly owners: T[];

  /**
   * `key` names an endpoint stably (its address), so rings built on every config swap agree.
   * Each endpoint gets the same number of points whatever the cluster's size (up to 256
   * endpoints), so one joining or leaving moves only the keys it takes or gives up.
   */
  constructor(items: T[], key: (t: T) => string, weight: (t: T) => number = () => 1) {
    const per = items.length <= 256 ? 256 : Math.ceil(65_536 / items.length);
    // as Envoy: an endpoint's share of the ring follows its weight (the heaviest gets `per` points)
    const heaviest = Math.max(1, ...items.map(weight));
    const all: [number, T][] = [];
    for (const it of items) {
      const n = Math.max(1, Math.round((per * weight(it)) / heaviest));
      for (let i = 0; i < n; i++) all.push([hash32(`${key(it)}_${i}`), it]);
    }
    all.sort((a, b) => a[0] - b[0]);
    this.points = Uint32Array.from(all.map((p) => p[0]));
    this.owners = all.map((p) => p[1]);
  }

  get empty(): boolean {
    return this.owners.length === 0;
  }

  pick(h: number, usable?: (t: T) => boolean): T | undefined {
    const n = this.points.length;
    if (!n) return undefined;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    // walk on past endpoints that may not take it (ejected), as Envoy does
    for (let i = 0; i < n; i++) {
      const o = this.owners[(lo + i) % n];
      if (!usable || usable(o)) return o;
    }
    return this.owners[lo % n];
  }
}
