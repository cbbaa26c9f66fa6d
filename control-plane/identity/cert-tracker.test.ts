import { describe, expect, it } from 'vitest';
import { CertTracker } from './cert-tracker';

const TTL = 22_000;

/** A sidecar renewing at 10 s intervals, each renewal authenticated by the certificate before. */
function renewals(tracker: CertTracker, clock: { t: number }, count: number, first = 's0'): string[] {
  const serials = [first];
  for (let i = 1; i <= count; i++) {
    clock.t += 10_000;
    const serial = `${first}-r${i}`;
    tracker.issued({ serial, notAfter: new Date(clock.t + TTL), renewedFrom: serials[serials.length - 1] });
    serials.push(serial);
  }
  return serials;
}

describe('CertTracker', () => {
  it('follows a stream to the newest certificate after many renewals, long past its own expiry', () => {
    const clock = { t: 0 };
    const bound = new Set(['s0']);
    const tracker = new CertTracker(() => clock.t, () => bound);
    const s0Expiry = new Date(TTL);
    renewals(tracker, clock, 60);
    // the stream connected with s0 (expired 10 minutes ago): the expiry shown is the newest's
    expect(tracker.currentExpiry('s0', s0Expiry).getTime()).toBe(clock.t + TTL);
  });

  it('follows a stream that reconnected with a renewed certificate, after that one expired too', () => {
    const clock = { t: 0 };
    const bound = new Set<string>();
    const tracker = new CertTracker(() => clock.t, () => bound);
    const serials = renewals(tracker, clock, 3);
    // the stream reconnects with the third certificate, which is later renewed many times
    bound.add(serials[3]);
    const third = new Date(clock.t + TTL);
    renewals(tracker, clock, 30, serials[3]);
    expect(tracker.currentExpiry(serials[3], third).getTime()).toBe(clock.t + TTL);
  });

  it('remembers only live certificates and bound ones, however many renewals', () => {
    const clock = { t: 0 };
    const bound = new Set(['s0']);
    const tracker = new CertTracker(() => clock.t, () => bound);
    renewals(tracker, clock, 500);
    // 22 s certificates renewed every 10 s: three at most unexpired, plus none bound among members
    expect(tracker.size.members).toBeLessThanOrEqual(3);
    expect(tracker.size.chains).toBe(1);
    // the stream ends; its chain goes once its certificates have expired
    bound.clear();
    clock.t += TTL + 1;
    tracker.issued({ serial: 'other', notAfter: new Date(clock.t + TTL) });
    expect(tracker.size).toEqual({ members: 0, chains: 0 });
  });

  it('answers with the certificate a stream holds when nothing was renewed from it', () => {
    const tracker = new CertTracker();
    const at = new Date(Date.now() + TTL);
    expect(tracker.currentExpiry('unknown', at)).toBe(at);
  });
});
