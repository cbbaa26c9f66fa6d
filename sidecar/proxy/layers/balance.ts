// Balance: an endpoint of the cluster, by its load balancer (per attempt, so a retry
// may land elsewhere; ring hash and Maglev by the request's hash, so the same key keeps
// its endpoint; ORIGINAL_DST the destination the request names); 503 UH when the cluster has none.
import { NoHealthyUpstreamError } from '../errors';
import type { Layer } from '../exchange';
import { requestHash } from '../../runtime/request-hash';
import { first } from '../headers';

export const balanceLayer: Layer = (next) => (x) => {
  const c = x.cluster;
  let hash: number | undefined;
  if (c && (c.model.lbPolicy === 'RING_HASH' || c.model.lbPolicy === 'MAGLEV') && x.route?.model.hashPolicies.length) {
    const h = requestHash(x.route.model.hashPolicies, { header: x.info.header, path: x.info.path, clientIp: x.info.clientIp });
    hash = h.hash;
    if (h.setCookie && x.attempt === 1) x.responseOps.push({ add: [['set-cookie', h.setCookie, false]], remove: [] });
  }
  // an ORIGINAL_DST cluster reads its destination off the request as it goes upstream
  const ep = c?.pick(hash, (name) => (name === ':authority' || name === 'host' ? x.request.authority : first(x.request.headers[name])));
  if (!c || !ep) throw new NoHealthyUpstreamError(`no healthy upstream for ${x.facts.cluster ?? 'the route'}`);
  x.endpoint = ep;
  x.facts.host = `${ep.address}:${ep.port}`;
  return next(x);
};
