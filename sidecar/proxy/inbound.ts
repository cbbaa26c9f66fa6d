// The inbound side: what peers send to the inbound port goes through the inbound chain
// (chains.ts): authorized first, then handed to the local application.
import type { Dispatcher, Target } from './dispatch';
import type { AccessLog } from './access-log';
import type { RuntimeConfig } from '../runtime/config';
import { inboundChain } from './chains';
import { serve } from './serve';
import type { TraceDeps } from './layers/trace';
import type { AppProtocol } from './layers/protocol';
import type { Observer } from './observe-metrics';
import type { ListenerLimits } from './limits';

export interface InboundDeps {
  app: Target;
  appH1: Dispatcher;
  appH2: Dispatcher;
  appProtocol: AppProtocol;
  log: AccessLog;
  runtime: () => RuntimeConfig;
  /** this workload's SPIFFE ID, for XFCC's By= */
  ownIdentity: () => string | undefined;
  observe?: Observer;
  trace: TraceDeps;
  /** the inbound listener's (inboundLimits) */
  limits?: ListenerLimits;
}

export function inboundHandler(d: InboundDeps) {
  const chain = inboundChain({ app: d.app, appH1: d.appH1, appH2: d.appH2, appProtocol: d.appProtocol, ownIdentity: d.ownIdentity, trace: d.trace });
  return serve({ direction: 'inbound', chain, runtime: d.runtime, log: d.log, defaults: { host: `${d.app.host}:${d.app.port}`, cluster: 'inbound|app' }, observe: d.observe, limits: d.limits });
}
