// A request body that can be sent more than once: the first 64 KiB are kept so that a
// retry can replay them; past that the body streams through and retries are off for the
// request. The attempt being made now sets the pace (back-pressure reaches the client);
// taps (mirrors) get copies that never slow it and are cut if they fall too far behind.
// A body that does not complete (client reset, bad chunk) fails every reader with an
// error, so no upstream ever sees a truncated body end cleanly.
import { Readable } from 'node:stream';

export const REPLAY_LIMIT = 64 * 1024;
const READ_AHEAD = 64 * 1024;

export class BodyNotReplayableError extends Error {
  readonly code = 'BODY_NOT_REPLAYABLE';
}

class Reader extends Readable {
  /** absolute index of the next chunk this reader gets */
  next = 0;
  /** it asked for data (_read) and has not said "enough" (push returned false) since */
  wanting = false;
  constructor(private readonly body: RequestBody) {
    super();
  }
  override _read(): void {
    this.wanting = true;
    this.body.pump(this);
  }
  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    this.body.detach(this);
    cb(err);
  }
}

export interface BodyProgress {
  touch(): void;
  requestDone(): void;
}

/**
 * What a body is read from, in flowing mode: a downstream request (h1-server.ts's H1Request,
 * node:http2's request) or any Readable. Events: data, end, error, aborted, close.
 */
export interface BodySource extends NodeJS.EventEmitter {
  pause(): unknown;
  resume(): unknown;
}

export class RequestBody {
  private chunks: Buffer[] = [];
  /** chunks dropped from the front once they were past the replay limit and consumed */
  private dropped = 0;
  private bytes = 0;
  private ended = false;
  private failure?: Error;
  private primary?: Reader;
  private readonly taps = new Map<Readable, number>();

  constructor(
    private readonly src: BodySource,
    private readonly replayLimit = REPLAY_LIMIT,
    /** told of every chunk and of the end (the stream timeouts) */
    private readonly progress?: BodyProgress,
  ) {
    src.on('data', (c: Buffer) => this.onData(c));
    src.once('end', () => {
      this.ended = true;
      progress?.requestDone();
      this.flush();
    });
    // an incomplete body is an error for every reader, never an early end
    const fail = (err?: Error) => this.fail(err ?? new Error('the client aborted the request body'));
    src.once('error', fail);
    src.once('aborted', () => fail());
    src.once('close', () => this.ended || fail());
  }

  /** whether another attempt could still send the whole body */
  get replayable(): boolean {
    return this.dropped === 0 && this.bytes <= this.replayLimit;
  }

  get received(): number {
    return this.bytes;
  }

  /** The whole body for one attempt; it replaces the previous attempt's reader. */
  open(): Readable {
    if (!this.replayable) throw new BodyNotReplayableError(`the request body went beyond ${this.replayLimit} bytes and cannot be sent again`);
    this.primary?.destroy();
    const r = new Reader(this);
    this.primary = r;
    if (this.failure) process.nextTick(() => r.destroy(this.failure));
    return r;
  }

  /** A copy from here on plus what came so far (if still held), that never applies back-pressure. */
  tap(limit: number): Readable | undefined {
    if (this.dropped > 0 || this.failure) return undefined;
    const t = new Readable({ read() {} });
    this.taps.set(t, limit);
    for (const c of this.chunks) t.push(c);
    if (this.ended) t.push(null);
    t.once('close', () => this.taps.delete(t));
    return t;
  }

  /** @internal feeds a reader as far as it will take */
  pump(r: Reader): void {
    while (r.wanting && r.next - this.dropped < this.chunks.length) {
      const c = this.chunks[r.next - this.dropped];
      r.next++;
      if (!r.push(c)) r.wanting = false;
    }
    if (r.wanting && r.next - this.dropped >= this.chunks.length && this.ended) {
      r.wanting = false;
      r.push(null);
    }
    this.trim();
    if (r === this.primary && !this.ended && this.unread() < READ_AHEAD) this.src.resume();
  }

  /** @internal */
  detach(r: Reader): void {
    if (this.primary === r) this.primary = undefined;
  }

  private unread(): number {
    const from = (this.primary?.next ?? this.dropped) - this.dropped;
    let n = 0;
    for (let i = Math.max(0, from); i < this.chunks.length; i++) n += this.chunks[i].length;
    return n;
  }

  private onData(c: Buffer): void {
    this.progress?.touch();
    this.chunks.push(c);
    this.bytes += c.length;
    for (const [t, limit] of this.taps) {
      if (t.readableLength > limit) t.destroy(new Error('the copy fell behind'));
      else t.push(c);
    }
    if (this.primary) this.pump(this.primary);
    // nobody reading, or the reader is slow: stop reading from the client
    if (this.unread() >= READ_AHEAD) this.src.pause();
  }

  private flush(): void {
    for (const t of this.taps.keys()) t.push(null);
    if (this.primary) this.pump(this.primary);
  }

  // Past the replay limit, chunks are kept only until the current reader has them.
  private trim(): void {
    if (this.bytes <= this.replayLimit || !this.primary) return;
    const upTo = this.primary.next - this.dropped;
    if (upTo <= 0) return;
    this.chunks = this.chunks.slice(upTo);
    this.dropped += upTo;
  }

  private fail(err: Error): void {
    if (this.failure || this.ended) return;
    this.failure = err;
    this.primary?.destroy(err);
    for (const t of this.taps.keys()) t.destroy(err);
  }
}
