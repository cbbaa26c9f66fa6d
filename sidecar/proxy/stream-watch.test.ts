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
});
