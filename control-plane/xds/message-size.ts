// State of the World sends every resource of a type in one DiscoveryResponse, and a sidecar
// takes at most MAX_XDS_MESSAGE_BYTES in one message: past it, its stream ends with
// RESOURCE_EXHAUSTED, over and over, while the config would look loaded here. So every
// response a config makes is measured before the config is accepted, and one too large is a
// load error naming the type and what fills it. Delta cuts a push too large for one message
// into parts (delta-split.ts): for VirtualHost, served over Delta only, what must fit is each
// one alone; the whole table is measured as RouteConfiguration, which goes in one piece.
import * as protobuf from 'protobufjs';
import { MAX_XDS_MESSAGE_BYTES } from '../../proto/limits';
import { TypeUrl, typeNameOf, type XdsTypeUrl } from '../../proto/type-urls';
import type { AnyMessage } from '../../proto/any';
import type { Resource, Snapshot } from './snapshot';
import { vhdsName } from './vhds';

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
 * The bytes a resource of `anyBytes` adds to a DeltaDiscoveryResponse (resources = 2): a
 * Resource with its name, a version (a 22-character digest, served-set.ts) and the Any.
 */
const deltaBytes = (name: string, anyBytes: number): number => fieldBytes(fieldBytes(22) + anyBytes + fieldBytes(Buffer.byteLength(name)));

export const deltaResourceBytes = (r: Resource): number => deltaBytes(r.name, resourceBytes(r.any));

const VIRTUAL_HOSTS_TAG = (2 << 3) | 2; // RouteConfiguration.virtual_hosts, length-delimited

/**
 * The VirtualHost resources (VHDS, vhds.ts) a whole route configuration splits into, each as
 * a DeltaDiscoveryResponse carries it, measured from the whole one's encoding: a virtual host
 * is the same message there but for its name, so nothing is encoded to measure it.
 */
export function vhdsSizes(rc: Resource): { name: string; bytes: number }[] {
  const vhosts = (rc.obj.virtual_hosts ?? []) as { name: string }[];
  const lengths: number[] = [];
  const reader = protobuf.Reader.create(rc.any.value);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag !== VIRTUAL_HOSTS_TAG) {
      reader.skipType(tag & 7);
      continue;
    }
    const len = reader.uint32();
    lengths.push(len);
    reader.skip(len);
  }
  return vhosts.map((vh, i) => {
    const name = vhdsName(rc.name, vh.name);
    const message = lengths[i] - fieldBytes(Buffer.byteLength(vh.name)) + fieldBytes(Buffer.byteLength(name));
    return { name, bytes: deltaBytes(name, fieldBytes(fieldBytes(Buffer.byteLength(TypeUrl.VirtualHost)) + fieldBytes(message))) };
  });
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
  // a VirtualHost push is cut into parts, but no part is smaller than one virtual host
  const response = o.type === TypeUrl.VirtualHost ? 'a VirtualHost response to a sidecar (one virtual host alone)' : `the ${typeName(o.type)} response to a sidecar`;
  return (
    `${response} would be ${num(o.bytes)} bytes, over the ${num(limit)}-byte limit ` +
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
  type Sized = { name: string; bytes: number; r?: Resource };
  const worst = new Map<XdsTypeUrl, { bytes: number; sized: () => Sized[] }>();
  const consider = (type: XdsTypeUrl, sized: () => Sized[], bytes: number) => {
    if (bytes + ENVELOPE_BYTES <= limit || bytes <= (worst.get(type)?.bytes ?? 0)) return;
    worst.set(type, { bytes, sized });
  };
  for (const { type, resources } of s.responses()) {
    let bytes = 0;
    for (const r of resources) bytes += resourceBytes(r.any);
    consider(type, () => resources.map((r) => ({ name: r.name, bytes: resourceBytes(r.any), r })), bytes);
    if (type !== TypeUrl.RouteConfiguration) continue;
    // The same routes split (VHDS, Delta only): a push of them larger than one message goes
    // in parts (delta-split.ts), so what must fit is each virtual host alone.
    for (const v of resources.flatMap(vhdsSizes)) consider(TypeUrl.VirtualHost, () => [v], v.bytes);
  }
  if (!worst.size) return;
  const over = [...worst].map(([type, { bytes, sized }]): OversizedResponse => {
    const all = sized();
    const largest = [...all]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, NAMED)
      .map(({ name, bytes, r }) => ({ name, bytes, detail: r && type === TypeUrl.RouteConfiguration ? routeDetail(r) : undefined }));
    return { type, bytes, count: all.length, largest };
  });
  throw new OversizedConfigError(over, limit);
}
