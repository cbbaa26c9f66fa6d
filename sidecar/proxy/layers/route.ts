// Route: the route table in force picks the route (404 NR when none); the upstream
// request takes its rewrites and header operations, and the proxy's own headers.
import { NoRouteError } from '../errors';
import { applyOps } from '../headers';
import type { Layer } from '../exchange';
import type { RouteModel } from '../../../proto/decode/model';

const XFCC = 'x-forwarded-client-cert';

export const routeLayer: Layer = (next) => (x) => {
  const { info } = x;
  const route = x.rt.outbound.match(info.authority, info.path, info.header);
  if (!route) throw new NoRouteError(`no route for ${info.authority}${info.path}`);
  x.route = route;
  x.facts.route = route.model.name;
  const h = x.request.headers;
  // client-certificate details are the receiving sidecar's to set, never the app's
  delete h[XFCC];
  applyOps(h, route.vhost.requestHeaders);
  applyOps(h, route.model.requestHeaders);
  h['x-request-id'] = info.requestId;
  h['x-forwarded-proto'] ??= 'http';
  const xff = info.header('x-forwarded-for');
  h['x-forwarded-for'] = xff ? `${xff}, ${info.clientIp}` : info.clientIp;
  x.request.authority = route.model.hostRewrite ?? info.authority;
  x.request.path = rewritePath(info.path, route.model);
  x.responseOps.push(route.model.responseHeaders, route.vhost.responseHeaders);
  return next(x);
};

function rewritePath(path: string, r: Pick<RouteModel, 'prefixRewrite' | 'regexRewrite' | 'path'>): string {
  if (r.regexRewrite) {
    // as Envoy: the regex sees the path alone; the query (and any fragment) is kept as it was
    const end = path.search(/[?#]/);
    const just = end < 0 ? path : path.slice(0, end);
    return r.regexRewrite.re.replaceAll(just, r.regexRewrite.substitution) + path.slice(just.length);
  }
  if (r.prefixRewrite === undefined) return path;
  const matched = r.path.kind === 'prefix' || r.path.kind === 'exact' ? (r.path.value ?? '') : '';
  return r.prefixRewrite + path.slice(matched.length);
}
