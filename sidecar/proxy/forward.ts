// Forward one downstream request to one upstream and stream the answer back. The
// caller decides where (route, cluster, endpoint); this decides nothing, it carries.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Dispatcher, Target, UpstreamRequest } from './dispatch';
import type { DownstreamRequest, DownstreamResponse } from './downstream';
import { endToEnd, applyOps } from './headers';
import { UpstreamTimeoutError, ProxyError, UpstreamResetError } from './errors';
import type { HeaderOps } from '../runtime/config';

export interface ForwardPlan {
  dispatcher: Dispatcher;
  target: Target;
  request: UpstreamRequest;
  timeoutMs: number;
  responseOps: (HeaderOps | undefined)[];
}

export interface ForwardResult {
  status: number;
  bytesSent: number;
  upstreamMs: number;
}

/** Resolves when the response is complete; rejects with a ProxyError if nothing was sent downstream yet. */
export function forward(req: DownstreamRequest, res: DownstreamResponse, plan: ForwardPlan): Promise<ForwardResult> {
  const started = Date.now();
  const inflight = plan.dispatcher.dispatch(plan.target, plan.request);
  let timer: NodeJS.Timeout | undefined;
  if (plan.timeoutMs > 0) {
    timer = setTimeout(() => inflight.abort(new UpstreamTimeoutError(`upstream request timeout after ${plan.timeoutMs}ms`)), plan.timeoutMs);
  }
  const onDownstreamGone = () => {
    if (!res.writableFinished) inflight.abort(new UpstreamResetError('downstream went away'));
  };
  res.once('close', onDownstreamGone);
  return inflight.response
    .then(
      (up) =>
        new Promise<ForwardResult>((resolve, reject) => {
          const upstreamMs = Date.now() - started;
          const headers: OutgoingHttpHeaders = endToEnd(up.headers);
          for (const ops of plan.responseOps) applyOps(headers, ops);
          (res as { writeHead(s: number, h: OutgoingHttpHeaders): void }).writeHead(up.status, headers);
          let bytes = 0;
          up.body.on('data', (c: Buffer) => {
            bytes += c.length;
            if (!(res as NodeJS.WritableStream).write(c)) {
              up.body.pause();
              res.once('drain', () => up.body.resume());
            }
          });
          up.body.once('end', async () => {
            const t = await up.trailers;
            clearTimeout(timer);
            if (t) {
              const tt = endToEnd(t);
              if (Object.keys(tt).length) (res as { addTrailers(h: OutgoingHttpHeaders): void }).addTrailers(tt);
            }
            res.end();
            resolve({ status: up.status, bytesSent: bytes, upstreamMs });
          });
          up.body.once('error', (err) => {
            clearTimeout(timer);
            // headers are out: all we can do is cut the response short
            (res as { destroy(e?: Error): void }).destroy(err);
            reject(err instanceof ProxyError ? err : new UpstreamResetError(err.message));
          });
        }),
    )
    .finally(() => {
      clearTimeout(timer);
      res.off('close', onDownstreamGone);
    });
}
