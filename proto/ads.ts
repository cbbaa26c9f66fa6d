// The ADS gRPC service, wired to protobufjs so both ends share one strict codec.
import type * as grpc from '@grpc/grpc-js';
import { decode, encode, type AnyMessage } from './any';
import { encodeDiscoveryResponse } from './wire';

export interface XdsNode {
  id?: string;
  cluster?: string;
  metadata?: unknown;
  user_agent_name?: string;
}

export interface DiscoveryRequest {
  version_info?: string;
  node?: XdsNode;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

export interface DiscoveryResponse {
  version_info: string;
  resources: AnyMessage[];
  type_url: string;
  nonce: string;
}

/**
 * A response whose resources were encoded beforehand (proto/wire.ts), shared by every
 * stream it goes to; `resources` stays for in-process readers (tests, debug views).
 */
export interface PreparedResponse extends DiscoveryResponse {
  /** `resources`, each encoded as DiscoveryResponse field 2, concatenated */
  resourcesWire: Buffer;
}

const isPrepared = (m: DiscoveryResponse): m is PreparedResponse => (m as Partial<PreparedResponse>).resourcesWire !== undefined;

const REQ = 'envoy.service.discovery.v3.DiscoveryRequest';
const RES = 'envoy.service.discovery.v3.DiscoveryResponse';

export const adsService = {
  StreamAggregatedResources: {
    path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: DiscoveryRequest) => Buffer.from(encode(REQ, m)),
    requestDeserialize: (b: Buffer) => decode<DiscoveryRequest>(REQ, b),
    responseSerialize: (m: DiscoveryResponse) =>
      isPrepared(m) ? encodeDiscoveryResponse(m.version_info, m.resourcesWire, m.type_url, m.nonce) : Buffer.from(encode(RES, m)),
    responseDeserialize: (b: Buffer) => decode<DiscoveryResponse>(RES, b),
  },
} satisfies grpc.ServiceDefinition;

export type AdsStream = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
export type AdsClientStream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
