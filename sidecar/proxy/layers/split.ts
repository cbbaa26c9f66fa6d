// Split: the weighted destination of the route, chosen once per request (retries go to
// the same cluster, as in Envoy), with its own header operations and host rewrite. With the route's split
// key (the tandem.io/split-key annotation) the choice is the key's hash laid over the
// weights in order, so a key keeps its destination, and a weight change moves only the
// keys between the old and the new boundary, in the direction of the change.
import { applyOps } from '../headers';
import type { Layer } from '../exchange';
import { hash32 } from '../../runtime/hash-ring';
import { cookieValue } from '../../runtime/request-hash';
import type { RouteModel, WeightedCluster } from '../../../proto/decode/model';

export function byKey(r: RouteModel, key: string): WeightedCluster {
  const total = r.clusters.reduce((s, c) => s + c.weight, 0);
  const at = (hash32(key) / 2 ** 32) * total;
  let acc = 0;
  for (const c of r.clusters) {
    acc += c.weight;
    if (at < acc) return c;
  }
  return r.clusters[r.clusters.length - 1];
}

export const splitLayer: Layer = (next) => (x) => {
  const route = x.route!;
  const sk = route.model.splitKey;
  const key = sk ? (sk.kind === 'header' ? x.info.header(sk.name) : cookieValue(x.info.header('cookie'), sk.name)) : undefined;
  const wc = key !== undefined && route.model.clusters.length > 1 ? byKey(route.model, key) : route.pickCluster();
  x.split = wc;
  x.facts.cluster = wc.name;
  x.cluster = x.rt.clusters.get(wc.name);
  if (wc.hostRewrite !== undefined) x.request.authority = wc.hostRewrite;
  applyOps(x.request.headers, wc.requestHeaders);
  x.responseOps.unshift(wc.responseHeaders);
  return next(x);
};
