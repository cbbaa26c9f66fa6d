// Random bytes drawn from a pool filled in bulk. Every request needs a trace id and a span
// id (24 bytes); asking the CSPRNG for each costs a call into OpenSSL (and a getpid) per id,
// about 10 µs a request on the benchmark, while one 4 KiB fill serves ~170 requests.
import { randomFillSync } from 'node:crypto';

/**
 * A source of n random bytes. The Buffer returned is a view into the pool, valid until the
 * next call: read it at once (hex it, copy it), never keep it.
 */
export type RandomBytes = (n: number) => Buffer;

export function randomPool(size = 4096, fill: (b: Buffer) => void = (b) => randomFillSync(b)): RandomBytes {
  const pool = Buffer.allocUnsafe(size);
  let at = size;
  return (n) => {
    if (n > size) {
      const big = Buffer.allocUnsafe(n);
      fill(big);
      return big;
    }
    if (at + n > size) {
      fill(pool);
      at = 0;
    }
    const view = pool.subarray(at, at + n);
    at += n;
    return view;
  };
}
