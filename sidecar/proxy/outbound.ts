// The outbound side: what the application sends to the outbound port goes through the
// outbound chain (chains.ts) under the runtime config in force when it arrived.
import type { RuntimeConfig, ClusterRuntime } from '../runtime/config';
import type { Dispatcher } from './dispatch';
import type { AccessLog } from './access-log';
import { outboundChain } from './chains';
import { RetryBudgets } from './layers/retry';
import { serve } from './serve';
import { upstreamHttpVersion } from './upstream-protocol';
import type { Observer } from './observe-metrics';
import type { WorkloadMeta } from './peer-metadata';
import type { TraceDeps } from './layers/trace';
import type { Spans } from './spans';
import type { ListenerLimits } from './limits';

export interface OutboundDeps {
  runtime: () => RuntimeConfig;
  /** the sidecar-to-sidecar hop: one h2 session per peer */
  mesh: Dispatcher;
  /** the sidecar-to-sidecar hop for HTTP/1.1: keep-alive pools (over mTLS, ALPN http/1.1) */
  meshH1: Dispatcher;
  /** endpoints outside the mesh: HTTP/1.1 or HTTP/2 (plaintext, or TLS the sidecar originates) */
  externalH1: Dispatcher;
  externalH2: Dispatcher;
  log: AccessLog;
  random: () => number;
  budgets?: RetryBudgets;
  /** told to mesh peers (x-tandem-peer-metadata), for their source_* labels */
  own?: WorkloadMeta;
  observe?: Observer;
  trace: TraceDeps;
  spans?: Spans;
  limits?: ListenerLimits;
}

export function outboundHandler(d: OutboundDeps) {
  // an endpoint's HTTP/1.1 variant, where it has one (a mesh peer's ALPN)
  const meshH1: Dispatcher = { dispatch: (t, req) => d.meshH1.dispatch(t.h1 ?? t, req), close: () => d.meshH1.close() };
  const dispatchers = {
    for: (c: ClusterRuntime, callerProtocol?: string, shadow = false): Dispatcher => {
      const h2 = upstreamHttpVersion(c, callerProtocol) === '2';
      if (c.model.mesh) return h2 || shadow ? d.mesh : meshH1;
      return h2 ? d.externalH2 : d.externalH1;
    },
  };
  const chain = outboundChain({ dispatchers, budgets: d.budgets ?? new RetryBudgets(), random: d.random, own: d.own, trace: d.trace, spans: d.spans, maxUpstreamRequests: d.limits?.maxUpstreamRequests });
  return serve({ direction: 'outbound', chain, runtime: d.runtime, log: d.log, observe: d.observe, limits: d.limits });
}
