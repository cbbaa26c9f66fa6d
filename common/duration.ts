// Go/Istio-style durations ("500ms", "1.5s", "1h30m") to milliseconds.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // micro sign
  'μs': 1e-3, // Greek mu; Go accepts both
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

// Longer units first so "ms" is not read as "m" followed by garbage.
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a non-negative duration into milliseconds. Sub-millisecond parts are kept as
 * fractions (250us -> 0.25) rather than rounded to 0, which would read as "no timeout".
 */
export function parseDuration(s: string): number {
  if (typeof s !== 'string') throw new Error(`invalid duration ${String(s)}: must be a string`);
  if (s === '0') return 0;
  let ms = 0;
  let i = 0;
  while (i < s.length || i === 0) {
    PART.lastIndex = i;
    const m = PART.exec(s);
    if (!m) throw new Error(`invalid duration ${JSON.stringify(s)} (expected e.g. 500ms, 10s, 1m30s)`);
    ms += Number(m[1]) * UNIT_MS[m[2]];
    i = PART.lastIndex;
  }
  if (!Number.isFinite(ms)) throw new Error(`invalid duration ${JSON.stringify(s)}: too large`);
  // Trim binary noise such as 1.1s -> 1100.0000000000002 while keeping nanoseconds.
  return Math.round(ms * 1e6) / 1e6;
}
