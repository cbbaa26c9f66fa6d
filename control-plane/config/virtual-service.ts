// VirtualService: spec.hosts and spec.http[] routes.

import type {
  HTTPFaultInjection,
  HTTPRetry,
  HTTPRewrite,
  HTTPRoute,
  HTTPRouteDestination,
  SplitKey,
  VirtualService,
} from '../model/types';
import { compileRe2 } from '../../common/re2';
import { cookieName, destination, headerName, headers, host, percent, regex, type Ctx } from './common';
import { matchRequest } from './http-match';
import { bool, defined, duration, fields, int, keyPath, list, nonEmpty, Node, str, type Fields, type Read } from './reader';
import { corsPolicy, directResponse, prefixRewriteMatches, redirect, routeKind } from './route-actions';

export const SPLIT_KEY_ANNOTATION = 'tandem.io/split-key';

// Envoy's retry_on conditions (HTTP and gRPC); Istio also accepts bare status codes.
const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited',
  'retriable-4xx', 'refused-stream', 'retriable-status-codes', 'retriable-headers',
  'http3-post-connect-failure', 'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted',
  'unavailable',
]);

const retryOn: Read<string> = (n) => {
  const parts = str(n).split(',').map((p) => p.trim());
  for (const p of parts) {
    if (!RETRY_ON.has(p) && !/^[1-5]\d\d$/.test(p)) n.fail(`unknown retry condition ${JSON.stringify(p)}`);
  }
  return parts.join(',');
};

const retries: Read<HTTPRetry> = (n) => {
  const f = fields(n, ['attempts', 'perTryTimeout', 'retryOn', 'retryRemoteLocalities']);
  // one locality in a Tandem mesh: retrying in another one changes nothing
  f.opt('retryRemoteLocalities', bool);
  return defined({
    attempts: f.req('attempts', int(0)),
    perTryTimeoutMs: f.opt('perTryTimeout', duration({ positive: true })),
    retryOn: f.opt('retryOn', retryOn),
  });
};

// gRPC status names as Istio writes them in fault.abort.grpcStatus
const GRPC_STATUS: Record<string, number> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

const grpcStatus: Read<number> = (n) => {
  const s = str(n).toUpperCase();
  return Object.hasOwn(GRPC_STATUS, s) ? GRPC_STATUS[s] : n.fail(`unknown gRPC status ${JSON.stringify(n.value)} (e.g. UNAVAILABLE)`);
};

/**
 * `percentage: {value}` or, deprecated, `percent` (an integer; delays only). Without either,
 * no request is faulted, as istio/api documents ("If left unspecified, no request will be
 * delayed/aborted") and Istio translates (route.go TranslateFault: a delay gets
 * translateIntegerToFractionalPercent(0), an abort no percentage, which Envoy reads as 0%).
 */
function share(g: Fields): number {
  if (g.has('percentage') && g.has('percent')) g.node.fail('has both percentage and the deprecated percent; keep percentage');
  return g.opt('percentage', percent) ?? g.opt('percent', int(0, 100)) ?? 0;
}

const fault: Read<HTTPFaultInjection> = (n) => {
  const f = fields(n, ['delay', 'abort']);
  if (!f.has('delay') && !f.has('abort')) n.fail('must have a delay, an abort or both');
  return defined({
    delay: f.opt('delay', (d) => {
      const g = fields(d, ['fixedDelay', 'percentage', 'percent', 'exponentialDelay']);
      if (g.has('exponentialDelay')) d.at('exponentialDelay').fail('not supported by Tandem (nor by Istio): use fixedDelay');
      return { fixedDelayMs: g.req('fixedDelay', duration()), percentage: share(g) };
    }),
    abort: f.opt('abort', (a) => {
      const g = fields(a, ['httpStatus', 'grpcStatus', 'http2Error', 'percentage']);
      if (g.has('http2Error')) a.at('http2Error').fail('not supported by Tandem (nor by Istio): use httpStatus or grpcStatus');
      if (g.has('httpStatus') === g.has('grpcStatus')) a.fail('must have exactly one of httpStatus, grpcStatus');
      return defined({ httpStatus: g.opt('httpStatus', int(200, 599)), grpcStatus: g.opt('grpcStatus', grpcStatus), percentage: share(g) });
    }),
  });
};

const uriRegexRewrite: Read<NonNullable<HTTPRewrite['uriRegexRewrite']>> = (n) => {
  const f = fields(n, ['match', 'rewrite']);
  const match = f.req('match', regex);
  const rewrite = f.req('rewrite', nonEmpty);
  try {
    compileRe2(match).substitution(rewrite);
  } catch (e) {
    n.at('rewrite').fail((e as Error).message);
  }
  return { match, rewrite };
};

const rewrite: Read<HTTPRewrite> = (n) => {
  const f = fields(n, ['uri', 'authority', 'uriRegexRewrite']);
  if (!f.has('uri') && !f.has('authority') && !f.has('uriRegexRewrite')) n.fail('must have at least one of uri, uriRegexRewrite, authority');
  if (f.has('uri') && f.has('uriRegexRewrite')) n.fail('may only contain one of uri, uriRegexRewrite (as in Istio)');
  return defined({
    uri: f.opt('uri', nonEmpty),
    authority: f.opt('authority', nonEmpty),
    uriRegexRewrite: f.opt('uriRegexRewrite', uriRegexRewrite),
  });
};

// Envoy sums weighted clusters' weights in a uint32
const MAX_TOTAL_WEIGHT = 2 ** 32 - 1;

/**
 * Weights are relative, as in Istio: each destination gets weight/total of the requests,
 * whatever the total; an omitted weight is 0. A lone destination takes everything, whatever
 * its weight says; several must not all be 0.
 */
function weighted(routeNode: Node, raw: (Omit<HTTPRouteDestination, 'weight'> & { weight?: number })[]): HTTPRouteDestination[] {
  if (raw.length === 1) return [{ ...raw[0], weight: 100 }];
  const out = raw.map((r) => ({ ...r, weight: r.weight ?? 0 }));
  const sum = out.reduce((s, r) => s + r.weight, 0);
  if (sum === 0) routeNode.fail('the destinations\' weights are all 0 (or omitted): nothing would be routed');
  if (sum > MAX_TOTAL_WEIGHT) routeNode.fail(`the weights add up to ${sum}, more than ${MAX_TOTAL_WEIGHT}`);
  return out;
}

/**
 * The namespace defaults to the delegating VirtualService's (config/delegate.ts fills it in).
 * Names are not checked further, as in Istio: one that names no VirtualService is refused
 * once every document has been read.
 */
const delegateRef: Read<NonNullable<HTTPRoute['delegate']>> = (n) => {
  const f = fields(n, ['name', 'namespace']);
  return defined({ name: f.req('name', nonEmpty), namespace: f.opt('namespace', nonEmpty) });
};

const httpRoute =
  (ctx: Ctx, isDelegate: boolean): Read<HTTPRoute> =>
  (n) => {
    const f = fields(n, [
      'name', 'match', 'route', 'timeout', 'retries', 'mirror', 'mirrorPercentage', 'mirrorPercent', 'mirrors', 'fault', 'headers', 'rewrite',
      'redirect', 'directResponse', 'corsPolicy', 'delegate',
    ]);
    const kind = routeKind(n, f);
    const routeDestination: Read<Omit<HTTPRouteDestination, 'weight'> & { weight?: number }> = (r) => {
      const g = fields(r, ['destination', 'weight', 'headers']);
      return defined({
        destination: g.req('destination', destination(ctx)),
        weight: g.opt('weight', int(0, 2 ** 31 - 1)),
        headers: g.opt('headers', headers),
      });
    };
    // Istio: a route delegates instead of routing; the delegate's routes are merged in (config/delegate.ts)
    const delegate = f.opt('delegate', (d) => {
      if (isDelegate) d.fail('a delegate VirtualService (one without hosts) cannot delegate again: Istio supports one level of delegation');
      return delegateRef(d);
    });
    const mirror = f.opt('mirror', destination(ctx));
    if (!mirror && f.has('mirrorPercentage')) n.at('mirrorPercentage').fail('is only valid together with mirror');
    if (!mirror && f.has('mirrorPercent')) n.at('mirrorPercent').fail('is only valid together with mirror');
    if (f.has('mirrorPercentage') && f.has('mirrorPercent')) n.at('mirrorPercent').fail('has both mirrorPercentage and the deprecated mirrorPercent; keep mirrorPercentage');
    if (mirror && f.has('mirrors')) n.at('mirrors').fail('cannot be used together with mirror (Istio: one or the other)');
    const mirrors = mirror
      ? [{ destination: mirror, percentage: f.opt('mirrorPercentage', percent) ?? f.opt('mirrorPercent', int(0, 100)) ?? 100, field: 'mirror' }]
      : (f.opt(
          'mirrors',
          list((m) => {
            const g = fields(m, ['destination', 'percentage']);
            return { destination: g.req('destination', destination(ctx)), percentage: g.opt('percentage', percent) ?? 100, field: '' };
          }),
        ) ?? []).map((m, j) => ({ ...m, field: `mirrors[${j}].destination` }));
    const routeHeaders = f.opt('headers', headers);
    const routeRewrite = f.opt('rewrite', rewrite);
    // Istio: the authority is rewritten in one place only
    const authoritySetters = [
      routeRewrite?.authority !== undefined ? 'rewrite.authority' : '',
      Object.hasOwn(routeHeaders?.request?.set ?? {}, 'host') ? 'headers.request.set.host' : '',
      Object.hasOwn(routeHeaders?.request?.add ?? {}, 'host') ? 'headers.request.add.host' : '',
    ].filter(Boolean);
    if (authoritySetters.length > 1) n.fail(`sets the authority twice (${authoritySetters.join(', ')}); Istio allows one`);
    const out = defined({
      name: f.opt('name', str),
      match: f.opt('match', list(matchRequest)) ?? [],
      route: kind === 'route' ? weighted(n.at('route'), f.req('route', list(routeDestination, { nonEmpty: true }))) : [],
      delegate,
      redirect: kind === 'redirect' ? f.req('redirect', redirect) : undefined,
      directResponse: kind === 'directResponse' ? f.req('directResponse', directResponse) : undefined,
      corsPolicy: f.opt('corsPolicy', corsPolicy),
      timeoutMs: f.opt('timeout', duration()),
      retries: f.opt('retries', retries),
      mirrors,
      fault: f.opt('fault', fault),
      headers: routeHeaders,
      rewrite: routeRewrite,
    });
    if (out.redirect) prefixRewriteMatches(n.at('redirect'), out.redirect, out.match);
    return out;
  };

/** tandem.io/split-key: "header:NAME" or "cookie:NAME". */
function splitKey(annotations: Record<string, string>): SplitKey | undefined {
  const value = annotations[SPLIT_KEY_ANNOTATION];
  if (value === undefined) return undefined;
  const n = new Node(value, keyPath('metadata.annotations', SPLIT_KEY_ANNOTATION));
  const m = /^(header|cookie):(.+)$/.exec(value);
  if (!m) return n.fail(`must be "header:NAME" or "cookie:NAME", got ${JSON.stringify(value)}`);
  const kind = m[1] as SplitKey['kind'];
  return { kind, name: kind === 'header' ? headerName(m[2], n) : cookieName(m[2], n) };
}

/** Istio's host.Name.Matches: equal, or one wildcard covers the other. */
function overlaps(a: string, b: string): boolean {
  const covers = (w: string, h: string) => w === '*' || (w.startsWith('*.') && h.endsWith(w.slice(1)));
  return a === b || covers(a, b) || covers(b, a);
}

const vsHosts =
  (ctx: Ctx): Read<string[]> =>
  (n) => {
    const hosts = list(host(ctx, { wildcard: true }))(n);
    hosts.forEach((h, j) => {
      const i = hosts.findIndex((o, k) => k < j && overlaps(o, h));
      if (i >= 0) n.at(j).fail(`${JSON.stringify(h)} overlaps hosts[${i}] ${JSON.stringify(hosts[i])} (Istio refuses duplicate hosts in one VirtualService)`);
    });
    return hosts;
  };

export function virtualService(
  spec: Node,
  ctx: Ctx,
  annotations: Record<string, string>,
): Omit<VirtualService, 'name' | 'namespace' | 'source'> {
  const f = fields(spec, ['hosts', 'http', 'gateways', 'exportTo', 'tcp', 'tls']);
  const hosts = f.opt('hosts', vsHosts(ctx));
  // without hosts, a VirtualService is a delegate: only other VirtualServices' routes reach it
  // (Istio); hosts that could not be read make none
  const isDelegate = hosts ? hosts.length === 0 : !f.has('hosts');
  if (isDelegate && f.has('gateways')) spec.at('gateways').fail('a delegate VirtualService (one without hosts) must have no gateways (Istio)');
  // Operators bring VirtualServices written for Istio: `gateways: [mesh]` means what
  // Tandem does anyway; gateways themselves are not part of Tandem, so any other is refused.
  f.opt('gateways', list((g) => (str(g) === 'mesh' ? 'mesh' : g.fail('only "mesh" is supported: gateways are not supported by Tandem'))));
  for (const l4 of ['tcp', 'tls']) f.opt(l4, (n) => n.fail(`${l4} routes are not supported by Tandem (it proxies HTTP, HTTP/2 and gRPC only)`));
  f.opt('exportTo', list(str)); // visibility scoping: everything is visible mesh-wide in Tandem
  return defined({
    hosts: hosts ?? [],
    http: f.opt('http', list(httpRoute(ctx, isDelegate))) ?? [],
    splitKey: splitKey(annotations),
  });
}
