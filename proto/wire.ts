// A DiscoveryResponse written by hand from resources encoded once: the same resource goes
// to every stream that subscribes to it, so it is encoded once per version (the `Any`, as
// field 2 of DiscoveryResponse) and each response only adds its version, type and nonce.
import type { AnyMessage } from './any';

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

function bytesField(field: number, value: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(value.length), value]);
}

const stringField = (field: number, s: string): Buffer => (s ? bytesField(field, Buffer.from(s, 'utf8')) : Buffer.alloc(0));

/** google.protobuf.Any { type_url = 1; value = 2 } */
const anyMessage = (any: AnyMessage): Buffer => Buffer.concat([stringField(1, any.type_url), bytesField(2, any.value)]);

/** The Any as DiscoveryResponse.resources (field 2). */
export function encodeResourceField(any: AnyMessage): Buffer {
  return bytesField(2, anyMessage(any));
}

/** envoy.service.discovery.v3.DiscoveryResponse: version_info 1, resources 2, type_url 4, nonce 5. */
export function encodeDiscoveryResponse(version: string, resources: Buffer, typeUrl: string, nonce: string): Buffer {
  return Buffer.concat([stringField(1, version), resources, stringField(4, typeUrl), stringField(5, nonce)]);
}

/** envoy.service.discovery.v3.Resource { version 1, resource 2 (Any), name 3 } as DeltaDiscoveryResponse.resources (field 2). */
export function encodeDeltaResourceField(name: string, version: string, any: AnyMessage): Buffer {
  return bytesField(2, Buffer.concat([stringField(1, version), bytesField(2, anyMessage(any)), stringField(3, name)]));
}

/** DeltaDiscoveryResponse: system_version_info 1, resources 2, type_url 4, nonce 5, removed_resources 6. */
export function encodeDeltaDiscoveryResponse(version: string, resources: Buffer, typeUrl: string, removed: string[], nonce: string): Buffer {
  return Buffer.concat([
    stringField(1, version),
    resources,
    stringField(4, typeUrl),
    stringField(5, nonce),
    ...removed.map((n) => bytesField(6, Buffer.from(n, 'utf8'))),
  ]);
}
