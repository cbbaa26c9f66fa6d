// Cancellation for one exchange: who to tell when the client goes away or a timeout
// fires. A plain list of callbacks, because an AbortController and its EventTarget cost
// several microseconds and allocations per request on the hot path, for the same job.
import type { ProxyError } from './errors';

const noop = () => undefined;

export class Cancel {
  aborted = false;
  reason?: ProxyError;
  private fns: (() => void)[] | undefined;

  abort(reason: ProxyError): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const fns = this.fns;
    this.fns = undefined;
    if (fns) for (const f of fns) f();
  }

  /** Runs `fn` on abort (at once if already aborted); the result unsubscribes it. */
  on(fn: () => void): () => void {
    if (this.aborted) {
      fn();
      return noop;
    }
    (this.fns ??= []).push(fn);
    return () => {
      const i = this.fns?.indexOf(fn) ?? -1;
      if (i >= 0) this.fns!.splice(i, 1);
    };
  }

  /** A cancel that fires with this one, or on its own; `detach` when it is done. */
  child(): { cancel: Cancel; detach(): void } {
    const c = new Cancel();
    const detach = this.on(() => c.abort(this.reason!));
    return { cancel: c, detach };
  }
}
