import { describe, expect, it } from 'vitest';
import { applyOps, endToEnd } from './headers';

describe('header operations', () => {
  it('sets (overwrites), adds (appends to what is there) and removes, in that order', () => {
    const h: Record<string, string | string[]> = { 'x-a': '1', 'x-b': '2', 'x-gone': 'y' };
    applyOps(h, {
      add: [
        ['x-a', 'set', true],
        ['x-b', 'more', false],
        ['x-new', 'n', false],
      ],
      remove: ['x-gone', 'x-new-not-there'],
    });
    expect(h).toEqual({ 'x-a': 'set', 'x-b': ['2', 'more'], 'x-new': 'n' });
  });

  it('does nothing without operations', () => {
    const h = { a: '1' };
    applyOps(h, undefined);
    expect(h).toEqual({ a: '1' });
  });

  it('removes after adding, so a route can replace a header it also strips', () => {
    const h: Record<string, string> = {};
    applyOps(h, { add: [['x-debug', 'on', true]], remove: ['x-debug'] });
    expect(h).toEqual({});
  });
});

describe('end-to-end headers', () => {
  it('drops hop-by-hop headers, those named in Connection, and pseudo-headers; keeps TE: trailers', () => {
    expect(
      endToEnd({ connection: 'keep-alive, x-hop', 'keep-alive': 'timeout=5', 'x-hop': '1', 'transfer-encoding': 'chunked', host: 'a', ':path': '/', te: 'trailers', 'x-keep': 'k' }),
    ).toEqual({ te: 'trailers', 'x-keep': 'k' });
  });
});
