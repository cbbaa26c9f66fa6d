// The workload's certificate over time: fetched at start, renewed at (just before) half
// its life with a new key each time, and retried with jittered backoff while the CA is
// unreachable — the current certificate keeps serving meanwhile. Listeners read
// `current` when a handshake starts, so a rotation applies to new connections at once
// and never touches a request in flight.
import { EventEmitter } from 'node:events';
import { newKey, type WorkloadKey } from '../../certs/keys';
import { describeSvid, verifySvid, type SvidInfo } from '../../certs/svid';
import type { Logger } from '../../common/log';
import type { CaCredential } from './ca-client';

export interface HeldCert {
  key: WorkloadKey;
  /** the workload's certificate alone */
  certPem: string;
  /** leaf first, then any intermediates (the root is the trust anchor, not sent) */
  chainPem: string;
  info: SvidInfo;
  receivedAt: number;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface IdentityOptions {
  spiffeId: string;
  trustDomain: string;
  rootPem: string;
  /** the bootstrap token, read when it is needed (a token file may be refreshed) */
  token: () => string;
  request: (key: WorkloadKey, spiffeId: string, cred: CaCredential) => Promise<string[]>;
  log: Logger;
  clock?: Clock;
  random?: () => number;
  retry?: { baseMs: number; maxMs: number };
}

/** When to renew: between 40% and 50% of the life left at receipt, never past half-life. */
export function renewalDelay(receivedAt: number, notAfter: number, random: number): number {
  const life = Math.max(0, notAfter - receivedAt);
  return Math.floor(life * (0.5 - 0.1 * random));
}

export class WorkloadIdentity extends EventEmitter {
  current?: HeldCert;
  private timer: unknown;
  private attempt = 0;
  private stopped = false;
  private readonly clock: Clock;
  private readonly random: () => number;

  constructor(private readonly o: IdentityOptions) {
    super();
    this.clock = o.clock ?? systemClock;
    this.random = o.random ?? Math.random;
  }

  start(): void {
    void this.fetch();
  }

  stop(): void {
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
  }

  /** Seconds until the held certificate expires, or undefined before the first one. */
  expiresAt(): Date | undefined {
    return this.current?.info.notAfter;
  }

  private credential(): CaCredential {
    const c = this.current;
    // a certificate that is about to lapse could expire mid-handshake: use the token then
    if (c && c.info.notAfter.getTime() - this.clock.now() > 1000) return { certPem: c.chainPem, keyPem: c.key.keyPem };
    return { token: this.o.token() };
  }

  private async fetch(): Promise<void> {
    if (this.stopped) return;
    const key = newKey();
    try {
      const chain = await this.o.request(key, this.o.spiffeId, this.credential());
      const leaf = chain[0];
      const info = verifySvid(leaf, this.o.rootPem, { now: this.clock.now(), trustDomain: this.o.trustDomain });
      if (info.spiffeId !== this.o.spiffeId) throw new Error(`the CA issued ${info.spiffeId}, not ${this.o.spiffeId}`);
      if (this.stopped) return;
      const previous = this.current;
      const chainPem = chain.filter((c) => c.trim() !== this.o.rootPem.trim()).join('');
      this.current = { key, certPem: leaf, chainPem, info, receivedAt: this.clock.now() };
      this.attempt = 0;
      this.emit('rotated', this.current, previous);
      this.schedule(renewalDelay(this.current.receivedAt, info.notAfter.getTime(), this.random()));
    } catch (err) {
      if (this.stopped) return;
      const cap = Math.min(this.o.retry?.maxMs ?? 5000, (this.o.retry?.baseMs ?? 200) * 2 ** this.attempt++);
      const delay = Math.max(50, Math.floor(this.random() * cap));
      const held = this.current ? `; serving on the current certificate until ${this.current.info.notAfter.toISOString()}` : '';
      this.o.log.warn(`certificate request failed (${(err as Error).message}); retrying in ${delay}ms${held}`);
      this.emit('error-retry', err);
      this.schedule(delay);
    }
  }

  private schedule(ms: number): void {
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => void this.fetch(), ms);
  }
}

/** /certs: what the sidecar holds, as an operator reads it. */
export function certSummary(c: HeldCert | undefined): object {
  if (!c) return { state: 'no certificate yet' };
  const i = describeSvid(c.certPem);
  // the names SPEC section 8 gives them (notBefore, notAfter), in the same style throughout
  return {
    spiffeId: i.spiffeId,
    serial: i.serial,
    notBefore: i.notBefore.toISOString(),
    notAfter: i.notAfter.toISOString(),
    services: i.services,
    receivedAt: new Date(c.receivedAt).toISOString(),
  };
}
