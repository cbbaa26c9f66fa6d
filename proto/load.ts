// One place that loads the Envoy v3 API (and Tandem's CA service) for both the control plane
// and the sidecar, from a JSON descriptor generated from the .proto files (envoy-protos.ts):
// building the types from JSON leaves ~5 MB less heap than parsing the .proto text did, and
// does not keep that text alive.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

/** proto/ in the source tree, whether this runs from source or from dist/proto. */
export const protoDir = __dirname.endsWith(path.join('dist', 'proto')) ? path.join(__dirname, '..', '..', 'proto') : __dirname;
export const descriptorPath = path.join(protoDir, 'envoy-descriptor.json');

let root: protobuf.Root | undefined;

/** The protobufjs Root holding every message Tandem speaks, loaded once per process. */
export function envoyRoot(): protobuf.Root {
  if (root) return root;
  let json: protobuf.INamespace;
  try {
    json = JSON.parse(fs.readFileSync(descriptorPath, 'utf8')) as protobuf.INamespace;
  } catch (e) {
    throw new Error(`cannot read the Envoy API descriptor ${descriptorPath}: ${(e as Error).message}`, { cause: e });
  }
  const r = protobuf.Root.fromJSON(json);
  r.resolveAll();
  root = r;
  return r;
}

const types = new Map<string, protobuf.Type>();

/** A message type by its full name, looked up once: a lookup walks the namespaces, and every xDS request and resource is coded through here (any.ts). */
export function lookupType(name: string): protobuf.Type {
  let t = types.get(name);
  if (!t) types.set(name, (t = envoyRoot().lookupType(name)));
  return t;
}
