// Polls until a condition holds: for tests, the benchmark and the demo, which start real
// processes and must wait for what they cannot be told (a port ready, a config applied).
// A throw from the condition counts as "not yet"; the last one is named on a timeout.

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`, { cause: last });
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
