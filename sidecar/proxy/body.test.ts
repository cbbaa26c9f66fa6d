import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { RequestBody, BodyNotReplayableError } from './body';

const read = (r: Readable): Promise<string> =>
  new Promise((resolve, reject) => {
    let s = '';
    r.on('data', (c: Buffer) => (s += c.toString()));
    r.once('end', () => resolve(s));
    r.once('error', reject);
    r.once('close', () => reject(new Error('closed before its end')));
  });

const tick = () => new Promise((r) => setImmediate(r));

describe('RequestBody', () => {
  it('replays the whole body to a second attempt, even one opened mid-way', async () => {
    const src = new PassThrough();
    const body = new RequestBody(src);
    const first = body.open();
    const firstText = read(first).catch(() => 'cut');
    src.write('hello ');
    await tick();
    const second = body.open(); // the first attempt is abandoned
    src.end('world');
    expect(await read(second)).toBe('hello world');
    expect(await firstText).not.toBe('hello world');
    expect(await read(body.open())).toBe('hello world');
  });

  it('stops being replayable past the limit, and streams through', async () => {
    const src = new PassThrough();
    const body = new RequestBody(src, 10);
    const r = body.open();
    const text = read(r);
    src.write('0123456789');
    src.end('abcdef');
    expect(await text).toBe('0123456789abcdef');
    expect(body.replayable).toBe(false);
    expect(() => body.open()).toThrow(BodyNotReplayableError);
  });

  it('fails readers with an error, never a clean end, when the client aborts mid-body', async () => {
    const src = new PassThrough();
    const body = new RequestBody(src);
    const r = body.open();
    const text = read(r);
    src.write('hel');
    await tick();
    src.destroy(new Error('reset by peer'));
    await expect(text).rejects.toThrow();
    const tap = body.tap(1 << 20);
    expect(tap).toBeUndefined();
  });

  it('treats a source closed before its end as truncated', async () => {
    const src = new Readable({ read() {} });
    const body = new RequestBody(src);
    const text = read(body.open());
    src.push('partial');
    await tick();
    src.destroy();
    await expect(text).rejects.toThrow(/aborted/);
  });

  it('applies back-pressure from the current attempt to the client, not from taps', async () => {
    const src = new PassThrough({ highWaterMark: 1024 });
    const body = new RequestBody(src, 1 << 20);
    const slow = body.open();
    slow.pause();
    const tap = body.tap(1 << 30)!;
    let tapped = 0;
    tap.on('data', (c: Buffer) => (tapped += c.length));
    const chunk = Buffer.alloc(16 * 1024, 'x');
    for (let i = 0; i < 16; i++) src.write(chunk);
    await tick();
    // nobody reads the attempt: the source is paused after its read-ahead
    expect(src.isPaused()).toBe(true);
    expect(tapped).toBeGreaterThan(0);
    slow.resume();
    src.end();
    let n = 0;
    await new Promise<void>((r) => {
      slow.on('data', (c: Buffer) => (n += c.length));
      slow.once('end', r);
    });
    expect(n).toBe(16 * chunk.length);
  });

  it('cuts a tap that falls too far behind, without touching the attempt', async () => {
    const src = new PassThrough();
    const body = new RequestBody(src, 1 << 20);
    const attempt = read(body.open());
    const tap = body.tap(1000)!;
    const tapError = new Promise((r) => tap.once('error', r));
    src.write(Buffer.alloc(800));
    src.write(Buffer.alloc(800));
    src.end(Buffer.alloc(10));
    expect(await tapError).toBeInstanceOf(Error);
    expect((await attempt).length).toBe(1610);
  });
});
