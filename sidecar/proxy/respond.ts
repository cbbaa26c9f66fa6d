// Respond: the upstream's answer goes downstream — status, end-to-end headers with the
// route's response operations, the body with back-pressure both ways, trailers. If the
// exchange is aborted meanwhile (timeout, client gone), both sides are cut: a response
// is never finished as if it were complete.
import type { OutgoingHttpHeaders } from 'node:http';
import type { DownstreamResponse } from './downstream';
import type { UpstreamResponse } from './dispatch';
import type { Exchange } from './exchange';
import { applyOps, endToEnd, endWithHeaders, first, isGrpcContentType } from './headers';
import { ProxyError, UpstreamResetError } from './errors';

export interface Responded {
  status: number;
  bytesSent: number;
  /** null: no upstream was asked (the proxy answered itself) */
  upstreamMs: number | null;
  /** grpc-status from the response's headers (trailers-only) or trailers, when it had one */
  grpcStatus?: string;
}

type Writable = DownstreamResponse & {
  writeHead(s: number, h: OutgoingHttpHeaders): void;
  addTrailers(h: OutgoingHttpHeaders): void;
  destroy(e?: Error): void;
};

export function respond(res: DownstreamResponse, up: UpstreamResponse, x: Exchange): Promise<Responded> {
  const out = res as Writable;
  const upstreamMs = up.local ? null : Date.now() - x.started;
  return new Promise<Responded>((resolve, reject) => {
    const headers: OutgoingHttpHeaders = endToEnd(up.headers);
    for (const ops of x.responseOps) applyOps(headers, ops);
    if (up.endStream) {
      // a trailers-only answer stays one: its status is in these headers
      endWithHeaders(res as unknown as Parameters<typeof endWithHeaders>[0], up.status, headers);
      up.body.resume();
      return resolve({ status: up.status, bytesSent: 0, upstreamMs, grpcStatus: first(up.headers['grpc-status']) });
    }
    out.writeHead(up.status, headers);
    let bytes = 0;
    let done = false;
    const onAbort = () => {
      up.body.destroy();
      out.destroy();
      reject(x.signal.reason);
    };
    if (x.signal.aborted) return onAbort();
    const off = x.signal.on(onAbort);
    const finish = (t: OutgoingHttpHeaders | undefined) => {
      if (done) return;
      done = true;
      off();
      if (t) {
        const tt = endToEnd(t);
        if (Object.keys(tt).length) out.addTrailers(tt);
      }
      out.end();
      resolve({ status: up.status, bytesSent: bytes, upstreamMs, grpcStatus: first(t?.['grpc-status']) ?? first(up.headers['grpc-status']) });
    };
    // A body of a declared length is over at its last byte: end the response then, not when the
    // upstream's end arrives (on the h2 hop, a frame later), by which time a client that has its
    // whole answer may have closed, and the exchange would be logged as cut short (DC).
    // (not gRPC: its status comes in trailers after the last byte)
    const length = isGrpcContentType(first(headers['content-type'] as string | string[] | undefined)) ? NaN : Number(headers['content-length'] ?? NaN);
    up.body.on('data', (c: Buffer) => {
      if (done) return;
      bytes += c.length;
      x.touch?.();
      if (!(out as NodeJS.WritableStream).write(c)) {
        up.body.pause();
        out.once('drain', () => up.body.resume());
      }
      if (bytes === length) finish(undefined);
    });
    up.body.once('end', async () => {
      if (done) return;
      finish(await up.trailers);
    });
    up.body.once('error', (err) => {
      if (done) return;
      done = true;
      off();
      // headers are out: all we can do is cut the response short
      out.destroy(err);
      reject(err instanceof ProxyError ? err : new UpstreamResetError(err.message, { cause: err }));
    });
  });
}
