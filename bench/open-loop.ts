// A fixed-rate (open-loop) HTTP/1.1 load: request i is due at start + i/rate, whatever the
// earlier ones are doing, sent on the first idle keep-alive connection of a fixed pool.
// autocannon's --overallRate is not this: each connection sends back to back until it has
// made its share of the second, then waits for the next second, so at "1,000 requests/s"
// it measures bursts of busy connections, not a proxy that sees one request now and then
// (the case where the issue found the sidecar adding the most).
// Latency runs from when the request was written; a request that finds every connection
// busy waits in a queue here, and then its latency runs from when it was due, so time spent
// waiting on a slow proxy is counted (no coordinated omission). The timer that paces the
// requests fires late by up to a millisecond or so; that lateness is this process's, not
// the proxy's, so it is not counted (and "added over direct" removes what is left of it).
// The responses are the bench backend's: small, with Content-Length; anything else (chunked,
// a close, a status not 2xx) is counted as an error and the connection replaced.
import * as net from 'node:net';

export interface RateRequest {
  port: number;
  host: string;
  /** the Host header */
  hostHeader?: string;
  rate: number;
  connections: number;
  durationSec: number;
}

export interface RateResult {
  sent: number;
  ok: number;
  errors: number;
  /** requests that found every connection busy and waited for one */
  queued: number;
  /** requests still unanswered when the run ended (counted as neither ok nor error) */
  unanswered: number;
  /** requests this process sent more than 5 ms after they were due: it was stalled (its pacing timer is late by up to ~1 ms anyway) */
  lateSends: number;
  /** the latest a request went out after it was due, ms */
  maxLateMs: number;
  elapsedSec: number;
  /** every ok latency, ms, sorted */
  latencies: number[];
  firstError?: string;
}

interface Conn {
  sock: net.Socket;
  buf: Buffer;
  /** when the request in flight counts from (ns), or undefined when idle */
  since?: bigint;
  ready: boolean;
  dead?: boolean;
}

const now = () => process.hrtime.bigint();

export function runAtRate(req: RateRequest): Promise<RateResult> {
  const head = Buffer.from(`GET / HTTP/1.1\r\nhost: ${req.hostHeader ?? `${req.host}:${req.port}`}\r\nuser-agent: tandem-bench-open-loop\r\n\r\n`);
  const intervalNs = BigInt(Math.round(1e9 / req.rate));
  const total = Math.round(req.rate * req.durationSec);
  const latencies: number[] = [];
  const waiting: bigint[] = [];
  let sent = 0;
  let ok = 0;
  let errors = 0;
  let queued = 0;
  let lateSends = 0;
  let maxLate = 0n;
  let firstError: string | undefined;
  let ending = false;
  const conns: Conn[] = [];

  const fail = (c: Conn, why: string) => {
    if (c.dead) return;
    c.dead = true;
    if (c.since !== undefined) errors++;
    firstError ??= why;
    c.since = undefined;
    c.sock.destroy();
    const i = conns.indexOf(c);
    if (i < 0 || ending) return;
    // a connection that never connected is retried after a pause, not in a tight loop
    const reopen = () => {
      if (!ending) conns[i] = open();
    };
    if (c.ready) reopen();
    else setTimeout(reopen, 100);
  };

  const send = (c: Conn, since: bigint) => {
    c.since = since;
    c.sock.write(head);
  };

  // A response is complete when its head and Content-Length bytes are in.
  const onData = (c: Conn, chunk: Buffer) => {
    c.buf = c.buf.length ? Buffer.concat([c.buf, chunk]) : chunk;
    for (;;) {
      const end = c.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headText = c.buf.subarray(0, end).toString('latin1');
      const status = Number(headText.slice(9, 12));
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
      if (!cl || /\r\nconnection:\s*close/i.test(headText)) return fail(c, `unexpected response head: ${headText.split('\r\n')[0]} (no Content-Length, or a close)`);
      const size = end + 4 + Number(cl[1]);
      if (c.buf.length < size) return;
      c.buf = c.buf.subarray(size);
      if (c.since === undefined) return fail(c, 'a response nobody asked for');
      if (status >= 200 && status < 300) {
        ok++;
        latencies.push(Number(now() - c.since) / 1e6);
      } else {
        errors++;
        firstError ??= `status ${status}`;
      }
      c.since = undefined;
      const next = waiting.shift();
      if (next !== undefined && !ending) send(c, next);
    }
  };

  const open = (): Conn => {
    const c: Conn = { sock: net.connect(req.port, req.host), buf: Buffer.alloc(0), ready: false };
    c.sock.setNoDelay(true);
    c.sock.on('connect', () => {
      c.ready = true;
      const next = waiting.shift();
      if (next !== undefined && !ending) send(c, next);
    });
    c.sock.on('data', (b: Buffer) => onData(c, b));
    c.sock.on('error', (err) => fail(c, err.message));
    c.sock.on('close', () => {
      if (!ending) fail(c, 'connection closed by the server');
    });
    return c;
  };
  for (let i = 0; i < req.connections; i++) conns.push(open());

  return new Promise((resolve) => {
    // connections first (a connect is not part of any request's latency)
    const start = async () => {
      const deadline = Date.now() + 5000;
      while (conns.some((c) => !c.ready && !c.dead) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const t0 = now();
      const tick = () => {
        const t = now();
        // every request due by now goes out now
        while (sent < total && t0 + BigInt(sent) * intervalNs <= t) {
          const due = t0 + BigInt(sent) * intervalNs;
          sent++;
          // a machine that stalls this process shows here: the proxy is not to blame for it
          if (t - due > 5_000_000n) lateSends++;
          if (t - due > maxLate) maxLate = t - due;
          const idle = conns.find((c) => c.ready && !c.dead && c.since === undefined);
          if (idle) send(idle, t);
          else {
            queued++;
            waiting.push(due);
          }
        }
        if (sent < total) {
          const nextDue = t0 + BigInt(sent) * intervalNs;
          setTimeout(tick, Math.max(0, Number(nextDue - now()) / 1e6 - 0.5));
          return;
        }
        // the last request is out: give the stragglers up to 2 s
        const until = Date.now() + 2000;
        const drain = () => {
          if (conns.some((c) => c.since !== undefined) || waiting.length) {
            if (Date.now() < until) return void setTimeout(drain, 5);
          }
          ending = true;
          const unanswered = conns.filter((c) => c.since !== undefined).length + waiting.length;
          for (const c of conns) c.sock.destroy();
          latencies.sort((a, b) => a - b);
          resolve({ sent, ok, errors, queued, unanswered, lateSends, maxLateMs: Number(maxLate) / 1e6, elapsedSec: Number(now() - t0) / 1e9, latencies, firstError });
        };
        drain();
      };
      tick();
    };
    void start();
  });
}
