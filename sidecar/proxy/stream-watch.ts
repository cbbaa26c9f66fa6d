// Stream timeouts: a request on which no byte moves (stream idle), or whose body is not in
// within the request timeout, is aborted with a 408. One sweep per listener instead of a
// timer per request: marking progress is then one assignment, on the hot path, and the
// sweep walks only what is in flight, at a granularity well under the timeouts.
import { RequestTimeoutError, StreamIdleTimeoutError, type ProxyError } from './errors';

export interface StreamTimeouts {
  /** 0: none */
  streamIdleTimeoutMs: number;
  /** 0: none */
  requestTimeoutMs: number;
}

export interface Watched {
  /** a byte moved, one way or the other */
  touch(): void;
  /** the request is in whole (its body ended): only the idle timeout applies from here */
  requestDone(): void;
  /** the exchange is over */
  done(): void;
}

interface Entry {
  started: number;
  active: number;
  requestDone: boolean;
  abort: (e: ProxyError) => void;
}

const NONE: Watched = { touch() {}, requestDone() {}, done() {} };

export class StreamWatch {
  private readonly live = new Set<Entry>();
  private now: number;
  private timer?: NodeJS.Timeout;
  private readonly tickMs: number;

  constructor(
    private readonly t: StreamTimeouts,
    private readonly clock: () => number = Date.now,
  ) {
    this.now = clock();
    const shortest = Math.min(...[t.streamIdleTimeoutMs, t.requestTimeoutMs].filter((ms) => ms > 0));
    this.tickMs = Number.isFinite(shortest) ? Math.max(10, Math.min(1000, Math.floor(shortest / 4))) : 0;
  }

  /** `abort` is called at most once, with the timeout that fired. */
  add(abort: (e: ProxyError) => void, requestDone: boolean): Watched {
    if (!this.tickMs) return NONE;
    if (!this.timer) {
      this.now = this.clock();
      this.timer = setInterval(() => this.sweep(), this.tickMs);
      this.timer.unref();
    }
    const e: Entry = { started: this.now, active: this.now, requestDone, abort };
    this.live.add(e);
    return {
      // the sweep's clock: exact to a tick, and free to read
      touch: () => void (e.active = this.now),
      requestDone: () => void (e.requestDone = true),
      done: () => void this.live.delete(e),
    };
  }

  get size(): number {
    return this.live.size;
  }

  /** @internal public for tests, which drive the clock */
  sweep(): void {
    const now = (this.now = this.clock());
    const { streamIdleTimeoutMs: idle, requestTimeoutMs: whole } = this.t;
    for (const e of this.live) {
      let err: ProxyError | undefined;
      if (whole > 0 && !e.requestDone && now - e.started >= whole) err = new RequestTimeoutError(`the request was not received within ${whole} ms`);
      else if (idle > 0 && now - e.active >= idle) err = new StreamIdleTimeoutError(`no bytes moved on the request for ${idle} ms`);
      if (!err) continue;
      this.live.delete(e);
      e.abort(err);
    }
    if (!this.live.size && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
