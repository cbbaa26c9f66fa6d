// One place that loads the Envoy v3 API from the package that ships it
// (@grpc/grpc-js-xds carries envoy-api, xds, googleapis and validate under deps/).
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

const depsDir = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const includeDirs = [
  ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(depsDir, d)),
  // google/protobuf/*.proto (descriptor.proto among them) ship with protobufjs itself
  path.dirname(require.resolve('protobufjs/package.json')),
];
const localDir = __dirname.endsWith(path.join('dist', 'proto')) ? path.join(__dirname, '..', '..', 'proto') : __dirname;

const files = [
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

let root: protobuf.Root | undefined;

/** The protobufjs Root holding every message Tandem speaks, loaded once per process. */
export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of [...includeDirs, localDir]) {
      const p = path.join(dir, target);
      try {
        require('node:fs').accessSync(p);
        return p;
      } catch {
        /* try the next include dir */
      }
    }
    return target;
  };
  r.loadSync(files, { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

export function lookupType(name: string): protobuf.Type {
  return envoyRoot().lookupType(name);
}
