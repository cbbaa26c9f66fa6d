// The ADS gRPC service, wired to protobufjs so both ends share one strict codec.
import type * as grpc from '@grpc/grpc-js';
import { decode, encode, type AnyMessage } from './any';
import { encodeDeltaDiscoveryResponse, encodeDiscoveryResponse } from './wire';

export interface XdsNode {
  id?: string;
  cluster?: string;
  metadata?: unknown;
  user_agent_name?: string;
  /** what the client can do beyond the protocol's baseline (node-meta.ts VHDS_FEATURE) */
  client_features?: string[];
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

/** envoy.service.discovery.v3.DeltaDiscoveryRequest (Incremental xDS) */
export interface DeltaDiscoveryRequest {
  node?: XdsNode;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  /** name -> version the client holds, sent on a stream's first request of a type */
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
}

/** envoy.service.discovery.v3.Resource, as a delta response carries it */
export interface DeltaResource {
  name: string;
  version: string;
  resource?: AnyMessage;
}

export interface DeltaDiscoveryResponse {
  system_version_info?: string;
  resources?: DeltaResource[];
  type_url: string;
  removed_resources?: string[];
  nonce: string;
}

/** A delta response whose resources were encoded beforehand (each as field 2), shared by the streams sent it. */
export interface PreparedDeltaResponse extends DeltaDiscoveryResponse {
  resourcesWire: Buffer;
}

const isPreparedDelta = (m: DeltaDiscoveryResponse): m is PreparedDeltaResponse =>
  (m as Partial<PreparedDeltaResponse>).resourcesWire !== undefined;

const DREQ = 'envoy.service.discovery.v3.DeltaDiscoveryRequest';
const DRES = 'envoy.service.discovery.v3.DeltaDiscoveryResponse';

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
  DeltaAggregatedResources: {
    path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: DeltaDiscoveryRequest) => Buffer.from(encode(DREQ, m)),
    requestDeserialize: (b: Buffer) => decode<DeltaDiscoveryRequest>(DREQ, b),
    responseSerialize: (m: DeltaDiscoveryResponse) =>
      isPreparedDelta(m)
        ? encodeDeltaDiscoveryResponse(m.system_version_info ?? '', m.resourcesWire, m.type_url, m.removed_resources ?? [], m.nonce)
        : Buffer.from(encode(DRES, m)),
    responseDeserialize: (b: Buffer) => decode<DeltaDiscoveryResponse>(DRES, b),
  },
} satisfies grpc.ServiceDefinition;

export type AdsStream = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;
export type AdsClientStream = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
export type DeltaStream = grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
export type DeltaClientStream = grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
