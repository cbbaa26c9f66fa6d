// State of the World sends every resource of a type in one DiscoveryResponse, and a sidecar
// takes at most MAX_XDS_MESSAGE_BYTES in one message: past it, its stream ends with
// RESOURCE_EXHAUSTED, over and over, while the config would look loaded here. So every
// response a config makes is measured before the config is accepted, and one too large is a
// load error naming the type and what fills it.
import { MAX_XDS_MESSAGE_BYTES } from '../../proto/limits';
import { TypeUrl, typeNameOf, type XdsTypeUrl } from '../../proto/type-urls';
import type { AnyMessage } from '../../proto/any';
import type { Resource, Snapshot } from './snapshot';

/**
 * Kept for what a response carries besides its resources: a 12-character version, a nonce
 * (a counter), the type URL (under 100 bytes). Generous, so that the figure measured here
 * never falls short of the message gRPC counts.
 */
export const ENVELOPE_BYTES = 1024;

// Past this many, the list names the biggest contributors and stops.
const NAMED = 3;

function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    bytes++;
  }
  return bytes;
}

/** A length-delimited field (number under 16): its tag, its length, its bytes. */
const fieldBytes = (len: number): number => 1 + varintBytes(len) + len;

/** The bytes one resource adds to a DiscoveryResponse: repeated google.protobuf.Any resources = 2. */
export function resourceBytes(any: AnyMessage): number {
  return fieldBytes(fieldBytes(Buffer.byteLength(any.type_url)) + fieldBytes(any.value.length));
}

/**
 * The bytes one resource adds to a DeltaDiscoveryResponse (resources = 2): a Resource with
 * its name, a version (a 22-character digest, served-set.ts) and the Any.
 */
export function deltaResourceBytes(r: Resource): number {
  return fieldBytes(fieldBytes(22) + resourceBytes(r.any) + fieldBytes(Buffer.byteLength(r.name)));
}

export interface OversizedResponse {
  type: XdsTypeUrl;
  /** the resources' share of the message, envelope not included */
  bytes: number;
  count: number;
  /** the largest resources in it, largest first */
  largest: { name: string; bytes: number; detail?: string }[];
}

const typeName = (t: XdsTypeUrl): string => typeNameOf(t).split('.').pop()!;
const num = (n: number): string => n.toLocaleString('en-US');
const counted = (n: number, what: string): string => `${num(n)} ${what}${n === 1 ? '' : 's'}`;

function describe(o: OversizedResponse, limit: number): string {
  const what = o.largest.map((r) => `${JSON.stringify(r.name)} ${num(r.bytes)} bytes${r.detail ? ` (${r.detail})` : ''}`);
  const which = o.count === 1 ? `${typeName(o.type)} ${what[0]}` : `the largest of its ${counted(o.count, 'resource')}: ${what.join(', ')}`;
  return (
    `the ${typeName(o.type)} response to a sidecar would be ${num(o.bytes)} bytes, over the ${num(limit)}-byte limit ` +
    `of a sidecar's xDS message (${num(ENVELOPE_BYTES)} of it kept for the envelope); ${which}`
  );
}

/** A config one of whose xDS responses a sidecar could not receive. */
export class OversizedConfigError extends Error {
  readonly code = 'XDS_MESSAGE_TOO_LARGE';
  constructor(
    readonly responses: readonly OversizedResponse[],
    readonly limit: number,
  ) {
    super(responses.map((o) => describe(o, limit)).join('; '));
  }
}

// A route table is one resource; what makes it big is its virtual hosts, one per service.
function routeDetail(r: Resource): string | undefined {
  const vhosts = (r.obj.virtual_hosts ?? []) as { name: string; routes?: unknown[] }[];
  if (!vhosts.length) return undefined;
  const routes = (vh: { routes?: unknown[] }) => vh.routes?.length ?? 0;
  const top = [...vhosts].sort((a, b) => routes(b) - routes(a)).slice(0, NAMED);
  return `${counted(vhosts.length, 'virtual host')}, the most routes in ${top.map((vh) => `${vh.name} (${num(routes(vh))})`).join(', ')}`;
}

/**
 * Throws OversizedConfigError when any response the snapshot would send (one per type and
 * kind of caller) is over `limit` with the envelope added. Measured from the encodings the
 * snapshot already holds: nothing is encoded again.
 */
export function checkMessageSizes(s: Snapshot, limit = MAX_XDS_MESSAGE_BYTES): void {
  const worst = new Map<XdsTypeUrl, { bytes: number; resources: Resource[] }>();
  for (const { type, resources } of s.responses()) {
    let bytes = 0;
    // virtual hosts go only over Delta xDS (VHDS), each in its Resource
    const size = type === TypeUrl.VirtualHost ? deltaResourceBytes : (r: Resource) => resourceBytes(r.any);
    for (const r of resources) bytes += size(r);
    if (bytes + ENVELOPE_BYTES <= limit || bytes <= (worst.get(type)?.bytes ?? 0)) continue;
    worst.set(type, { bytes, resources });
  }
  if (!worst.size) return;
  const over = [...worst].map(([type, { bytes, resources }]): OversizedResponse => {
    const largest = resources
      .map((r) => ({ r, bytes: type === TypeUrl.VirtualHost ? deltaResourceBytes(r) : resourceBytes(r.any) }))
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, NAMED)
      .map(({ r, bytes }) => ({ name: r.name, bytes, detail: type === TypeUrl.RouteConfiguration ? routeDetail(r) : undefined }));
    return { type, bytes, count: resources.length, largest };
  });
  throw new OversizedConfigError(over, limit);
}
