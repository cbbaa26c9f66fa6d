// Spans, outbound: a CLIENT span per upstream attempt, from the attempt's start to the
// end of its response body (or its failure). The first attempt's span id is the hop's,
// already on the wire; a retry is a new span, sibling of the first, whose id replaces it
// in the retry's headers, so each peer's parent is the attempt that reached it. Composed
// inside the retry layer, once per attempt; absent from the chain when spans are off.
import type { Attributes } from '@opentelemetry/api';
import type { Exchange, Layer } from '../exchange';
import { ProxyError } from '../errors';
import { withSpanId } from '../trace-context';
import { upstreamHttpVersion } from '../upstream-protocol';
import {
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_LOCAL_PRINCIPAL,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_PEER_PRINCIPAL,
  ATTR_ROUTE_NAME,
  ATTR_UPSTREAM_CLUSTER,
  ATTR_URL_FULL,
  authorityAttributes,
  methodAttributes,
  outcomeAttributes,
  urlAttributes,
  type Outcome,
  type Spans,
} from '../spans';

/** What a CLIENT span says about the request, whatever its outcome. */
export function clientRequestAttributes(x: Exchange, own: string | undefined): Attributes {
  const r = x.request;
  const a: Attributes = {
    ...methodAttributes(r.method),
    ...urlAttributes(r.path),
    [ATTR_URL_FULL]: `http://${r.authority}${r.path}`,
    ...authorityAttributes(r.authority),
  };
  if (x.cluster) {
    a[ATTR_UPSTREAM_CLUSTER] = x.cluster.model.name;
    a[ATTR_NETWORK_PROTOCOL_VERSION] = upstreamHttpVersion(x.cluster, x.info.protocol);
  } else if (x.facts.cluster) a[ATTR_UPSTREAM_CLUSTER] = x.facts.cluster;
  if (x.facts.route) a[ATTR_ROUTE_NAME] = x.facts.route;
  if (x.endpoint) {
    a[ATTR_NETWORK_PEER_ADDRESS] = x.endpoint.address;
    a[ATTR_NETWORK_PEER_PORT] = x.endpoint.port;
    if (x.cluster?.model.mesh && x.endpoint.identity) a[ATTR_PEER_PRINCIPAL] = x.endpoint.identity;
  }
  if (own) a[ATTR_LOCAL_PRINCIPAL] = own;
  if (x.attempt > 1) a[ATTR_HTTP_REQUEST_RESEND_COUNT] = x.attempt - 1;
  return a;
}

export function attemptSpanLayer(s: Spans): Layer {
  return (next) => async (x) => {
    const hop = x.facts.trace;
    if (!hop?.sampled) return next(x);
    const spanId = x.attempt > 1 ? s.ids.spanId() : hop.spanId;
    if (x.attempt > 1) withSpanId(x.request.headers, spanId);
    s.attempted.add(x.facts);
    const startMs = s.now();
    const finish = (o: Outcome) => {
      const { attributes, error } = outcomeAttributes('client', o);
      s.sink.record({
        kind: 'client',
        name: x.request.method,
        traceId: hop.traceId,
        spanId,
        parentSpanId: hop.parentSpanId,
        startMs,
        endMs: s.now(),
        attributes: { ...clientRequestAttributes(x, s.principal()), ...attributes },
        error,
      });
    };
    let r;
    try {
      r = await next(x);
    } catch (err) {
      const e = err instanceof ProxyError ? err : undefined;
      // the conventions' error.type for an exception is its type; ours have Envoy's flag
      const type = e?.flag ?? ((err instanceof Error && err.name) || '_OTHER');
      finish({ status: e?.status ?? 0, flags: e?.flag ?? '-', errorFlag: type, errorMessage: err instanceof Error ? err.message : String(err) });
      throw err;
    }
    const status = r.status;
    // the attempt is over when its response body is: read to its end (before the last
    // byte reaches the client, so a span never trails the answer), or cut, or thrown
    // away for a retry
    let over = false;
    const end = () => {
      if (over) return;
      over = true;
      finish({ status, flags: '-' });
    };
    r.body.once('end', end);
    r.body.once('close', end);
    return r;
  };
}
