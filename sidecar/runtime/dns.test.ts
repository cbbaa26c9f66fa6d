import { describe, expect, it } from 'vitest';
import { byFamily, DnsCache, MIN_REFRESH_MS, type Answer, type DnsName, type ResolvedAddress } from './dns';

/** A clock and a timer queue the test moves by hand. */
class ManualTime {
  now = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  schedule = (ms: number, fn: () => void) => {
    const t = { at: this.now + ms, fn, live: true };
    this.timers.push(t);
    return () => void (t.live = false);
  };
  /** the delays of the live timers, from now */
  get pending(): number[] {
    return this.timers.filter((t) => t.live).map((t) => t.at - this.now).sort((a, b) => a - b);
  }
  async advance(ms: number): Promise<void> {
    const until = this.now + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.now = next.at;
      next.live = false;
      next.fn();
      await settle();
    }
    this.now = until;
  }
}

const settle = () => new Promise<void>((r) => setImmediate(r));
const v4 = (...a: string[]): ResolvedAddress[] => a.map((address) => ({ address, family: 4 }));
const name = (host: string, over: Partial<DnsName> = {}): DnsName => ({ host, refreshMs: 30_000, failureRefreshMs: 2000, respectTtl: false, ...over });
const fail = (code: string) => Object.assign(new Error(code), { code });

/** A resolver answering from a table the test edits; counts lookups. */
function resolver() {
  const table = new Map<string, Answer | Error>();
  const asked: string[] = [];
  const resolve = async (host: string): Promise<Answer> => {
    asked.push(host);
    const a = table.get(host);
    if (!a) throw fail('ENOTFOUND');
    if (a instanceof Error) throw a;
    return a;
  };
  return { table, asked, resolve };
}

function setup() {
  const time = new ManualTime();
  const r = resolver();
  const cache = new DnsCache({ resolve: r.resolve, schedule: time.schedule, timeoutMs: 5000 });
  const changes: string[] = [];
  cache.on('change', (h: string) => changes.push(h));
  return { time, r, cache, changes };
}

describe('DnsCache', () => {
  it('resolves a wanted name at once, is pending until it answers, and tells of the change', async () => {
    const { r, cache, changes } = setup();
    r.table.set('api.example.com', { addresses: v4('10.0.0.1', '10.0.0.2') });
    cache.want([name('API.example.com')]);
    expect(cache.pending).toBe(true);
    expect(cache.addresses('api.example.com')).toBeUndefined();
    await settle();
    expect(cache.pending).toBe(false);
    expect(cache.addresses('api.example.com')).toEqual(v4('10.0.0.1', '10.0.0.2'));
    expect(changes).toEqual(['api.example.com']);
  });

  it('re-resolves at the refresh rate, and tells only of real changes', async () => {
    const { time, r, cache, changes } = setup();
    r.table.set('api.example.com', { addresses: v4('10.0.0.1') });
    cache.want([name('api.example.com')]);
    await settle();
    expect(time.pending).toEqual([30_000]);
    await time.advance(30_000);
    expect(r.asked).toHaveLength(2);
    expect(changes).toHaveLength(1);
    r.table.set('api.example.com', { addresses: v4('10.0.0.9') });
    await time.advance(29_999);
    expect(cache.addresses('api.example.com')).toEqual(v4('10.0.0.1'));
    await time.advance(1);
    expect(cache.addresses('api.example.com')).toEqual(v4('10.0.0.9'));
    expect(changes).toHaveLength(2);
  });

  it('respects a TTL, bounded by a second below and the refresh rate above', async () => {
    const { time, r, cache } = setup();
    r.table.set('short.example.com', { addresses: v4('10.0.0.1'), ttlMs: 5000 });
    r.table.set('zero.example.com', { addresses: v4('10.0.0.2'), ttlMs: 0 });
    r.table.set('long.example.com', { addresses: v4('10.0.0.3'), ttlMs: 3_600_000 });
    r.table.set('ignored.example.com', { addresses: v4('10.0.0.4'), ttlMs: 5000 });
    const ttl = { respectTtl: true };
    cache.want([name('short.example.com', ttl), name('zero.example.com', ttl), name('long.example.com', ttl), name('ignored.example.com')]);
    await settle();
    expect(time.pending).toEqual([MIN_REFRESH_MS, 5000, 30_000, 30_000]);
  });

  it('keeps the last good answer when the resolver fails, and asks again at the failure rate', async () => {
    const { time, r, cache, changes } = setup();
    r.table.set('api.example.com', { addresses: v4('10.0.0.1') });
    cache.want([name('api.example.com')]);
    await settle();
    r.table.set('api.example.com', fail('ETIMEOUT'));
    await time.advance(30_000);
    expect(cache.addresses('api.example.com')).toEqual(v4('10.0.0.1'));
    expect(time.pending).toEqual([2000]);
    r.table.set('api.example.com', { addresses: v4('10.0.0.5') });
    await time.advance(2000);
    expect(cache.addresses('api.example.com')).toEqual(v4('10.0.0.5'));
    expect(changes).toHaveLength(2);
  });

  it('a lookup that never returns times out as a failure', async () => {
    const time = new ManualTime();
    const cache = new DnsCache({ resolve: () => new Promise<Answer>(() => undefined), schedule: time.schedule, timeoutMs: 5000 });
    cache.want([name('slow.example.com')]);
    await time.advance(5000);
    expect(cache.pending).toBe(false);
    expect(cache.addresses('slow.example.com')).toEqual([]);
    expect(time.pending).toEqual([2000]);
  });

  it('a name that no longer exists has no addresses', async () => {
    const { time, r, cache } = setup();
    r.table.set('gone.example.com', { addresses: v4('10.0.0.1') });
    cache.want([name('gone.example.com')]);
    await settle();
    r.table.delete('gone.example.com');
    await time.advance(30_000);
    expect(cache.addresses('gone.example.com')).toEqual([]);
  });

  it('drops names no longer wanted (a late answer is ignored), and takes the most demanding settings of a shared name', async () => {
    const { time, r, cache } = setup();
    r.table.set('a.example.com', { addresses: v4('10.0.0.1') });
    cache.want([name('a.example.com', { refreshMs: 60_000 }), name('a.example.com', { refreshMs: 10_000 }), name('10.9.9.9')]);
    await settle();
    expect(time.pending).toEqual([10_000]);
    expect(cache.addresses('10.9.9.9')).toEqual(v4('10.9.9.9'));
    cache.want([]);
    expect(cache.addresses('a.example.com')).toBeUndefined();
    expect(time.pending).toEqual([]);
    await time.advance(60_000);
    expect(r.asked).toEqual(['a.example.com']);
  });

  it('applies the lookup family as Envoy does', () => {
    const both: ResolvedAddress[] = [{ address: '::1', family: 6 }, ...v4('127.0.0.1')];
    expect(byFamily(both, 'V4_ONLY').map((a) => a.address)).toEqual(['127.0.0.1']);
    expect(byFamily(both, 'V6_ONLY').map((a) => a.address)).toEqual(['::1']);
    expect(byFamily(both, 'V4_PREFERRED').map((a) => a.address)).toEqual(['127.0.0.1']);
    expect(byFamily([{ address: '::1', family: 6 }], 'V4_PREFERRED').map((a) => a.address)).toEqual(['::1']);
    expect(byFamily(both, 'AUTO').map((a) => a.address)).toEqual(['::1']);
    expect(byFamily(both, 'ALL')).toEqual(both);
  });
});
