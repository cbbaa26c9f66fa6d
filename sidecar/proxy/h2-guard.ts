// Rapid reset (CVE-2023-44487) stopped before Node's HTTP/2 layer sees it. Node builds
// several objects for every stream it is told of, tens of microseconds each, and is told of
// every stream in a read at once: one 64 KiB read of HEADERS+RST_STREAM pairs is 2,000
// streams and a blocked event loop. This guard sits between a plaintext connection and
// nghttp2, reads only the 9-byte frame headers, and cuts the connection at the frame that
// spends its reset budget, so that what follows in that read is never parsed at all.
// (TLS connections are the mesh's own, from peers that hold a workload certificate; the
// session-level count in downstream.ts covers them.)
import { Duplex } from 'node:stream';
import type * as net from 'node:net';

const PREFACE_LENGTH = 24;
const FRAME_HEADER = 9;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
/** a stream reset by its client sooner than this after its HEADERS is a premature reset (Envoy's premature_reset_min_stream_lifetime) */
export const PREMATURE_RESET_MS = 1000;
/**
 * Streams reset in the very read that opened them: no client that means its requests does
 * that (a cancel comes once a request has been waiting), while a flood does nothing else.
 * This allowance is small and fixed; the premature-reset one (`--max-premature-resets`) is
 * for clients that cancel many requests at once, a fan-out dropping its stragglers.
 */
export const SAME_READ_RESET_BURST = 20;

/**
 * A connection's allowance of premature resets, Envoy's rule as a running balance: it starts
 * at `burst`, each new stream adds half a reset back (up to `burst`), each premature reset
 * takes one. A client whose streams are less than half reset early never spends it, however
 * long its connection lives (a gRPC channel that cancels now and then); a flood, all resets,
 * spends it within twice `burst` streams.
 */
export class ResetBudget {
  private balance: number;
  constructor(private readonly burst: number) {
    this.balance = burst;
  }
  opened(): void {
    this.balance = Math.min(this.burst, this.balance + 0.5);
  }
  /** One more premature reset: false once the allowance is overspent. */
  premature(): boolean {
    this.balance -= 1;
    return this.balance >= 0;
  }
}

export class H2Guard extends Duplex {
  /** bytes of the preface still to skip */
  private preface = PREFACE_LENGTH;
  /** a frame header split across reads */
  private partial: Buffer | undefined;
  /** payload bytes of the current frame still to skip */
  private skip = 0;
  /** streams whose HEADERS came recently: when, and in which read (insertion-ordered, so the oldest go first) */
  private readonly opened = new Map<number, { at: number; read: number }>();
  private readonly budget: ResetBudget;
  private readonly flood = new ResetBudget(SAME_READ_RESET_BURST);
  private reads = 0;
  private cut = false;

  constructor(
    private readonly raw: net.Socket,
    burst: number,
    private readonly onCut: () => void,
    private readonly clock: () => number = Date.now,
    /** what was read from `raw` already (the listener's protocol sniffing) */
    head?: Buffer,
  ) {
    super({ allowHalfOpen: false });
    this.budget = new ResetBudget(burst);
    const take = (chunk: Buffer) => {
      if (this.cut) return;
      const ok = this.inspect(chunk);
      if (ok === chunk.length) {
        if (!this.push(chunk)) raw.pause();
        return;
      }
      // the budget ran out inside this read: none of it is parsed (its last HEADERS would
      // otherwise arrive without the reset that follows it, as a complete request)
      this.cut = true;
      this.onCut();
      this.destroy();
    };
    if (head) take(head);
    if (this.cut) return;
    raw.on('data', take);
    raw.once('end', () => this.push(null));
    raw.once('close', () => this.destroy());
    raw.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    this.raw.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.raw.destroyed) return cb();
    this.raw.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.raw.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.raw.destroy();
    cb(err);
  }

  /** How many bytes of `chunk` may go on: all of it, unless a frame in it overspends the reset budget. */
  private inspect(chunk: Buffer): number {
    const read = ++this.reads;
    let i = 0;
    if (this.preface > 0) {
      const n = Math.min(this.preface, chunk.length);
      this.preface -= n;
      i = n;
    }
    let now = -1;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      const start = i;
      let head: Buffer;
      if (this.partial || chunk.length - i < FRAME_HEADER) {
        const have = this.partial ?? Buffer.alloc(0);
        const take = Math.min(FRAME_HEADER - have.length, chunk.length - i);
        head = Buffer.concat([have, chunk.subarray(i, i + take)]);
        i += take;
        if (head.length < FRAME_HEADER) {
          this.partial = head;
          return chunk.length;
        }
        this.partial = undefined;
      } else {
        head = chunk.subarray(i, i + FRAME_HEADER);
        i += FRAME_HEADER;
      }
      const length = (head[0] << 16) | (head[1] << 8) | head[2];
      const type = head[3];
      const stream = head.readUInt32BE(5) & 0x7fffffff;
      this.skip = length;
      if (type === HEADERS && !this.opened.has(stream)) {
        if (now < 0) now = this.clock();
        this.opened.set(stream, { at: now, read });
        // only recent streams can be reset prematurely: the rest need not be remembered
        if (this.opened.size > 1000) this.opened.delete(this.opened.keys().next().value!);
        this.budget.opened();
        this.flood.opened();
      } else if (type === RST_STREAM) {
        const o = this.opened.get(stream);
        if (o !== undefined) {
          this.opened.delete(stream);
          if (now < 0) now = this.clock();
          const spent = o.read === read ? !this.flood.premature() : now - o.at < PREMATURE_RESET_MS && !this.budget.premature();
          if (spent) return start;
        }
      }
    }
    return chunk.length;
  }
}
