// Writes proto/envoy-descriptor.json from the .proto files envoy-protos.ts lists; run after
// changing that list or upgrading @grpc/grpc-js-xds or protobufjs (envoy-descriptor.test.ts
// fails until then).
import * as fs from 'node:fs';
import { descriptorText, parseEnvoyProtos } from './envoy-protos';
import { descriptorPath } from './load';

fs.writeFileSync(descriptorPath, descriptorText(parseEnvoyProtos()));
console.log(`wrote ${descriptorPath}`);
