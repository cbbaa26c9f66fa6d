import { describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { adminServer } from './admin-http';

describe('adminServer', () => {
  it('takes at most its cap of connections at once: one more is closed, the ones taken still answer', async () => {
    const server = adminServer({ 'GET /ready': () => ({ body: 'ok' }) }, 3);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const open = () => new Promise<net.Socket>((r) => { const s = net.connect(port, '127.0.0.1', () => r(s)); s.on('error', () => undefined); });
    const held = [await open(), await open(), await open()];
    const over = await open();
    const closed = await new Promise<boolean>((r) => { over.once('close', () => r(true)); setTimeout(() => r(false), 2000); });
    expect(closed).toBe(true);
    const answer = await new Promise<string>((resolve) => {
      let out = '';
      held[0].on('data', (c) => (out += c));
      held[0].on('close', () => resolve(out));
      held[0].write('GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    for (const s of held) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
