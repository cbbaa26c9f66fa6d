// Retry: the route's retry policy. Each attempt gets its own per-try timeout and a fresh
// copy of the body (bodies past 64 KiB are not replayable, so not retried); attempts are
// spaced by fully jittered exponential backoff (25 ms base), counted in
// x-envoy-attempt-count, and held to a budget of 20% of the cluster's active requests
// (at least 3 retries in flight; a DestinationRule retryBudget sets both), so a failing
// upstream never sees a retry storm.
import type { IncomingHttpHeaders } from 'node:http';
import type { UpstreamResponse } from '../dispatch';
import {
  ConnectFailureError,
  PerTryTimeoutError,
  ProxyError,
  RefusedStreamError,
  ReusedConnectionResetError,
  UpstreamResetError,
} from '../errors';
import { sleep, type Exchange, type Layer } from '../exchange';
import type { RetryOn, RetryPolicyModel } from '../../../proto/decode/model';

/** Retries in flight per cluster, kept across config swaps (keyed by cluster name). */
export class RetryBudgets {
  private readonly active = new Map<string, number>();
  constructor(
    readonly percent = 20,
    readonly minConcurrency = 3,
  ) {}
  /**
   * true (and counted) if one more retry fits the cluster's budget (its own retry_budget,
   * else the default) and its max_retries circuit breaker
   */
  take(cluster: string, activeRequests: number, maxRetries = Infinity, budget?: { percent: number; minConcurrency: number }): boolean {
    const n = this.active.get(cluster) ?? 0;
    const { percent, minConcurrency } = budget ?? this;
    if (n >= Math.min(maxRetries, Math.max(minConcurrency, (activeRequests * percent) / 100))) return false;
    this.active.set(cluster, n + 1);
    return true;
  }
  give(cluster: string): void {
    const n = (this.active.get(cluster) ?? 1) - 1;
    if (n <= 0) this.active.delete(cluster);
    else this.active.set(cluster, n);
  }
}

const GRPC_CODES: Partial<Record<RetryOn, string>> = {
  cancelled: '1',
  'deadline-exceeded': '4',
  'resource-exhausted': '8',
  internal: '13',
  unavailable: '14',
};

export function retriableStatus(p: RetryPolicyModel, status: number, headers: IncomingHttpHeaders): boolean {
  const on = p.retryOn;
  if (on.has('5xx') && status >= 500) return true;
  if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
  if (on.has('retriable-4xx') && status === 409) return true;
  if (on.has('retriable-status-codes') && p.retriableStatusCodes.includes(status)) return true;
  // gRPC: a trailers-only answer carries its status in the headers
  const grpc = headers['grpc-status'];
  if (typeof grpc === 'string') for (const [cond, code] of Object.entries(GRPC_CODES)) if (on.has(cond as RetryOn) && grpc === code) return true;
  return false;
}

export function retriableError(p: RetryPolicyModel, err: unknown): boolean {
  const on = p.retryOn;
  if (err instanceof ReusedConnectionResetError || err instanceof RefusedStreamError) return on.has('refused-stream') || on.has('reset') || on.has('reset-before-request') || on.has('5xx') || on.has('gateway-error') || on.has('connect-failure');
  if (err instanceof ConnectFailureError) return on.has('connect-failure') || on.has('5xx') || on.has('gateway-error') || on.has('reset-before-request');
  if (err instanceof UpstreamResetError) return on.has('reset') || on.has('5xx') || on.has('gateway-error');
  if (err instanceof PerTryTimeoutError) return on.has('5xx') || on.has('gateway-error') || on.has('reset');
  return false;
}

function attemptOf(x: Exchange, attempt: number, perTryMs: number): { ax: Exchange; done(): void } {
  if (perTryMs <= 0 && attempt === 1) return { ax: x, done: () => undefined };
  const { cancel, detach } = x.signal.child();
  const t = perTryMs > 0 ? setTimeout(() => cancel.abort(new PerTryTimeoutError(`upstream per-try timeout after ${perTryMs}ms`)), perTryMs) : undefined;
  const ax: Exchange = { ...x, attempt, signal: cancel, request: { ...x.request, headers: { ...x.request.headers } } };
  return {
    ax,
    done: () => {
      clearTimeout(t);
      detach();
    },
  };
}

export function retryLayer(budgets: RetryBudgets, random: () => number): Layer {
  return (next) => async (x) => {
    const p = x.route?.model.retry;
    if (!p) return next(x);
    const cluster = x.facts.cluster ?? '';
    // a retry holds its budget from the decision to retry until its attempt is over
    let holding = false;
    const release = () => {
      if (holding) budgets.give(cluster);
      holding = false;
    };
    try {
      for (let attempt = 1; ; attempt++) {
        const { ax, done } = attemptOf(x, attempt, p.perTryTimeoutMs);
        ax.request.headers['x-envoy-attempt-count'] = String(attempt);
        x.facts.attempts = attempt;
        let outcome: { r: UpstreamResponse } | { err: unknown };
        try {
          outcome = { r: await next(ax) };
        } catch (err) {
          outcome = { err: ax.signal.aborted && !x.signal.aborted ? ax.signal.reason : err };
        } finally {
          done();
          x.endpoint = ax.endpoint;
          release();
        }
        if (x.signal.aborted) {
          if ('r' in outcome) outcome.r.body.destroy();
          throw x.signal.reason;
        }
        const again =
          attempt <= p.numRetries &&
          (!x.body || x.body.replayable) &&
          ('r' in outcome ? retriableStatus(p, outcome.r.status, outcome.r.headers) : retriableError(p, outcome.err));
        if (!again || !budgets.take(cluster, activeRequests(x), x.cluster?.model.limits.maxRetries, x.cluster?.model.limits.retryBudget)) {
          if ('r' in outcome) return outcome.r;
          throw outcome.err instanceof ProxyError ? outcome.err : new UpstreamResetError(String(outcome.err), { cause: outcome.err });
        }
        holding = true;
        if ('r' in outcome) outcome.r.body.destroy();
        // fully jittered exponential backoff
        await sleep(x, Math.floor(random() * Math.min(p.backoff.maxMs, p.backoff.baseMs * 2 ** (attempt - 1))));
      }
    } finally {
      release();
    }
  };
}

// what the cluster's endpoints have in flight (the pool layer counts only clusters with limits)
function activeRequests(x: Exchange): number {
  let n = 0;
  for (const e of x.cluster?.endpoints ?? []) n += e.stats.activeRequests;
  return n;
}
