// Which certificate a proxy holds now. An ADS stream is bound to the certificate it
// connected with, but the sidecar renews over separate CA calls authenticated by that
// certificate; following the renewals from the stream's serial gives the current one.
export interface IssuedCert {
  serial: string;
  notAfter: Date;
  /** the serial of the certificate that authenticated the renewal */
  renewedFrom?: string;
}

export class CertTracker {
  private readonly next = new Map<string, IssuedCert>();

  constructor(private readonly now: () => number = Date.now) {}

  issued(c: IssuedCert): void {
    if (c.renewedFrom) this.next.set(c.renewedFrom, c);
    this.prune();
  }

  /** The expiry of the newest certificate descended from `serial`. */
  currentExpiry(serial: string, notAfter: Date): Date {
    let at = notAfter;
    const seen = new Set<string>();
    for (let c = this.next.get(serial); c && !seen.has(c.serial); c = this.next.get(c.serial)) {
      seen.add(c.serial);
      at = c.notAfter;
    }
    return at;
  }

  // A link is needed only while the certificate it leads from could still hold a stream;
  // keep a renewed-from entry until the certificate it led to has expired.
  private prune(): void {
    const t = this.now();
    for (const [k, c] of this.next) if (c.notAfter.getTime() < t) this.next.delete(k);
  }
}
