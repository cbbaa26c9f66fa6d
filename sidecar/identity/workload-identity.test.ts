import { describe, expect, it } from 'vitest';
import { CertificateAuthority, createRootCA } from '../../certs/ca';
import { parseCsr } from '../../certs/csr';
import type { CaCredential } from './ca-client';
import { renewalDelay, WorkloadIdentity, type Clock, type HeldCert } from './workload-identity';

// A clock the test moves by hand: timers fire only when advance() passes them.
class ManualClock implements Clock {
  t = Date.parse('2026-11-23T12:00:00Z');
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private seq = 0;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.seq;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.timers = this.timers.filter((x) => x.id !== h);
  };
  /** the delay of the one pending timer */
  pending(): number[] {
    return this.timers.map((x) => x.at - this.t);
  }
  async advance(ms: number): Promise<void> {
    this.t += ms;
    for (const x of this.timers.filter((x) => x.at <= this.t)) {
      this.clearTimeout(x.id);
      x.fn();
    }
    await flush();
  }
}

const flush = () => new Promise<void>((r) => setImmediate(r));
const ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

function setup(o: { ttlMs?: number; random?: number; failing?: () => boolean } = {}) {
  const clock = new ManualClock();
  const root = createRootCA('cluster.local', 365 * 24 * 3600e3, clock.t - 3600e3);
  const ca = new CertificateAuthority(root, { now: clock.now });
  const creds: CaCredential[] = [];
  const identity = new WorkloadIdentity({
    spiffeId: ID,
    trustDomain: 'cluster.local',
    rootPem: root.certPem,
    token: () => 'the-token',
    clock,
    random: () => o.random ?? 0,
    log: silent,
    request: async (key, id, cred) => {
      creds.push(cred);
      if (o.failing?.()) throw new Error('control plane down');
      const csr = parseCsr((await import('../../certs/csr')).buildCsr(key, id));
      return [ca.signWorkload({ publicKey: csr.publicKey, spiffeId: id, services: ['reviews'], ttlMs: o.ttlMs ?? 10_000 }), root.certPem];
    },
  });
  const rotations: HeldCert[] = [];
  identity.on('rotated', (c: HeldCert) => rotations.push(c));
  return { clock, identity, creds, rotations };
}

describe('renewal scheduling', () => {
  it('renews between 40% and 50% of the life left at receipt, never later than half-life', () => {
    expect(renewalDelay(0, 10_000, 0)).toBe(5000);
    expect(renewalDelay(0, 10_000, 1)).toBe(4000);
    expect(renewalDelay(0, 10_000, 0.5)).toBe(4500);
    expect(renewalDelay(5000, 4000, 0)).toBe(0);
  });

  it('fetches with the token first, then renews over its certificate at half-life, with a new key each time', async () => {
    const { clock, identity, creds, rotations } = setup({ ttlMs: 10_000 });
    identity.start();
    await flush();
    expect(rotations).toHaveLength(1);
    expect(creds[0]).toEqual({ token: 'the-token' });
    expect(clock.pending()).toEqual([5000]);
    await clock.advance(4999);
    expect(rotations).toHaveLength(1);
    await clock.advance(1);
    expect(rotations).toHaveLength(2);
    expect('certPem' in creds[1] && creds[1].certPem).toBe(rotations[0].chainPem);
    expect(rotations[1].info.serial).not.toBe(rotations[0].info.serial);
    expect(rotations[1].key.keyPem).not.toBe(rotations[0].key.keyPem);
    expect(identity.current).toBe(rotations[1]);
    identity.stop();
  });

  it('keeps the current certificate while the CA is down, retries with backoff, and falls back to the token once it lapsed', async () => {
    let down = false;
    const { clock, identity, creds, rotations } = setup({ ttlMs: 10_000, random: 1, failing: () => down });
    identity.start();
    await flush();
    const first = identity.current!;
    down = true;
    await clock.advance(4000); // renewal due (random 1: 40% of 10 s)
    expect(identity.current).toBe(first);
    // retries back off: 200, 400, 800 … capped at 5 s
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      delays.push(clock.pending()[0]);
      await clock.advance(clock.pending()[0]);
    }
    expect(delays).toEqual([200, 400, 800, 1600, 3200, 5000]);
    expect(identity.current).toBe(first);
    // 4 s + 11.2 s: the certificate (valid until t0+10 s) has lapsed; the next try uses the token
    down = false;
    await clock.advance(clock.pending()[0]);
    expect(creds.at(-1)).toEqual({ token: 'the-token' });
    expect(rotations).toHaveLength(2);
    identity.stop();
  });

  it('stops scheduling once stopped', async () => {
    const { clock, identity } = setup();
    identity.start();
    await flush();
    identity.stop();
    expect(clock.pending()).toEqual([]);
  });
});
