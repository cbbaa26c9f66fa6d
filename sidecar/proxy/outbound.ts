// The outbound path: the application's request is routed by the runtime config in
// force at arrival, split by weight, balanced over endpoints, and carried to the
// chosen endpoint (a peer sidecar over h2, or a ServiceEntry endpoint directly).
import type { OutgoingHttpHeaders } from 'node:http';
import { PassThrough } from 'node:stream';
import type { RuntimeConfig, ClusterRuntime, Endpoint } from '../runtime/config';
import type { Dispatcher } from './dispatch';
import type { DownstreamRequest, DownstreamResponse } from './downstream';
import type { AccessLog } from './access-log';
import { requestInfo, type RequestInfo } from './request-info';
import { applyOps, endToEnd } from './headers';
import { forward } from './forward';
import { NoHealthyUpstreamError, NoRouteError, ProxyError, UpstreamResetError } from './errors';
import { sendLocalReply, logEntry } from './local-reply';

export interface OutboundDeps {
  runtime: () => RuntimeConfig;
  /** the sidecar-to-sidecar hop */
  mesh: Dispatcher;
  /** plaintext endpoints outside the mesh: HTTP/1.1 or h2c */
  externalH1: Dispatcher;
  externalH2: Dispatcher;
  log: AccessLog;
  random: () => number;
}

export function outboundHandler(d: OutboundDeps) {
  return (req: DownstreamRequest, res: DownstreamResponse): void => {
    const start = Date.now();
    let info: RequestInfo | undefined;
    const ctx = { cluster: null as string | null, host: null as string | null, route: null as string | null };
    const done = (status: number, flags: string, bytesSent: number, upstreamMs: number | null) =>
      d.log?.(logEntry('outbound', req, info, start, status, flags, bytesSent, upstreamMs, ctx.host, ctx.cluster, ctx.route));
    try {
      info = requestInfo(req);
      const rt = d.runtime();
      const route = rt.outbound.match(info.authority, info.path, info.header);
      if (!route) throw new NoRouteError(`no route for ${info.authority}${info.path}`);
      ctx.route = route.model.name;
      const wc = route.pickCluster();
      ctx.cluster = wc.name;
      const cluster = rt.clusters.get(wc.name);
      const ep = cluster?.pick();
      if (!cluster || !ep) throw new NoHealthyUpstreamError(`no healthy upstream for ${wc.name}`);
      ctx.host = `${ep.address}:${ep.port}`;

      const headers = endToEnd(req.headers);
      // client-certificate details are the receiving sidecar's to set, never the app's
      delete headers['x-forwarded-client-cert'];
      applyOps(headers, route.vhost.requestHeaders);
      applyOps(headers, route.model.requestHeaders);
      applyOps(headers, wc.requestHeaders);
      headers['x-request-id'] = info.requestId;
      headers['x-forwarded-proto'] ??= 'http';
      const xff = info.header('x-forwarded-for');
      headers['x-forwarded-for'] = xff ? `${xff}, ${info.clientIp}` : info.clientIp;
      const authority = route.model.hostRewrite ?? info.authority;
      const path = rewritePath(info.path, route.model);

      for (const m of route.model.mirrors) {
        if (d.random() < m.fraction) mirror(d, rt.clusters.get(m.cluster), req, info, headers, path);
      }

      ep.stats.activeRequests++;
      ep.stats.totalRequests++;
      forward(req, res, {
        dispatcher: dispatcherFor(d, cluster),
        target: ep.target,
        request: { method: info.method, path, authority, headers, body: info.hasBody ? req : null, connectTimeoutMs: cluster.model.connectTimeoutMs },
        timeoutMs: route.model.timeoutMs,
        responseOps: [wc.responseHeaders, route.model.responseHeaders, route.vhost.responseHeaders],
      })
        .then((r) => done(r.status, '-', r.bytesSent, r.upstreamMs))
        .catch((err) => {
          ep.stats.failures++;
          const e = err instanceof ProxyError ? err : new UpstreamResetError(String(err), { cause: err });
          if (sendLocalReply(res, e, info?.requestId)) done(e.status, e.flag, 0, null);
          else done(0, e.flag, 0, null);
        })
        .finally(() => ep.stats.activeRequests--);
    } catch (err) {
      const e = err instanceof ProxyError ? err : new UpstreamResetError(String(err), { cause: err });
      sendLocalReply(res, e, info?.requestId);
      done(e.status, e.flag, 0, null);
    }
  };
}

function dispatcherFor(d: OutboundDeps, c: ClusterRuntime): Dispatcher {
  if (c.model.mesh) return d.mesh;
  return c.model.protocol === 'HTTP2' || c.model.protocol === 'GRPC' ? d.externalH2 : d.externalH1;
}

function rewritePath(path: string, r: { prefixRewrite?: string; path: { kind: string; value?: string } }): string {
  if (r.prefixRewrite === undefined) return path;
  const matched = r.path.kind === 'prefix' || r.path.kind === 'exact' ? (r.path.value ?? '') : '';
  return r.prefixRewrite + path.slice(matched.length);
}

// A shadow copy: its own endpoint, Host "<host>-shadow", response thrown away. It must
// never slow or fail the original, so it gets the body without back-pressure and is
// dropped if it falls more than 1 MiB behind.
function mirror(d: OutboundDeps, cluster: ClusterRuntime | undefined, req: DownstreamRequest, info: RequestInfo, headers: OutgoingHttpHeaders, path: string): void {
  const ep: Endpoint | undefined = cluster?.pick();
  if (!cluster || !ep) return;
  const body = info.hasBody ? new PassThrough() : null;
  const host = info.authority.replace(/(:\d+)?$/, '-shadow$1');
  const inflight = dispatcherFor(d, cluster).dispatch(
    ep.target,
    { method: info.method, path, authority: host, headers: { ...headers }, body, connectTimeoutMs: cluster.model.connectTimeoutMs },
  );
  if (body) {
    req.on('data', (c: Buffer) => {
      if (body.writableLength > 1 << 20) inflight.abort(new Error('mirror fell behind'));
      else body.write(c);
    });
    req.once('end', () => body.end());
    req.once('error', () => body.destroy());
  }
  inflight.response.then((r) => r.body.resume()).catch(() => undefined);
}
