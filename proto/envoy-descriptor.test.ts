import * as fs from 'node:fs';
import * as protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { descriptorText, parseEnvoyProtos, REGENERATE_COMMAND } from './envoy-protos';
import { descriptorPath, envoyRoot } from './load';

const parsed = parseEnvoyProtos();

/**
 * What decoding and encoding depend on, one line per field, oneof, enum and method. Extension
 * fields added to google.protobuf.*Options are a set: their order follows load order, which
 * differs between parsing and fromJSON, and nothing encodes those options. (Enum values'
 * options are not compared: Enum.fromJSON drops them, and nothing reads them.)
 */
function shape(root: protobuf.Root): { ordered: string[]; extensions: string[] } {
  const ordered: string[] = [];
  const extensions: string[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) {
        for (const f of o.fieldsArray) {
          const line = [o.fullName, f.name, f.id, f.type, f.required, f.optional, f.repeated, f.packed, f.map, f instanceof protobuf.MapField ? f.keyType : '',
            f.long, String(f.defaultValue), f.partOf?.name, f.resolvedType?.fullName, f.hasPresence].join('|');
          (f.name.startsWith('.') ? extensions : ordered).push(line);
        }
        for (const one of o.oneofsArray) ordered.push(`${o.fullName}#${one.name}:${one.oneof.join(',')}`);
      } else if (o instanceof protobuf.Enum) {
        ordered.push(`${o.fullName}=${JSON.stringify(o.values)}`);
      } else if (o instanceof protobuf.Service) {
        for (const m of o.methodsArray) {
          ordered.push([o.fullName, m.name, m.resolvedRequestType?.fullName, m.resolvedResponseType?.fullName, m.requestStream, m.responseStream].join('|'));
        }
      }
      if (o instanceof protobuf.Namespace) walk(o);
    }
  };
  walk(root);
  return { ordered, extensions: extensions.sort() };
}

describe('the Envoy API descriptor', () => {
  it('is what the .proto files generate', () => {
    const committed = fs.readFileSync(descriptorPath, 'utf8');
    if (committed !== descriptorText(parsed)) {
      expect.fail(`${descriptorPath} is not what proto/envoy-protos.ts's .proto files generate: run \`${REGENERATE_COMMAND}\``);
    }
  });

  it('loads the same messages, fields, enums and services as parsing the .proto files', () => {
    const fromJson = shape(envoyRoot());
    const fromText = shape(parsed);
    expect(fromJson.ordered.length).toBeGreaterThan(2000);
    expect(fromJson.ordered).toEqual(fromText.ordered);
    expect(fromJson.extensions).toEqual(fromText.extensions);
  });
});
