// One request on its way through the proxy, and the shape of the layers it passes. A
// layer takes the next handler and returns its own (as undici's interceptors and
// linkerd2-proxy's stacks do); the chains are put together in chains.ts, so a feature
// is one more layer, not an edit threaded through a handler.
import type { OutgoingHttpHeaders } from 'node:http';
import type { RequestInfo } from './request-info';
import type { RequestBody } from './body';
import type { UpstreamResponse } from './dispatch';
import type { ProxyError } from './errors';
import type { ConnectionInfo } from './downstream';
import type { ClusterRuntime, CompiledRoute, Endpoint, HeaderOps, RuntimeConfig } from '../runtime/config';
import type { WeightedCluster } from '../../proto/decode/model';
import type { Cancel } from './cancel';
import type { HopContext } from './trace-context';

export interface UpstreamRequestHead {
  method: string;
  path: string;
  authority: string;
  headers: OutgoingHttpHeaders;
}

/** What the access log and metrics learn along the way. */
export interface ExchangeFacts {
  route: string | null;
  cluster: string | null;
  host: string | null;
  /** Envoy response flags set by layers that did not fail the request (e.g. a fault delay: DI) */
  flags: string[];
  attempts: number;
  /** this hop's span in the caller's trace (set by the trace layer) */
  trace?: HopContext;
}

export interface Exchange {
  readonly info: RequestInfo;
  readonly conn: ConnectionInfo;
  readonly started: number;
  /** the runtime config in force when the request arrived: every layer reads this one */
  readonly rt: RuntimeConfig;
  /** what goes upstream; layers rewrite it */
  request: UpstreamRequestHead;
  readonly body: RequestBody | null;
  /** aborted when the client goes away or the route's timeout fires; the reason is the ProxyError to answer with */
  readonly signal: Cancel;
  abort(reason: ProxyError): void;
  /** 1 for the first try; set by the retry layer */
  attempt: number;
  route?: CompiledRoute;
  split?: WeightedCluster;
  cluster?: ClusterRuntime;
  endpoint?: Endpoint;
  /** applied to the response headers, in order */
  responseOps: (HeaderOps | undefined)[];
  readonly facts: ExchangeFacts;
  /** run once the exchange is over, whatever its outcome */
  readonly cleanup: (() => void)[];
  /** a byte of the response moved (the stream-idle timeout's clock); the body's own bytes tell it themselves */
  readonly touch?: () => void;
}

export type Handler = (x: Exchange) => Promise<UpstreamResponse>;
export type Layer = (next: Handler) => Handler;

/** The layers in order, outermost first, around a terminal handler. */
export function compose(layers: Layer[], terminal: Handler): Handler {
  return layers.reduceRight<Handler>((next, layer) => layer(next), terminal);
}

/** Waits `ms`, or rejects with the exchange's abort reason as soon as it is aborted. */
export function sleep(x: Pick<Exchange, 'signal'>, ms: number): Promise<void> {
  if (x.signal.aborted) return Promise.reject(x.signal.reason);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      resolve();
    }, ms);
    const off = x.signal.on(() => {
      clearTimeout(t);
      reject(x.signal.reason);
    });
  });
}
