// What one Delta push sends, cut into parts that each fit in one message (proto/delta-parts.ts):
// a sidecar refuses a message over its limit and its stream ends, so a push larger than that
// (the first VirtualHost response of a large route table: every virtual host at once) goes as
// several responses. The resources are cut by the served set, once for every stream sent them
// (served-set.ts deltaRuns); the names removed follow them, in the room the last part has left.
import type { Resource, ServedSet } from './served-set';

export interface DeltaPart {
  resources: Resource[];
  removed: string[];
}

function varintBytes(n: number): number {
  let bytes = 1;
  for (; n >= 0x80; n = Math.floor(n / 0x80)) bytes++;
  return bytes;
}

/** DeltaDiscoveryResponse.removed_resources (field 6): a tag, a length, the name. */
const removedBytes = (name: string): number => {
  const len = Buffer.byteLength(name);
  return 1 + varintBytes(len) + len;
};

/**
 * `changed` and `removed` as parts of at most `budget` bytes of resources and names each
 * (the envelope is the caller's to keep room for); at least one part, which may be empty (an
 * answer owed with nothing in it).
 */
export function splitDelta(set: ServedSet, changed: Resource[], removed: string[], budget: number): DeltaPart[] {
  const parts: DeltaPart[] = set.deltaRuns(changed, budget).map((resources) => ({ resources, removed: [] }));
  if (!removed.length) return parts.length ? parts : [{ resources: [], removed: [] }];
  let last = parts.at(-1);
  let room = last ? budget - set.deltaWire(last.resources).length : 0;
  for (const name of removed) {
    const b = removedBytes(name);
    if (!last || (b > room && (last.resources.length || last.removed.length))) {
      last = { resources: [], removed: [] };
      parts.push(last);
      room = budget;
    }
    last.removed.push(name);
    room -= b;
  }
  return parts;
}
