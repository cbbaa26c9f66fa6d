// Cluster policies Envoy carries on a Cluster (circuit_breakers, outlier_detection) and
// on a route (hash_policy for ring hash / Maglev): typed, checked, and a DecodeError
// naming the field for anything the sidecar does not implement.
import { DecodeError } from './decode-error';
import type { HashPolicyModel, OutlierModel, PoolLimits } from './model';

interface U32 {
  value?: number;
}
interface Duration {
  seconds?: number;
  nanos?: number;
}
interface ThresholdsPb {
  priority?: string;
  max_connections?: U32;
  max_pending_requests?: U32;
  max_requests?: U32;
  max_retries?: U32;
  retry_budget?: { budget_percent?: { value?: number }; min_retry_concurrency?: U32; [other: string]: unknown };
  [other: string]: unknown;
}
interface OutlierPb {
  consecutive_5xx?: U32;
  consecutive_gateway_failure?: U32;
  enforcing_consecutive_5xx?: U32;
  enforcing_consecutive_gateway_failure?: U32;
  interval?: Duration;
  base_ejection_time?: Duration;
  max_ejection_percent?: U32;
  enforcing_success_rate?: U32;
  split_external_local_origin_errors?: boolean;
  consecutive_local_origin_failure?: U32;
  enforcing_consecutive_local_origin_failure?: U32;
  enforcing_local_origin_success_rate?: U32;
  [other: string]: unknown;
}
interface HashPolicyPb {
  header?: { header_name?: string; [other: string]: unknown };
  cookie?: { name?: string; ttl?: Duration; path?: string; attributes?: { name?: string; value?: string }[]; [other: string]: unknown };
  connection_properties?: { source_ip?: boolean };
  query_parameter?: { name?: string };
  terminal?: boolean;
  [other: string]: unknown;
}

const COOKIE_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const ms = (d: Duration | undefined): number | undefined => (d ? Number(d.seconds ?? 0) * 1000 + Math.round(Number(d.nanos ?? 0) / 1e6) : undefined);

function only(o: object, allowed: string[], resource: string, at: string): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    if (!allowed.includes(k)) throw new DecodeError(resource, `${at}.${k}`, 'not supported by this sidecar');
  }
}

export function decodeCircuitBreakers(cb: { thresholds?: ThresholdsPb[]; [other: string]: unknown }, resource: string): PoolLimits {
  only(cb, ['thresholds'], resource, 'circuit_breakers');
  const list = cb.thresholds ?? [];
  const out: PoolLimits = {};
  list.forEach((t, i) => {
    const at = `circuit_breakers.thresholds[${i}]`;
    only(t, ['priority', 'max_connections', 'max_pending_requests', 'max_requests', 'max_retries', 'retry_budget'], resource, at);
    // one priority in a Tandem mesh: the HIGH thresholds never apply
    if ((t.priority ?? 'DEFAULT') !== 'DEFAULT') return;
    if (t.max_connections) out.maxConnections = t.max_connections.value ?? 0;
    if (t.max_pending_requests) out.maxPendingRequests = t.max_pending_requests.value ?? 0;
    if (t.max_requests) out.maxRequests = t.max_requests.value ?? 0;
    if (t.max_retries) out.maxRetries = t.max_retries.value ?? 0;
    if (t.retry_budget) {
      only(t.retry_budget, ['budget_percent', 'min_retry_concurrency'], resource, `${at}.retry_budget`);
      // Envoy's defaults: 20% of active requests, at least 3
      const percent = t.retry_budget.budget_percent?.value ?? 20;
      if (!(percent >= 0 && percent <= 100)) throw new DecodeError(resource, `${at}.retry_budget.budget_percent`, 'must be 0..100');
      out.retryBudget = { percent, minConcurrency: t.retry_budget.min_retry_concurrency?.value ?? 3 };
    }
  });
  return out;
}

export function decodeOutlierDetection(o: OutlierPb, resource: string): OutlierModel {
  const at = 'outlier_detection';
  only(o, ['consecutive_5xx', 'consecutive_gateway_failure', 'enforcing_consecutive_5xx', 'enforcing_consecutive_gateway_failure', 'interval', 'base_ejection_time', 'max_ejection_percent', 'enforcing_success_rate',
    'split_external_local_origin_errors', 'consecutive_local_origin_failure', 'enforcing_consecutive_local_origin_failure', 'enforcing_local_origin_success_rate'], resource, at);
  if ((o.enforcing_success_rate?.value ?? 0) !== 0) throw new DecodeError(resource, `${at}.enforcing_success_rate`, 'success-rate ejection is not supported; set it to 0');
  const split = o.split_external_local_origin_errors === true;
  // Envoy enforces local-origin success rate by default once errors are split: it must be turned off
  if (split && (o.enforcing_local_origin_success_rate?.value ?? 100) !== 0) throw new DecodeError(resource, `${at}.enforcing_local_origin_success_rate`, 'success-rate ejection is not supported; set it to 0');
  for (const k of ['enforcing_consecutive_5xx', 'enforcing_consecutive_gateway_failure', 'enforcing_consecutive_local_origin_failure'] as const) {
    const v = o[k]?.value;
    if (v !== undefined && v !== 0 && v !== 100) throw new DecodeError(resource, `${at}.${k}`, 'only 0 or 100 is supported');
  }
  const pct = o.max_ejection_percent?.value ?? 10;
  if (pct > 100) throw new DecodeError(resource, `${at}.max_ejection_percent`, 'must be 0..100');
  // Envoy's defaults: 5 consecutive 5xx enforced, gateway failures counted but not enforced
  return {
    consecutive5xx: (o.enforcing_consecutive_5xx?.value ?? 100) === 100 ? (o.consecutive_5xx?.value ?? 5) : 0,
    consecutiveGatewayFailure: (o.enforcing_consecutive_gateway_failure?.value ?? 0) === 100 ? (o.consecutive_gateway_failure?.value ?? 5) : 0,
    intervalMs: ms(o.interval) ?? 10_000,
    baseEjectionMs: ms(o.base_ejection_time) ?? 30_000,
    maxEjectionPercent: pct,
    // Envoy's defaults once split: 5 consecutive local-origin failures, enforced
    ...(split
      ? { splitLocalOrigin: true, consecutiveLocalOriginFailure: (o.enforcing_consecutive_local_origin_failure?.value ?? 100) === 100 ? (o.consecutive_local_origin_failure?.value ?? 5) : 0 }
      : {}),
  };
}

export function decodeHashPolicies(list: HashPolicyPb[], resource: string, at: string): HashPolicyModel[] {
  return list.map((h, i) => {
    const hat = `${at}.hash_policy[${i}]`;
    only(h, ['header', 'cookie', 'connection_properties', 'query_parameter', 'terminal'], resource, hat);
    const terminal = h.terminal === true;
    if (h.header) {
      only(h.header, ['header_name'], resource, `${hat}.header`);
      if (!h.header.header_name) throw new DecodeError(resource, `${hat}.header.header_name`, 'must be set');
      return { kind: 'header', name: h.header.header_name.toLowerCase(), terminal };
    }
    if (h.cookie) {
      only(h.cookie, ['name', 'ttl', 'path', 'attributes'], resource, `${hat}.cookie`);
      if (!h.cookie.name) throw new DecodeError(resource, `${hat}.cookie.name`, 'must be set');
      const attributes = (h.cookie.attributes ?? []).map((a, j) => {
        // each one becomes "; name=value" on the Set-Cookie the sidecar makes
        if (!a.name || !COOKIE_TOKEN.test(a.name)) throw new DecodeError(resource, `${hat}.cookie.attributes[${j}].name`, 'must be a cookie attribute name');
        if (/[;\r\n]/.test(a.value ?? '')) throw new DecodeError(resource, `${hat}.cookie.attributes[${j}].value`, 'must not contain ";" or a line break');
        return { name: a.name, value: a.value ?? '' };
      });
      return { kind: 'cookie', name: h.cookie.name, ttlMs: ms(h.cookie.ttl), path: h.cookie.path || undefined, ...(attributes.length ? { attributes } : {}), terminal };
    }
    if (h.connection_properties?.source_ip) return { kind: 'sourceIp', terminal };
    if (h.query_parameter) {
      if (!h.query_parameter.name) throw new DecodeError(resource, `${hat}.query_parameter.name`, 'must be set');
      return { kind: 'query', name: h.query_parameter.name, terminal };
    }
    throw new DecodeError(resource, hat, 'one of header, cookie, connection_properties.source_ip, query_parameter is required');
  });
}
