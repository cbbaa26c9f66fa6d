// Spans, once a request is over (serve.ts tells every observer): inbound, the SERVER span
// of the hop, whose id is the one the application received as its parent and whose
// parent is the caller's attempt; outbound, a CLIENT span for a request no attempt went
// out for (no route, a fault, a redirect or direct response, no healthy upstream), so
// every sampled hop leaves a span. Unsampled hops record nothing.
import type { Attributes } from '@opentelemetry/api';
import type { Observation, Observer } from './observe-metrics';
import type { Spans } from './spans';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_LOCAL_PRINCIPAL,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_PEER_PRINCIPAL,
  ATTR_REQUEST_ID,
  ATTR_UPSTREAM_CLUSTER,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
  authorityAttributes,
  methodAttributes,
  outcomeAttributes,
  urlAttributes,
} from './spans';
import { clientRequestAttributes } from './layers/spans';

const VERSION: Record<string, string> = { 'HTTP/1.0': '1.0', 'HTTP/1.1': '1.1', 'HTTP/2': '2' };

/** What a SERVER span says about the request it received. */
export function serverRequestAttributes(o: Observation, own: string | undefined): Attributes {
  const info = o.info!;
  const a: Attributes = {
    ...methodAttributes(info.method),
    ...urlAttributes(info.path),
    [ATTR_URL_SCHEME]: 'http',
    ...authorityAttributes(info.authority),
    [ATTR_NETWORK_PROTOCOL_VERSION]: VERSION[info.protocol] ?? info.protocol,
    [ATTR_CLIENT_ADDRESS]: info.clientIp,
    [ATTR_NETWORK_PEER_ADDRESS]: info.clientIp,
    [ATTR_REQUEST_ID]: info.requestId,
  };
  const ua = info.header('user-agent');
  if (ua) a[ATTR_USER_AGENT_ORIGINAL] = ua;
  if (o.conn.peerPrincipal) a[ATTR_PEER_PRINCIPAL] = o.conn.peerPrincipal;
  if (own) a[ATTR_LOCAL_PRINCIPAL] = own;
  if (o.x?.facts.cluster) a[ATTR_UPSTREAM_CLUSTER] = o.x.facts.cluster;
  return a;
}

export function spansObserver(s: Spans): Observer {
  return (o) => {
    const x = o.x;
    const hop = x?.facts.trace;
    if (!x || !hop?.sampled || !o.info) return;
    if (o.direction === 'outbound' && s.attempted.has(x.facts)) return;
    const kind = o.direction === 'inbound' ? 'server' : 'client';
    const { attributes, error } = outcomeAttributes(kind, { status: o.status, flags: o.flags, errorFlag: o.error?.flag, errorMessage: o.error?.message });
    const endMs = s.now();
    s.sink.record({
      kind,
      name: o.info.method,
      traceId: hop.traceId,
      spanId: hop.spanId,
      parentSpanId: hop.parentSpanId,
      startMs: Math.min(x.started, endMs),
      endMs,
      attributes: { ...(kind === 'server' ? serverRequestAttributes(o, s.principal()) : clientRequestAttributes(x, s.principal())), ...attributes },
      error,
    });
  };
}
