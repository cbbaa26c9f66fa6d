import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { retryLayer, retriableError, retriableStatus, RetryBudgets } from './retry';
import { ConnectFailureError, PerTryTimeoutError, UpstreamResetError } from '../errors';
import type { Exchange, Handler } from '../exchange';
import type { UpstreamResponse } from '../dispatch';
import type { RetryOn, RetryPolicyModel } from '../../../proto/decode/model';
import { RequestBody } from '../body';
import { Cancel } from '../cancel';

const policy = (on: RetryOn[], o: Partial<RetryPolicyModel> = {}): RetryPolicyModel => ({
  retryOn: new Set(on),
  numRetries: 2,
  perTryTimeoutMs: 0,
  retriableStatusCodes: [],
  backoff: { baseMs: 1, maxMs: 2 },
  ...o,
});

const response = (status: number, headers: Record<string, string> = {}): UpstreamResponse => ({
  status,
  headers,
  body: new PassThrough(),
  trailers: Promise.resolve(undefined),
});

function exchange(p: RetryPolicyModel | undefined, body: RequestBody | null = null): Exchange {
  const ctl = new Cancel();
  return {
    info: {} as Exchange['info'],
    conn: { mtls: true },
    started: Date.now(),
    rt: {} as Exchange['rt'],
    request: { method: 'POST', path: '/', authority: 'a', headers: {} },
    body,
    signal: ctl,
    abort: (r) => ctl.abort(r),
    attempt: 1,
    route: { model: { retry: p } } as unknown as Exchange['route'],
    cluster: { endpoints: [], stats: { active: 0 }, model: { limits: {} } } as unknown as Exchange['cluster'],
    responseOps: [],
    facts: { route: null, cluster: 'c', host: null, flags: [], attempts: 0 },
    cleanup: [],
  };
}

/** a terminal that answers each attempt from a script, recording the attempt-count header */
function scripted(outcomes: (number | Error)[]) {
  const seen: string[] = [];
  const h: Handler = async (x) => {
    seen.push(String(x.request.headers['x-envoy-attempt-count']));
    const o = outcomes[seen.length - 1] ?? 200;
    if (o instanceof Error) throw o;
    return response(o);
  };
  return { h, seen };
}

const run = (p: RetryPolicyModel | undefined, outcomes: (number | Error)[], budgets = new RetryBudgets(), body: RequestBody | null = null) => {
  const s = scripted(outcomes);
  return { s, result: retryLayer(budgets, () => 1)(s.h)(exchange(p, body)) };
};

describe('retry conditions', () => {
  it('reads statuses as Envoy does', () => {
    expect(retriableStatus(policy(['5xx']), 500, {})).toBe(true);
    expect(retriableStatus(policy(['gateway-error']), 500, {})).toBe(false);
    expect(retriableStatus(policy(['gateway-error']), 503, {})).toBe(true);
    expect(retriableStatus(policy(['retriable-4xx']), 409, {})).toBe(true);
    expect(retriableStatus(policy(['retriable-status-codes'], { retriableStatusCodes: [418] }), 418, {})).toBe(true);
    expect(retriableStatus(policy(['unavailable']), 200, { 'grpc-status': '14' })).toBe(true);
    expect(retriableStatus(policy(['unavailable']), 200, { 'grpc-status': '13' })).toBe(false);
    expect(retriableStatus(policy(['connect-failure']), 503, {})).toBe(false);
  });

  it('reads failures as Envoy does', () => {
    expect(retriableError(policy(['connect-failure']), new ConnectFailureError('x'))).toBe(true);
    expect(retriableError(policy(['reset']), new ConnectFailureError('x'))).toBe(false);
    expect(retriableError(policy(['reset']), new UpstreamResetError('x'))).toBe(true);
    expect(retriableError(policy(['connect-failure']), new UpstreamResetError('x'))).toBe(false);
    expect(retriableError(policy(['5xx']), new PerTryTimeoutError('x'))).toBe(true);
  });
});

describe('the retry layer', () => {
  it('retries a retriable answer and counts attempts upstream', async () => {
    const { s, result } = run(policy(['5xx']), [503, 500, 200]);
    expect((await result).status).toBe(200);
    expect(s.seen).toEqual(['1', '2', '3']);
  });

  it('gives up after num_retries and hands back the last answer', async () => {
    const { s, result } = run(policy(['5xx'], { numRetries: 1 }), [503, 502, 200]);
    expect((await result).status).toBe(502);
    expect(s.seen).toHaveLength(2);
  });

  it('does not retry what the policy does not name', async () => {
    const { s, result } = run(policy(['connect-failure']), [503]);
    expect((await result).status).toBe(503);
    expect(s.seen).toHaveLength(1);
    const r2 = run(policy(['connect-failure']), [new UpstreamResetError('reset')]);
    await expect(r2.result).rejects.toBeInstanceOf(UpstreamResetError);
  });

  it('does nothing without a policy', async () => {
    const { s, result } = run(undefined, [503]);
    expect((await result).status).toBe(503);
    expect(s.seen).toEqual(['undefined']);
  });

  it('does not retry a body it can no longer replay', async () => {
    const src = new PassThrough();
    const body = new RequestBody(src, 4);
    const r = body.open();
    r.resume();
    src.end('more than four bytes');
    await new Promise((res) => r.once('end', res));
    const { s, result } = run(policy(['5xx']), [503, 200], new RetryBudgets(), body);
    expect((await result).status).toBe(503);
    expect(s.seen).toHaveLength(1);
  });

  it('holds retries in flight to the budget: 20% of active requests, at least 3', async () => {
    const budgets = new RetryBudgets();
    expect([1, 2, 3, 4].map(() => budgets.take('c', 0))).toEqual([true, true, true, false]);
    expect(budgets.take('c', 50)).toBe(true); // 20% of 50 = 10
    for (let i = 0; i < 6; i++) budgets.take('c', 50);
    expect(budgets.take('c', 50)).toBe(false);
    budgets.give('c');
    expect(budgets.take('c', 50)).toBe(true);
  });

  it('stops retrying once the budget is spent', async () => {
    const budgets = new RetryBudgets(20, 0);
    const { s, result } = run(policy(['5xx']), [503, 200], budgets);
    expect((await result).status).toBe(503);
    expect(s.seen).toHaveLength(1);
  });

  it('gives each attempt its per-try timeout, and retries it', async () => {
    let calls = 0;
    const h: Handler = (x) => {
      calls++;
      if (calls === 1) return new Promise((_, reject) => x.signal.on(() => reject(x.signal.reason)));
      return Promise.resolve(response(200));
    };
    const r = await retryLayer(new RetryBudgets(), () => 1)(h)(exchange(policy(['5xx'], { perTryTimeoutMs: 20 })));
    expect(r.status).toBe(200);
    expect(calls).toBe(2);
  });
});

describe("a cluster's own retry budget (DestinationRule retryBudget)", () => {
  it('replaces the default percent and minimum', () => {
    const budgets = new RetryBudgets();
    // default: at least 3 in flight
    for (let i = 0; i < 3; i++) expect(budgets.take('a', 0)).toBe(true);
    expect(budgets.take('a', 0)).toBe(false);
    // this cluster: at least 1, and 50% of 10 active requests
    const own = { percent: 50, minConcurrency: 1 };
    expect(budgets.take('b', 0, Infinity, own)).toBe(true);
    expect(budgets.take('b', 0, Infinity, own)).toBe(false);
    for (let i = 0; i < 4; i++) expect(budgets.take('b', 10, Infinity, own)).toBe(true);
    expect(budgets.take('b', 10, Infinity, own)).toBe(false);
  });
});
