// H1Dispatcher: keep-alive HTTP/1.1 pools (h1-pool.ts), one per target and connection
// settings, on undici's client: its llhttp parser and writer cost a third less CPU per
// request than node:http's ClientRequest and Agent (42 → 28 µs in a bare relay here).
import type * as http from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import { classifyUpstreamError, ReusedConnectionResetError } from './errors';
import type { Dispatcher, InFlight, Target, UpstreamRequest, UpstreamResponse } from './dispatch';
import { H1Pool } from './h1-pool';
import { responseHeaders } from './h1-headers';

/** a response body, read by the proxy as fast as its downstream takes it */
class ResponseBody extends Readable {
  resumeUpstream?: () => void;
  cancel?: (err: Error) => void;
  done = false;

  override _read(): void {
    this.resumeUpstream?.();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // given up before its end (the client went away, a timeout): the connection goes with it
    if (!this.done) this.cancel?.(err ?? new Error('response body destroyed'));
    cb(err);
  }
}

const closes = (h: http.IncomingHttpHeaders): boolean => typeof h.connection === 'string' && /(^|,)\s*close\s*(,|$)/i.test(h.connection);

/** Ends a body cut short: with its error where someone listens (respond.ts does), quietly where
 * nobody does (a response a layer set aside), since an unheard 'error' would end the process. */
function fail(body: Readable, err: Error): void {
  if (body.destroyed) return;
  if (body.listenerCount('error') > 0) body.destroy(err);
  else body.destroy();
}

// socket-level failures; on a reused connection before any answer, the server closed it as it was reused
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

export class H1Dispatcher implements Dispatcher {
  private readonly pools = new Map<string, H1Pool>();

  private poolFor(t: Target): H1Pool {
    const key = `${t.host}:${t.port}|${t.tls?.key ?? 'plaintext'}|${t.conn?.key ?? ''}`;
    let p = this.pools.get(key);
    if (!p) {
      const pool = new H1Pool(t, () => {
        if (this.pools.get(key) === pool) this.pools.delete(key);
      });
      this.pools.set(key, pool);
      p = pool;
    }
    return p;
  }

  dispatch(t: Target, req: UpstreamRequest): InFlight {
    const pool = this.poolFor(t);
    const conn = pool.acquire(req.connectTimeoutMs);
    const reused = conn.served > 0;
    let aborted: Error | undefined;
    let abortUpstream: ((err: Error) => void) | undefined;
    let settle: { resolve(r: UpstreamResponse): void; reject(e: Error): void };
    const response = new Promise<UpstreamResponse>((resolve, reject) => (settle = { resolve, reject }));
    let body: ResponseBody | undefined;
    let keep = true;
    let endTrailers: ((t: http.IncomingHttpHeaders | undefined) => void) | undefined;
    const cut = (err: Error) => {
      pool.drop(conn);
      abortUpstream?.(err);
    };

    const handler: UndiciDispatcher.DispatchHandler = {
      onConnect(abort) {
        abortUpstream = abort;
        if (aborted) abort(aborted);
      },
      onHeaders(status, raw, resume) {
        // informational (103 Early Hints...): the answer is still to come, as node:http has it
        if (status < 200) return true;
        body = new ResponseBody();
        body.resumeUpstream = resume;
        body.cancel = cut;
        const headers = responseHeaders(raw as unknown as Buffer[]);
        // the server closes after this response (draining), or undici will (it keeps no
        // connection past a HEAD): not handed out again
        if (req.method === 'HEAD' || closes(headers)) keep = false;
        const trailers = new Promise<http.IncomingHttpHeaders | undefined>((r) => (endTrailers = r));
        settle.resolve({ status, headers, body, trailers });
        return true;
      },
      onData(chunk) {
        return body!.push(chunk);
      },
      onComplete(rawTrailers) {
        conn.served++;
        pool.release(conn, keep);
        body!.done = true;
        endTrailers!(rawTrailers?.length ? responseHeaders(rawTrailers as unknown as Buffer[]) : undefined);
        body!.push(null);
      },
      onError(err) {
        pool.drop(conn);
        if (body) {
          endTrailers!(undefined);
          fail(body, aborted ?? err);
          return;
        }
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (!aborted && reused && RESET_CODES.has(code)) {
          return settle.reject(new ReusedConnectionResetError(`a kept-alive connection to ${t.host}:${t.port} was closed as it was reused`, { cause: err }));
        }
        // a connect failure comes from h1-connect.ts as a ConnectFailureError already
        settle.reject(aborted ?? classifyUpstreamError(err, true));
      },
    };
    const headers = { ...req.headers, host: req.authority } as Record<string, string | string[]>;
    // the sidecar answered the client's 100-continue itself (node:http does); the body follows anyway
    delete headers.expect;
    try {
      conn.client.dispatch({ method: req.method as UndiciDispatcher.HttpMethod, path: req.path, headers, body: req.body }, handler);
    } catch (err) {
      pool.drop(conn);
      settle!.reject(classifyUpstreamError(err, true));
    }
    return {
      response,
      abort(reason) {
        aborted = reason ?? new Error('aborted');
        // not yet written (still connecting): the connection was made for this request alone
        if (!abortUpstream) pool.drop(conn);
        else abortUpstream(aborted);
        if (body) fail(body, aborted);
      },
    };
  }

  close(): void {
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
  }
}
