// Packing and unpacking google.protobuf.Any, strictly: protobufjs' fromObject drops
// unknown keys and unknown enum names without a word, which would turn a typo in a
// resource into a silently different config. Here both are errors naming the field.
import * as protobuf from 'protobufjs';
import { lookupType } from './load';
import { typeNameOf } from './type-urls';

export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

export class ProtoShapeError extends Error {
  readonly code = 'PROTO_SHAPE';
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

function check(type: protobuf.Type, obj: unknown, at: string): void {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new ProtoShapeError(at || type.name, `expected a ${type.fullName.slice(1)} object`);
  }
  if (type.fullName === '.google.protobuf.Any') {
    const a = obj as Record<string, unknown>;
    for (const k of Object.keys(a)) {
      if (k !== 'type_url' && k !== 'value') throw new ProtoShapeError(join(at, k), 'unknown field');
    }
    return;
  }
  for (const [key, val] of Object.entries(obj as Record<string, unknown>)) {
    const field = type.fields[key];
    const p = join(at, key);
    if (!field) throw new ProtoShapeError(p, `unknown field of ${type.fullName.slice(1)}`);
    if (val === undefined || val === null) continue;
    field.resolve();
    if (field.map) {
      if (typeof val !== 'object') throw new ProtoShapeError(p, 'expected a map');
      for (const [mk, mv] of Object.entries(val as Record<string, unknown>)) checkValue(field, mv, `${p}[${mk}]`);
    } else if (field.repeated) {
      if (!Array.isArray(val)) throw new ProtoShapeError(p, 'expected a list');
      val.forEach((v, i) => checkValue(field, v, `${p}[${i}]`));
    } else {
      checkValue(field, val, p);
    }
  }
}

function checkValue(field: protobuf.Field, val: unknown, at: string): void {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) {
    if (val instanceof Uint8Array) return;
    check(rt, val, at);
  } else if (rt instanceof protobuf.Enum) {
    if (typeof val === 'string' && !(val in rt.values)) {
      throw new ProtoShapeError(at, `unknown ${rt.name} value ${JSON.stringify(val)}`);
    }
    if (typeof val === 'number' && !Object.values(rt.values).includes(val)) {
      throw new ProtoShapeError(at, `unknown ${rt.name} number ${val}`);
    }
  }
}

const join = (at: string, key: string) => (at ? `${at}.${key}` : key);

/** Encode a plain (snake_case) object as the named message, rejecting unknown fields and enum names. */
export function encode(typeName: string, obj: object): Uint8Array {
  const type = lookupType(typeName);
  check(type, obj, '');
  return type.encode(type.fromObject(obj)).finish();
}

/** Decode bytes into a plain object: enums as names, 64-bit ints as numbers, defaults omitted. */
export function decode<T = Record<string, unknown>>(typeName: string, bytes: Uint8Array): T {
  const type = lookupType(typeName);
  return type.toObject(type.decode(bytes), { enums: String, longs: Number, bytes: Buffer as never, defaults: false }) as T;
}

export function pack(typeUrl: string, obj: object): AnyMessage {
  return { type_url: typeUrl, value: encode(typeNameOf(typeUrl), obj) };
}

export function unpack<T = Record<string, unknown>>(any: AnyMessage, expectedTypeUrl?: string): T {
  if (expectedTypeUrl && any.type_url !== expectedTypeUrl) {
    throw new ProtoShapeError('type_url', `expected ${expectedTypeUrl}, got ${any.type_url}`);
  }
  return decode<T>(typeNameOf(any.type_url), any.value);
}
