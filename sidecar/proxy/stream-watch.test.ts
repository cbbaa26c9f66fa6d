import { describe, expect, it } from 'vitest';
import { StreamWatch } from './stream-watch';
import type { ProxyError } from './errors';

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('StreamWatch', () => {
  it('a request on which nothing moves is aborted at the stream idle timeout with 408 SI; one that moves is not', () => {
    const c = clock();
    const w = new StreamWatch({ streamIdleTimeoutMs: 1000, requestTimeoutMs: 0 }, c.now);
    const fired: ProxyError[] = [];
    const quiet = w.add((e) => fired.push(e), true);
    const busy = w.add(() => fired.push(new Error('busy aborted') as ProxyError), true);
    for (let t = 0; t < 5; t++) {
      c.advance(300);
      w.sweep();
      busy.touch();
    }
    expect(fired.map((e) => [e.status, e.flag])).toEqual([[408, 'SI']]);
    quiet.done();
    busy.done();
    expect(w.size).toBe(0);
  });

  it('a body that trickles in forever is aborted at the request timeout (408), unless it ended in time', () => {
    const c = clock();
    const w = new StreamWatch({ streamIdleTimeoutMs: 1000, requestTimeoutMs: 3000 }, c.now);
    const fired: string[] = [];
    const slow = w.add((e) => fired.push(`slow ${e.status} ${e.code}`), false);
    const ended = w.add((e) => fired.push(`ended ${e.status} ${e.code}`), false);
    for (let t = 0; t < 12; t++) {
      c.advance(500);
      w.sweep();
      slow.touch();
      ended.touch();
      if (t === 2) ended.requestDone();
    }
    expect(fired).toEqual(['slow 408 REQUEST_TIMEOUT']);
    ended.done();
  });

  it('a request done before its timeout is never aborted, and with no timeouts nothing is watched', () => {
    const c = clock();
    const w = new StreamWatch({ streamIdleTimeoutMs: 1000, requestTimeoutMs: 0 }, c.now);
    let fired = 0;
    w.add(() => fired++, true).done();
    c.advance(5000);
    w.sweep();
    expect(fired).toBe(0);
    const none = new StreamWatch({ streamIdleTimeoutMs: 0, requestTimeoutMs: 0 }, c.now);
    none.add(() => fired++, false);
    expect(none.size).toBe(0);
  });

  it('keeps exactly the requests in flight, whatever order they end in, and a sweep that aborts some walks all the others', () => {
    const c = clock();
    const w = new StreamWatch({ streamIdleTimeoutMs: 1000, requestTimeoutMs: 0 }, c.now);
    const fired: number[] = [];
    const ws = Array.from({ length: 8 }, (_, i) => w.add(() => fired.push(i), true));
    // the first, a middle one, the last, and one twice
    ws[0].done();
    ws[4].done();
    ws[7].done();
    ws[4].done();
    expect(w.size).toBe(5);
    c.advance(600);
    w.sweep();
    ws[2].touch();
    ws[5].touch();
    c.advance(600);
    w.sweep();
    // 1, 3 and 6 went quiet (aborted in the order they came); 2 and 5 moved since the last sweep
    expect(fired).toEqual([1, 3, 6]);
    expect(w.size).toBe(2);
    ws[1].done();
    expect(w.size).toBe(2);
    c.advance(1000);
    w.sweep();
    expect(fired).toEqual([1, 3, 6, 2, 5]);
    expect(w.size).toBe(0);
    // and it takes new ones after being emptied
    w.add(() => fired.push(9), true);
    expect(w.size).toBe(1);
    c.advance(1000);
    w.sweep();
    expect(fired.at(-1)).toBe(9);
  });
});
