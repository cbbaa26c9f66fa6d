// One JSON line per request (SPEC section 8), to stdout, a file, or nowhere. A request
// never waits for the log: lines are buffered and written in batches, one write at a
// time; when the sink cannot keep up the buffer stays bounded and the lines that do not
// fit are dropped and counted (tandem_access_log_dropped_total). A file that was rotated
// away (renamed or removed, as logrotate does) is noticed within a second and reopened
// at its path; what is buffered is written out on stop.
import * as fs from 'node:fs';
import * as client from 'prom-client';
import { maxLineBytes, writeAccessLine } from './access-line';

export interface AccessEntry {
  start_time: string;
  method: string;
  path: string;
  protocol: string;
  response_code: number;
  response_flags: string;
  bytes_received: number;
  bytes_sent: number;
  duration_ms: number;
  upstream_service_time_ms: number | null;
  upstream_host: string | null;
  upstream_cluster: string | null;
  route_name: string | null;
  request_id: string | null;
  trace_id: string | null;
  authority: string | null;
  x_forwarded_for: string | null;
  user_agent: string | null;
  peer_principal: string | null;
  direction: 'inbound' | 'outbound';
}

/** null when access logging is off, so callers skip building entries at all */
export type AccessLog = ((e: AccessEntry) => void) | null;

/** Where batches go. One write is in flight at a time. */
export interface AccessLogSink {
  write(data: Buffer): Promise<void>;
  /** called at most once a second before a write: reopen if the file was rotated away */
  reopenIfMoved?(): Promise<void>;
  close(): Promise<void>;
}

export interface AccessLogWriterOptions {
  /** lines held while the sink is busy; beyond it they are dropped */
  maxBufferedLines?: number;
  /** how long a line may wait for its batch */
  flushDelayMs?: number;
  /** how often, at most, a file sink checks whether it was rotated */
  reopenCheckMs?: number;
  onDrop?: (lines: number) => void;
  onError?: (err: Error) => void;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { unref?(): unknown };
}

/** lines are written into buffers of this size (a longer line gets one of its own) */
const CHUNK_BYTES = 64 * 1024;

export class AccessLogWriter {
  // lines wait as bytes (access-line.ts encodes them in place), never as strings
  private chunks: Buffer[] = [];
  private chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;
  private lines = 0;
  private writing: Promise<void> | null = null;
  private timer: unknown = null;
  private lastCheck: number;
  private closed = false;
  dropped = 0;
  private readonly max: number;
  private readonly delay: number;
  private readonly checkMs: number;
  private readonly now: () => number;
  private readonly setTimer: NonNullable<AccessLogWriterOptions['setTimer']>;

  constructor(
    private readonly sink: AccessLogSink,
    private readonly o: AccessLogWriterOptions = {},
  ) {
    this.max = o.maxBufferedLines ?? 10_000;
    this.delay = o.flushDelayMs ?? 50;
    this.checkMs = o.reopenCheckMs ?? 1000;
    this.now = o.now ?? Date.now;
    this.setTimer = o.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.lastCheck = this.now();
  }

  /** Never blocks and never throws: a line is buffered, or dropped and counted. */
  write(e: AccessEntry): void {
    if (this.closed || this.lines >= this.max) return this.drop(1);
    const room = maxLineBytes(e);
    if (this.chunk.length - this.used < room) {
      if (this.used > 0) this.chunks.push(this.chunk.subarray(0, this.used));
      this.chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, room));
      this.used = 0;
    }
    this.used = writeAccessLine(this.chunk, this.used, e);
    this.lines++;
    if (this.timer === null && this.writing === null) {
      const t = this.setTimer(() => {
        this.timer = null;
        void this.flush();
      }, this.delay);
      t.unref?.();
      this.timer = t;
    }
  }

  /** Writes everything buffered so far; resolves once it is with the sink. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.lines === 0) return;
    // a copy: the current buffer's room is used again by the next lines
    const batch = { data: Buffer.concat([...this.chunks, this.chunk.subarray(0, this.used)]), lines: this.lines };
    this.chunks = [];
    this.used = 0;
    this.lines = 0;
    this.writing = this.writeBatch(batch).finally(() => {
      this.writing = null;
    });
    await this.writing;
    // what arrived meanwhile goes right away: it has waited a write already
    if (this.lines > 0) return this.flush();
  }

  /** Flushes what is buffered, then closes the sink; later lines are dropped. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.sink.close();
  }

  private async writeBatch(batch: { data: Buffer; lines: number }): Promise<void> {
    try {
      if (this.sink.reopenIfMoved && this.now() - this.lastCheck >= this.checkMs) {
        this.lastCheck = this.now();
        await this.sink.reopenIfMoved();
      }
      await this.sink.write(batch.data);
    } catch (err) {
      this.drop(batch.lines);
      this.o.onError?.(err as Error);
    }
  }

  private drop(n: number): void {
    this.dropped += n;
    this.o.onDrop?.(n);
  }
}

export function streamSink(out: NodeJS.WritableStream): AccessLogSink {
  return {
    write: (data) => new Promise((resolve, reject) => out.write(data, (err) => (err ? reject(err) : resolve()))),
    close: async () => undefined,
  };
}

/** A file opened for appending, reopened at its path when it was renamed or removed. */
export async function fileSink(path: string): Promise<AccessLogSink> {
  let fh = await fs.promises.open(path, 'a');
  return {
    write: async (data) => {
      await fh.write(data);
    },
    async reopenIfMoved() {
      const open = await fh.stat();
      const at = await fs.promises.stat(path).catch(() => null);
      if (at && at.ino === open.ino && at.dev === open.dev) return;
      const next = await fs.promises.open(path, 'a');
      const old = fh;
      fh = next;
      await old.close();
    },
    close: () => fh.close(),
  };
}

export interface OpenAccessLog {
  log: AccessLog;
  close(): Promise<void>;
}

/**
 * --access-log off|stdout|PATH. A file that cannot be opened is an error at start, naming
 * the flag; the drop counter goes on `registry` when one is given.
 */
export async function openAccessLog(where: string, o: { registry?: client.Registry; onError?: (err: Error) => void } & AccessLogWriterOptions = {}): Promise<OpenAccessLog> {
  if (where === 'off') return { log: null, close: async () => undefined };
  let sink: AccessLogSink;
  if (where === 'stdout') sink = streamSink(process.stdout);
  else {
    try {
      sink = await fileSink(where);
    } catch (err) {
      throw new Error(`--access-log: cannot open ${where}: ${(err as Error).message}`, { cause: err });
    }
  }
  const dropped = o.registry
    ? new client.Counter({ name: 'tandem_access_log_dropped_total', help: 'access-log lines dropped because the sink could not keep up (or failed)', registers: [o.registry] })
    : undefined;
  const writer = new AccessLogWriter(sink, { ...o, onDrop: (n) => dropped?.inc(n) });
  return { log: (e) => writer.write(e), close: () => writer.close() };
}
