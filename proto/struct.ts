// google.protobuf.Struct <-> plain JSON values, for the Node metadata a sidecar announces.
// protobufjs predefines the well-known types with camelCase field names, even under keepCase.
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type PbValue = Record<string, unknown>;

export function toStruct(obj: Record<string, Json>): { fields: Record<string, PbValue> } {
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, toValue(v)])) };
}

function toValue(v: Json): PbValue {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v) };
}

export function fromStruct(s: unknown): Record<string, Json> {
  const fields = (s as { fields?: Record<string, PbValue> } | undefined)?.fields ?? {};
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, fromValue(v)]));
}

function fromValue(v: PbValue): Json {
  if ('stringValue' in v) return String(v.stringValue);
  if ('numberValue' in v) return Number(v.numberValue);
  if ('boolValue' in v) return Boolean(v.boolValue);
  if ('structValue' in v) return fromStruct(v.structValue);
  if ('listValue' in v) return ((v.listValue as { values?: PbValue[] }).values ?? []).map(fromValue);
  return null;
}
