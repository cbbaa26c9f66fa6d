// Balance: an endpoint of the cluster, by its load balancer (per attempt, so a retry
// may land elsewhere); 503 UH when the cluster has none.
import { NoHealthyUpstreamError } from '../errors';
import type { Layer } from '../exchange';

export const balanceLayer: Layer = (next) => (x) => {
  const ep = x.cluster?.pick();
  if (!x.cluster || !ep) throw new NoHealthyUpstreamError(`no healthy upstream for ${x.facts.cluster ?? 'the route'}`);
  x.endpoint = ep;
  x.facts.host = `${ep.address}:${ep.port}`;
  return next(x);
};
