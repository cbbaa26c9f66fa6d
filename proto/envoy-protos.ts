// The .proto files Tandem speaks, parsed from the package that ships them (@grpc/grpc-js-xds
// carries envoy-api, xds, googleapis and validate under deps/). Only the generator of
// envoy-descriptor.json and its drift test parse them: at run time load.ts reads that JSON,
// since parsing the text costs a process ~5 MB more heap and retains the files' text.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { protoDir } from './load';

/** Every file whose messages (and their imports') go into the descriptor. */
export const ENVOY_PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'tandem/ca/v1/ca.proto',
];

export const REGENERATE_COMMAND = 'npm run -s build && node dist/proto/gen-envoy-descriptor.js';

function includeDirs(): string[] {
  const depsDir = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  return [
    ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(depsDir, d)),
    // google/protobuf/*.proto (descriptor.proto among them) ship with protobufjs itself
    path.dirname(require.resolve('protobufjs/package.json')),
    protoDir,
  ];
}

/** The files parsed and resolved, field names as written (keepCase). */
export function parseEnvoyProtos(): protobuf.Root {
  const dirs = includeDirs();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    return dirs.map((d) => path.join(d, target)).find((p) => fs.existsSync(p)) ?? target;
  };
  r.loadSync(ENVOY_PROTO_FILES, { keepCase: true });
  r.resolveAll();
  return r;
}

/** The text of envoy-descriptor.json: indented, so that a regeneration's diff can be read. */
export function descriptorText(root: protobuf.Root): string {
  return `${JSON.stringify(root.toJSON(), null, 1)}\n`;
}
