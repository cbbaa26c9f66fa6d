// Which certificate a proxy holds now. An ADS stream is bound to the certificate it
// connected with, but the sidecar renews over separate CA calls authenticated by its
// current certificate, so each renewal names the one before it. The certificates linked
// that way form one chain, and every member of a chain answers with the chain's newest.
// A member is remembered while it can still authenticate a renewal (it has not expired)
// or a stream is bound to it: a stream outlives the certificate it connected with, since
// TLS checks it once, at the handshake. Following links one by one instead would break
// the first time a link's certificate expired, and report the stream's stale expiry.
export interface IssuedCert {
  serial: string;
  notAfter: Date;
  /** the serial of the certificate that authenticated the renewal */
  renewedFrom?: string;
}

export class CertTracker {
  /** serial -> the chain it belongs to (named by the serial the chain started from) */
  private readonly chainOf = new Map<string, { chain: string; notAfter: number }>();
  /** chain -> its newest certificate */
  private readonly newest = new Map<string, IssuedCert>();

  constructor(
    private readonly now: () => number = Date.now,
    /** the serials that open streams are bound to */
    private readonly bound: () => Iterable<string> = () => [],
  ) {}

  issued(c: IssuedCert): void {
    if (c.renewedFrom) {
      const chain = this.chainOf.get(c.renewedFrom)?.chain ?? c.renewedFrom;
      const held = this.newest.get(chain);
      if (!held || held.notAfter.getTime() <= c.notAfter.getTime()) this.newest.set(chain, c);
      this.chainOf.set(c.serial, { chain, notAfter: c.notAfter.getTime() });
    }
    this.prune();
  }

  /** The expiry of the newest certificate renewed from `serial`, directly or not. */
  currentExpiry(serial: string, notAfter: Date): Date {
    const newest = this.newest.get(this.chainOf.get(serial)?.chain ?? serial);
    return newest && newest.notAfter.getTime() > notAfter.getTime() ? newest.notAfter : notAfter;
  }

  /** members and chains remembered (for tests: this must not grow with renewals) */
  get size(): { members: number; chains: number } {
    return { members: this.chainOf.size, chains: this.newest.size };
  }

  private prune(): void {
    const t = this.now();
    const bound = new Set(this.bound());
    const live = new Set<string>(bound);
    for (const [serial, m] of this.chainOf) {
      if (m.notAfter >= t || bound.has(serial)) live.add(m.chain);
      else this.chainOf.delete(serial);
    }
    for (const chain of this.newest.keys()) if (!live.has(chain)) this.newest.delete(chain);
  }
}
