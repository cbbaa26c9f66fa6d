// The per-route policies Envoy carries in a route: retry_policy (RouteAction) and the
// fault filter's per-route HTTPFault (typed_per_filter_config). Typed, checked, and
// a DecodeError naming the field for anything the sidecar does not implement.
import { decode as decodeMsg, type AnyMessage } from '../any';
import { TypeUrl, typeNameOf } from '../type-urls';
import { DecodeError } from './decode-error';
import type { FaultModel, RetryOn, RetryPolicyModel } from './model';

interface Duration {
  seconds?: number;
  nanos?: number;
}
interface FractionalPercent {
  numerator?: number;
  denominator?: 'HUNDRED' | 'TEN_THOUSAND' | 'MILLION';
}
interface RetryPolicyPb {
  retry_on?: string;
  num_retries?: { value?: number };
  per_try_timeout?: Duration;
  retriable_status_codes?: number[];
  retry_back_off?: { base_interval?: Duration; max_interval?: Duration };
  [other: string]: unknown;
}
interface HttpFaultPb {
  delay?: { fixed_delay?: Duration; percentage?: FractionalPercent; [other: string]: unknown };
  abort?: { http_status?: number; grpc_status?: number; percentage?: FractionalPercent; [other: string]: unknown };
  [other: string]: unknown;
}

export const RETRY_ON: readonly RetryOn[] = [
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
];
// Conditions that can never hold here (no rate limiter, no HTTP/3, no retriable_headers
// matchers): accepted, and they never trigger a retry, as in an Envoy with the same setup.
const NEVER: readonly string[] = ['envoy-ratelimited', 'http3-post-connect-failure', 'retriable-headers'];

const ms = (d: Duration | undefined): number => (d ? Number(d.seconds ?? 0) * 1000 + Math.round(Number(d.nanos ?? 0) / 1e6) : 0);

function only(o: object, allowed: string[], resource: string, at: string): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    if (!allowed.includes(k)) throw new DecodeError(resource, `${at}.${k}`, 'not supported by this sidecar');
  }
}

/**
 * A FractionalPercent as a fraction 0..1. Envoy's fault filter copies an unset percentage
 * as the message's default, numerator 0: a delay or abort without one faults nothing.
 */
export function fraction(p: FractionalPercent | undefined): number {
  if (!p) return 0;
  const denom = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 }[p.denominator ?? 'HUNDRED'];
  return Math.min(1, Number(p.numerator ?? 0) / denom);
}

export function decodeRetryPolicy(p: RetryPolicyPb, resource: string, at: string): RetryPolicyModel {
  only(p, ['retry_on', 'num_retries', 'per_try_timeout', 'retriable_status_codes', 'retry_back_off'], resource, at);
  const on = new Set<RetryOn>();
  for (const c of (p.retry_on ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (NEVER.includes(c)) continue;
    if (!(RETRY_ON as readonly string[]).includes(c)) throw new DecodeError(resource, `${at}.retry_on`, `${JSON.stringify(c)} is not supported`);
    on.add(c as RetryOn);
  }
  const codes = (p.retriable_status_codes ?? []).map(Number);
  for (const c of codes) if (!(c >= 100 && c < 600)) throw new DecodeError(resource, `${at}.retriable_status_codes`, `${c} is not an HTTP status`);
  const base = ms(p.retry_back_off?.base_interval) || 25;
  const max = ms(p.retry_back_off?.max_interval) || base * 10;
  if (max < base) throw new DecodeError(resource, `${at}.retry_back_off.max_interval`, 'must not be less than base_interval');
  return {
    retryOn: on,
    // Envoy: num_retries defaults to 1
    numRetries: p.num_retries?.value ?? 1,
    perTryTimeoutMs: ms(p.per_try_timeout),
    retriableStatusCodes: codes,
    backoff: { baseMs: base, maxMs: max },
  };
}

export function decodeFault(any: AnyMessage, resource: string, at: string): FaultModel | undefined {
  if (any.type_url !== TypeUrl.HTTPFault) throw new DecodeError(resource, `${at}.type_url`, 'must be HTTPFault');
  const f = decodeMsg<HttpFaultPb>(typeNameOf(any.type_url), any.value);
  only(f, ['delay', 'abort'], resource, at);
  const out: FaultModel = {};
  if (f.delay) {
    only(f.delay, ['fixed_delay', 'percentage'], resource, `${at}.delay`);
    out.delay = { ms: ms(f.delay.fixed_delay), fraction: fraction(f.delay.percentage) };
  }
  if (f.abort) {
    only(f.abort, ['http_status', 'grpc_status', 'percentage'], resource, `${at}.abort`);
    const a = f.abort;
    if (a.http_status === undefined && a.grpc_status === undefined) throw new DecodeError(resource, `${at}.abort`, 'http_status or grpc_status is required');
    if (a.http_status !== undefined && !(a.http_status >= 200 && a.http_status < 600)) throw new DecodeError(resource, `${at}.abort.http_status`, 'must be 200..599');
    out.abort = { httpStatus: a.http_status, grpcStatus: a.grpc_status, fraction: fraction(a.percentage) };
  }
  return out.delay || out.abort ? out : undefined;
}
