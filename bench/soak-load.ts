// The soak's load: a fixed request rate into the client sidecar's outbound port, whatever
// the responses take (open loop, so a slow mesh gets more requests in flight rather than a
// lower rate that would hide it). The mix makes connections open and close all the time:
//   h1 keep-alive - a pool of HTTP/1.1 connections; every 50th request says Connection: close;
//   h1 fresh      - a new TCP connection per request, closed after it;
//   h2            - h2c sessions, each retired after 300 requests (closed once its last
//                   stream has ended: see h2Session).
// One request in three is a POST with a 1 KiB body; the app answers 500 if it got less.
// Every response must be a 200 with the app's body: anything else, an error or a timeout
// is a failure, kept with its reason. The x-soak-config and x-soak-subset response headers
// (set by the VirtualService) tell which config generation and which subset served it.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';

export type Kind = 'h1 keep-alive' | 'h1 fresh' | 'h2';
/** the order of kinds, interleaved, repeated: half keep-alive, a fifth fresh, 3/10 h2 */
const MIX: Kind[] = [...'KFK2KFK2K2KFK2KFK2K2'].map((c) => (c === 'K' ? 'h1 keep-alive' : c === 'F' ? 'h1 fresh' : 'h2'));
const POST_BYTES = 1024;
const TIMEOUT_MS = 10_000;
const KEEPALIVE_CLOSE_EVERY = 50;
const H2_REQUESTS_PER_SESSION = 300;

export interface Failure {
  at: number;
  kind: Kind;
  what: string;
}

export interface Interval {
  sent: number;
  ok: number;
  failed: number;
  latenciesMs: number[];
}

export interface LoadOptions {
  port: number;
  host: string;
  rate: number;
}

export class SoakLoad {
  sent = 0;
  ok = 0;
  failed = 0;
  readonly byKind: Record<Kind, { sent: number; failed: number }> = { 'h1 keep-alive': { sent: 0, failed: 0 }, 'h1 fresh': { sent: 0, failed: 0 }, h2: { sent: 0, failed: 0 } };
  readonly failures: Failure[] = [];
  readonly failureReasons = new Map<string, number>();
  /** by config generation (x-soak-config): when its first response came, and responses by subset (x-soak-subset) */
  readonly byConfig = new Map<number, { firstAt: number; subsets: Map<string, number> }>();
  /** connections this side opened, by kind of traffic (fresh h1 sockets, keep-alive sockets, h2 sessions) */
  readonly opened = { keepAlive: 0, fresh: 0, h2Sessions: 0 };
  private interval: Interval = { sent: 0, ok: 0, failed: 0, latenciesMs: [] };
  private inFlight = 0;
  private timer?: NodeJS.Timeout;
  private startedAt = 0;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private session?: http2.ClientHttp2Session;
  private sessionUses = 0;
  /** streams still open per session, so a retired one is closed only once it is idle */
  private readonly openStreams = new WeakMap<http2.ClientHttp2Session, number>();
  private keepAliveUses = 0;
  private idle?: () => void;
  private readonly sockets = new WeakSet<Socket>();
  private readonly body = Buffer.alloc(POST_BYTES, 'x');

  constructor(private readonly o: LoadOptions) {}

  start(): void {
    this.startedAt = performance.now();
    // every 10 ms, send what the rate says is due by now: the rate holds over the run even
    // if a tick is late
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - this.startedAt) / 1000) * this.o.rate) - this.sent;
      for (let i = 0; i < due; i++) this.send(MIX[this.sent % MIX.length]);
    }, 10);
  }

  /** Stop sending; resolves once every request in flight has ended. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
    this.session?.close();
    this.agent.destroy();
  }

  /** What happened since the last call. */
  takeInterval(): Interval {
    const i = this.interval;
    this.interval = { sent: 0, ok: 0, failed: 0, latenciesMs: [] };
    return i;
  }

  get pending(): number {
    return this.inFlight;
  }

  private send(kind: Kind): void {
    this.sent++;
    this.interval.sent++;
    this.byKind[kind].sent++;
    this.inFlight++;
    // 3 and the mix's 20 slots share no factor, so every kind gets its share of POSTs
    const post = this.sent % 3 === 0;
    const t0 = performance.now();
    const done = (err: string | undefined, status?: number, headers?: http.IncomingHttpHeaders, body?: string) => {
      const ms = performance.now() - t0;
      const what = err ?? (status !== 200 ? `status ${status}: ${(body ?? '').trim().slice(0, 160)}` : checkBody(body ?? '', post ? POST_BYTES : 0));
      if (what) this.fail(kind, what);
      else {
        this.ok++;
        this.interval.ok++;
        this.interval.latenciesMs.push(ms);
        this.countConfig(headers ?? {});
      }
      if (--this.inFlight === 0 && this.idle) this.idle();
    };
    const headers: http.OutgoingHttpHeaders = { 'x-soak-body-bytes': String(post ? POST_BYTES : 0) };
    if (post) headers['content-length'] = POST_BYTES;
    if (kind === 'h2') this.sendH2(post, headers, done);
    else this.sendH1(kind, post, headers, done);
  }

  private sendH1(kind: Kind, post: boolean, headers: http.OutgoingHttpHeaders, done: Done): void {
    let agent: http.Agent | false = false;
    if (kind === 'h1 keep-alive') {
      agent = this.agent;
      if (++this.keepAliveUses % KEEPALIVE_CLOSE_EVERY === 0) headers.connection = 'close';
    } else headers.connection = 'close';
    let finished = false;
    const finish: Done = (...a) => {
      if (finished) return;
      finished = true;
      done(...a);
    };
    const req = http.request({ host: '127.0.0.1', port: this.o.port, path: '/soak', method: post ? 'POST' : 'GET', headers: { host: this.o.host, ...headers }, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => finish(undefined, res.statusCode, res.headers, body));
      res.on('error', (err) => finish(`response: ${err.message}`));
      res.on('close', () => {
        if (!res.complete) finish('connection closed before the end of the response');
      });
    });
    req.on('socket', (s) => {
      // a socket's first request: count the connection it opened
      if (!this.sockets.has(s)) {
        this.sockets.add(s);
        if (kind === 'h1 keep-alive') this.opened.keepAlive++;
        else this.opened.fresh++;
      }
    });
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`timeout after ${TIMEOUT_MS} ms`)));
    req.on('error', (err) => finish(`${(err as NodeJS.ErrnoException).code ?? 'error'}: ${err.message}`));
    req.end(post ? this.body : undefined);
  }

  // A retired session is closed only when none of its streams is open. close() sends
  // GOAWAY at once, and in the same tick as a request, nghttp2 writes the GOAWAY before that
  // request's HEADERS (control frames go first); a Node server treats a client's GOAWAY as
  // the end of the connection and refuses the stream (REFUSED_STREAM). The request was then
  // never processed: a client that retried would lose nothing, but the soak counts failures,
  // and it would be the load's own doing, not the mesh's.
  private h2Session(): http2.ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed || this.sessionUses >= H2_REQUESTS_PER_SESSION) {
      const old = this.session;
      if (old && !this.openStreams.get(old)) old.close();
      const s = http2.connect(`http://127.0.0.1:${this.o.port}`);
      s.on('error', () => undefined); // each stream reports its own failure
      this.session = s;
      this.sessionUses = 0;
      this.opened.h2Sessions++;
    }
    this.sessionUses++;
    return this.session;
  }

  private streamOpened(session: http2.ClientHttp2Session): void {
    this.openStreams.set(session, (this.openStreams.get(session) ?? 0) + 1);
  }

  private streamClosed(session: http2.ClientHttp2Session): void {
    const n = (this.openStreams.get(session) ?? 1) - 1;
    this.openStreams.set(session, n);
    if (n === 0 && session !== this.session && !session.closed) session.close();
  }

  private sendH2(post: boolean, headers: http.OutgoingHttpHeaders, done: Done): void {
    let finished = false;
    const finish: Done = (...a) => {
      if (finished) return;
      finished = true;
      done(...a);
    };
    let stream: http2.ClientHttp2Stream;
    const session = this.h2Session();
    try {
      stream = session.request({ ':method': post ? 'POST' : 'GET', ':path': '/soak', ':authority': this.o.host, ...headers });
    } catch (err) {
      finish(`h2 request: ${(err as Error).message}`);
      return;
    }
    this.streamOpened(session);
    let status = 0;
    let resHeaders: http.IncomingHttpHeaders = {};
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h as http.IncomingHttpHeaders;
    });
    stream.on('data', (c: string) => (body += c));
    stream.on('end', () => finish(status ? undefined : 'h2 stream ended without a response', status, resHeaders, body));
    let timedOut = false;
    stream.on('close', () => {
      this.streamClosed(session);
      if (timedOut) finish(`timeout after ${TIMEOUT_MS} ms`);
      else if (stream.rstCode) finish(`h2 stream reset (code ${stream.rstCode})`);
      else finish('h2 stream closed before its end');
    });
    stream.on('error', (err) => finish(`h2: ${(err as NodeJS.ErrnoException).code ?? 'error'}: ${err.message}`));
    stream.setTimeout(TIMEOUT_MS, () => {
      timedOut = true;
      stream.close(http2.constants.NGHTTP2_CANCEL);
    });
    stream.end(post ? this.body : undefined);
  }

  private countConfig(headers: http.IncomingHttpHeaders): void {
    const gen = Number(headers['x-soak-config'] ?? NaN);
    if (!Number.isInteger(gen)) return;
    let c = this.byConfig.get(gen);
    if (!c) this.byConfig.set(gen, (c = { firstAt: Date.now(), subsets: new Map() }));
    const subset = String(headers['x-soak-subset'] ?? 'none');
    c.subsets.set(subset, (c.subsets.get(subset) ?? 0) + 1);
  }

  private fail(kind: Kind, what: string): void {
    this.failed++;
    this.interval.failed++;
    this.byKind[kind].failed++;
    const reason = what.replace(/\d+/g, 'N');
    this.failureReasons.set(reason, (this.failureReasons.get(reason) ?? 0) + 1);
    if (this.failures.length < 20) this.failures.push({ at: Date.now(), kind, what });
  }
}

type Done = (err: string | undefined, status?: number, headers?: http.IncomingHttpHeaders, body?: string) => void;

/** The app's answer for a whole request; a reason when it is not. */
function checkBody(body: string, sent: number): string | undefined {
  try {
    const b = JSON.parse(body) as { ok?: boolean; got?: number };
    if (b.ok === true && b.got === sent) return undefined;
  } catch {
    /* named below */
  }
  return `200 with an unexpected body: ${body.trim().slice(0, 160)}`;
}
