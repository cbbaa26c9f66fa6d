// Split: the weighted destination of the route (chosen once per request, retries go to
// the same cluster, as in Envoy), with its own header operations.
import { applyOps } from '../headers';
import type { Layer } from '../exchange';

export const splitLayer: Layer = (next) => (x) => {
  const wc = x.route!.pickCluster();
  x.split = wc;
  x.facts.cluster = wc.name;
  x.cluster = x.rt.clusters.get(wc.name);
  applyOps(x.request.headers, wc.requestHeaders);
  x.responseOps.unshift(wc.responseHeaders);
  return next(x);
};
