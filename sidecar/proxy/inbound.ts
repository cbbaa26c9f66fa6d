// The inbound side: what peers send to the inbound port goes through the inbound chain
// (chains.ts): authorized first, then handed to the local application.
import type { Dispatcher, Target } from './dispatch';
import type { AccessLog } from './access-log';
import type { RuntimeConfig } from '../runtime/config';
import { inboundChain } from './chains';
import { serve } from './serve';

export interface InboundDeps {
  app: Target;
  dispatcher: Dispatcher;
  log: AccessLog;
  runtime: () => RuntimeConfig;
  /** this workload's SPIFFE ID, for XFCC's By= */
  ownIdentity: () => string | undefined;
}

export function inboundHandler(d: InboundDeps) {
  const chain = inboundChain({ app: d.app, dispatcher: d.dispatcher, ownIdentity: d.ownIdentity });
  return serve({ direction: 'inbound', chain, runtime: d.runtime, log: d.log, defaults: { host: `${d.app.host}:${d.app.port}`, cluster: 'inbound|app' } });
}
