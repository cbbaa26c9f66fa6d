// The hand-encoded access-log line is byte for byte what JSON.stringify makes of the entry,
// for plain values and for the strings a hostile request can put in a log (quotes,
// backslashes, control characters, non-ASCII, lone surrogates), and never outgrows the room
// it asked for.
import { describe, expect, it } from 'vitest';
import type { AccessEntry } from './access-log';
import { maxLineBytes, writeAccessLine } from './access-line';

const entry = (o: Partial<AccessEntry> = {}): AccessEntry => ({
  start_time: '2026-11-24T06:02:10.369Z',
  method: 'GET',
  path: '/',
  protocol: 'HTTP/1.1',
  response_code: 200,
  response_flags: '-',
  bytes_received: 0,
  bytes_sent: 11,
  duration_ms: 9,
  upstream_service_time_ms: null,
  upstream_host: '127.0.0.1:49880',
  upstream_cluster: 'outbound|80||backend.external',
  route_name: 'default',
  request_id: 'b0d4fe14-8234-4a57-889f-a5b943bddfa9',
  trace_id: null,
  authority: 'backend.external',
  x_forwarded_for: null,
  user_agent: null,
  peer_principal: 'spiffe://cluster.local/ns/default/sa/client',
  direction: 'outbound',
  ...o,
});

function line(e: AccessEntry): string {
  const room = maxLineBytes(e);
  // garbage around the line: what is not written must not show
  const buf = Buffer.alloc(room + 20, 0x78);
  const end = writeAccessLine(buf, 10, e);
  expect(end - 10).toBeLessThanOrEqual(room);
  return buf.subarray(10, end).toString('utf8');
}

describe('access line', () => {
  it('is JSON.stringify of the entry and a newline', () => {
    const e = entry();
    expect(line(e)).toBe(JSON.stringify(e) + '\n');
  });

  it('escapes what a request can carry, as JSON.stringify does', () => {
    const hostile = ['"quoted"', 'back\\slash', 'tab\tnew\nline\r', '\u0000\u001f\u007f', 'héllo wörld', '日本語', '😀', '\ud800 lone', '</script>', ''];
    for (const s of hostile) {
      const e = entry({ path: s, user_agent: s, authority: s, x_forwarded_for: s, method: s });
      expect(line(e)).toBe(JSON.stringify(e) + '\n');
    }
  });

  it('numbers that are not finite are null, as JSON.stringify has them', () => {
    const e = entry({ duration_ms: Number.NaN, bytes_sent: Number.POSITIVE_INFINITY, upstream_service_time_ms: 12.5 });
    expect(line(e)).toBe(JSON.stringify(e) + '\n');
  });

  it('a long line of characters that need escaping stays within its room', () => {
    const s = '\u0001'.repeat(5000) + '日'.repeat(5000);
    const e = entry({ path: s, user_agent: s });
    expect(JSON.parse(line(e))).toEqual(JSON.parse(JSON.stringify(e)));
  });
});
