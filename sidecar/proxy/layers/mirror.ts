// Mirror: a shadow copy of the request to each mirror cluster (for its fraction of
// requests), with Host "<host>-shadow" and the response thrown away. It gets the body
// as a tap that never applies back-pressure and is cut if it falls 1 MiB behind, so a
// slow, hanging or failing mirror never delays or fails the original.
import type { Layer } from '../exchange';
import type { Dispatchers } from './dispatch';

const MIRROR_LAG_LIMIT = 1 << 20;

export function mirrorLayer(d: Dispatchers, random: () => number): Layer {
  return (next) => (x) => {
    for (const m of x.route?.model.mirrors ?? []) {
      if (random() >= m.fraction) continue;
      const cluster = x.rt.clusters.get(m.cluster);
      const ep = cluster?.pick();
      if (!cluster || !ep) continue;
      const body = x.body ? (x.body.tap(MIRROR_LAG_LIMIT) ?? null) : null;
      if (x.body && !body) continue; // too late to copy the whole body
      const inflight = d.for(cluster, x.info.protocol, true).dispatch(ep.target, {
        ...x.request,
        authority: x.request.authority.replace(/(:\d+)?$/, '-shadow$1'),
        headers: { ...x.request.headers },
        body,
        connectTimeoutMs: cluster.model.connectTimeoutMs,
      });
      body?.once('error', () => inflight.abort(new Error('mirror body cut')));
      inflight.response.then((r) => r.body.resume()).catch(() => undefined);
    }
    return next(x);
  };
}
