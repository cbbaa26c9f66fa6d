// The request path, composed in one place. Outbound: the application's request is
// routed, maybe faulted, given CORS, answered by the route itself (redirect, direct
// response), or split, mirrored, timed, retried, balanced and dispatched to a
// peer sidecar (or a ServiceEntry endpoint); per attempt, the endpoint's outcome feeds
// outlier detection and the cluster's pool limits hold it; mesh peers are told who calls
// (peer metadata, for their metrics). Inbound: a peer's request is authorized, loses that
// peer metadata, is told who called, and handed to the application. On both, the request
// first becomes a span of its caller's trace, so even a request refused at once is logged
// with its trace, and (when spans are exported) each upstream attempt is a CLIENT span.
// Each step is one layer in layers/.
import type { Dispatcher, Target } from './dispatch';
import { compose, type Handler } from './exchange';
import { routeLayer } from './layers/route';
import { faultLayer } from './layers/fault';
import { corsLayer } from './layers/cors';
import { localAnswerLayer } from './layers/local-answer';
import { splitLayer } from './layers/split';
import { mirrorLayer } from './layers/mirror';
import { timeoutLayer } from './layers/timeout';
import { retryLayer, type RetryBudgets } from './layers/retry';
import { balanceLayer } from './layers/balance';
import { poolLayer } from './layers/pool';
import { outlierLayer } from './layers/outlier';
import { appTerminal, dispatchTerminal, type Dispatchers } from './layers/dispatch';
import { authorizeLayer } from './layers/authorize';
import { clientCertLayer } from './layers/client-cert';
import { appProtocolOf, markProtocolLayer, ORIG_PROTO, type AppProtocol } from './layers/protocol';
import { first } from './headers';
import { announcePeerLayer, stripPeerLayer, UNKNOWN_WORKLOAD, type WorkloadMeta } from './peer-metadata';
import { traceLayer, type TraceDeps } from './layers/trace';
import { attemptSpanLayer } from './layers/spans';
import type { Spans } from './spans';

export interface OutboundChainDeps {
  dispatchers: Dispatchers;
  budgets: RetryBudgets;
  random: () => number;
  now?: () => number;
  /** this workload, as mesh peers are told (Istio's metadata exchange) */
  own?: WorkloadMeta;
  trace: TraceDeps;
  /** OpenTelemetry spans, when they are exported (else the layer is not in the chain at all) */
  spans?: Spans;
  /** requests in flight to a cluster that sets no circuit breakers (and as many waiting); Envoy's 1,024 unless told */
  maxUpstreamRequests?: number;
}

export function outboundChain(d: OutboundChainDeps): Handler {
  return compose(
    [
      traceLayer(d.trace),
      routeLayer,
      markProtocolLayer,
      // Istio's HTTP filters run fault, then CORS, then the router, which either answers by
      // itself (redirect, direct_response) or forwards; so a fault delays or aborts a
      // preflight too, and CORS headers go on the route's own answers as on the upstream's.
      faultLayer(d.random),
      corsLayer,
      localAnswerLayer,
      splitLayer,
      announcePeerLayer(d.own ?? UNKNOWN_WORKLOAD),
      mirrorLayer(d.dispatchers, d.random),
      timeoutLayer,
      retryLayer(d.budgets, d.random),
      balanceLayer,
      // per attempt, once its endpoint is known; an overflow below is that attempt's outcome
      ...(d.spans ? [attemptSpanLayer(d.spans)] : []),
      // the circuit breakers before outlier detection: an overflow is this proxy's answer, not the endpoint's
      poolLayer(d.maxUpstreamRequests),
      outlierLayer(d.now ?? Date.now),
    ],
    dispatchTerminal(d.dispatchers),
  );
}

export interface InboundChainDeps {
  app: Target;
  /** keep-alive HTTP/1.1 and h2c (prior knowledge) to the application */
  appH1: Dispatcher;
  appH2: Dispatcher;
  appProtocol: AppProtocol;
  ownIdentity: () => string | undefined;
  trace: TraceDeps;
}

export function inboundChain(d: InboundChainDeps): Handler {
  const pick = (x: Parameters<Handler>[0]): Dispatcher => {
    const marked = first(x.request.headers[ORIG_PROTO] as string | string[] | undefined);
    delete x.request.headers[ORIG_PROTO];
    return appProtocolOf(d.appProtocol, x.info.protocol, marked, x.info.header('content-type')) === 'http2' ? d.appH2 : d.appH1;
  };
  return compose([traceLayer(d.trace), authorizeLayer({ appPort: d.app.port }), stripPeerLayer, clientCertLayer(d.ownIdentity)], appTerminal(pick, d.app));
}
