import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5s', 1500],
    ['1.1s', 1100],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['2m3.5s', 123_500],
    ['250us', 0.25],
    ['250µs', 0.25],
    ['1500000ns', 1.5],
    ['.5s', 500],
    ['0', 0],
    ['0s', 0],
  ])('%s -> %d ms', (s, ms) => expect(parseDuration(s)).toBe(ms));

  it.each(['', '10', '-1s', '1.5.5s', 's', '10 s', ' 10s', '1d', '1sec', '1m-5s', 'abc'])('rejects %j', (s) => {
    expect(() => parseDuration(s)).toThrow(/invalid duration/);
  });
});
