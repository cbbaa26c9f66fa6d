import { describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { H2Guard, ResetBudget } from './h2-guard';
import { frame, PREFACE } from '../../e2e/h2-frames';

const headers = (id: number) => frame(1, 0x5, id, Buffer.from([0x82, 0x86, 0x84]));
const rst = (id: number) => frame(3, 0, id, Buffer.from([0, 0, 0, 8]));
const data = (id: number, n: number) => frame(0, 0, id, Buffer.alloc(n, 0x61));

/** A guard over one end of a real socket pair; what it lets through, and whether it cut. */
async function guarded(burst: number, clock: () => number) {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  const raw = await accepted;
  let cuts = 0;
  const guard = new H2Guard(raw, burst, () => cuts++, clock);
  const through: Buffer[] = [];
  guard.on('data', (c: Buffer) => through.push(c));
  guard.on('error', () => undefined);
  const closed = new Promise<void>((r) => guard.once('close', () => r()));
  return {
    send: (b: Buffer) => new Promise<void>((r) => client.write(b, () => setTimeout(r, 50))),
    through: () => Buffer.concat(through),
    cuts: () => cuts,
    closed,
    close: () => {
      client.destroy();
      server.close();
    },
  };
}

describe('ResetBudget', () => {
  it('a flood (every stream reset early) spends it within twice the burst', () => {
    const b = new ResetBudget(10);
    let streams = 0;
    for (;;) {
      b.opened();
      streams++;
      if (!b.premature()) break;
    }
    expect(streams).toBeGreaterThan(10);
    expect(streams).toBeLessThanOrEqual(22);
  });

  it('a client that resets fewer than half its streams early never spends it, however long it lives', () => {
    const b = new ResetBudget(10);
    for (let i = 0; i < 100_000; i++) {
      b.opened();
      if (i % 3 === 0) expect(b.premature()).toBe(true);
    }
  });
});

describe('H2Guard', () => {
  it('passes a normal connection through untouched, frames split anywhere across reads', async () => {
    const g = await guarded(5, () => 0);
    const bytes = Buffer.concat([PREFACE, frame(4, 0, 0), headers(1), data(1, 300), headers(3), rst(3), headers(5)]);
    // byte by byte at first (a frame header split across reads), then the rest
    for (let i = 0; i < 40; i++) await g.send(bytes.subarray(i, i + 1));
    await g.send(bytes.subarray(40));
    expect(g.through().equals(bytes)).toBe(true);
    expect(g.cuts()).toBe(0);
    g.close();
  });

  it('a flood (streams reset in the read that opened them) is cut at its small fixed allowance, and none of that read goes through', async () => {
    const g = await guarded(5, () => 0);
    const before = Buffer.concat([PREFACE, frame(4, 0, 0)]);
    await g.send(before);
    const flood: Buffer[] = [];
    for (let id = 1; id < 200; id += 2) flood.push(headers(id), rst(id));
    await g.send(Buffer.concat(flood));
    await g.closed;
    expect(g.cuts()).toBe(1);
    expect(g.through().equals(before)).toBe(true);
    g.close();
  });

  it('resets in a later read, within a second, count against the premature-reset budget: a fan-out of cancels within it passes, past it the connection is cut', async () => {
    const g = await guarded(10, () => 0);
    const open = (from: number, n: number) => Buffer.concat(Array.from({ length: n }, (_, k) => headers(from + 2 * k)));
    const reset = (from: number, n: number) => Buffer.concat(Array.from({ length: n }, (_, k) => rst(from + 2 * k)));
    await g.send(Buffer.concat([PREFACE, open(1, 10)]));
    await g.send(reset(1, 10));
    expect(g.cuts()).toBe(0);
    await g.send(open(21, 20));
    await g.send(reset(21, 20));
    await g.closed;
    expect(g.cuts()).toBe(1);
    g.close();
  });

  it('a reset long after its stream opened is not premature', async () => {
    let now = 0;
    const g = await guarded(2, () => now);
    await g.send(Buffer.concat([PREFACE, headers(1), headers(3), headers(5), headers(7)]));
    now = 5000;
    await g.send(Buffer.concat([rst(1), rst(3), rst(5), rst(7)]));
    expect(g.cuts()).toBe(0);
    g.close();
  });
});
