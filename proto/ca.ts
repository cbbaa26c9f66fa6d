// The mesh CA's gRPC service (proto/tandem/ca/v1/ca.proto), on the same strict codec as ADS.
import type * as grpc from '@grpc/grpc-js';
import { decode, encode } from './any';

export interface CertificateRequest {
  csr?: string;
  validity_duration?: number;
}

export interface CertificateResponse {
  cert_chain: string[];
}

const REQ = 'tandem.ca.v1.CertificateRequest';
const RES = 'tandem.ca.v1.CertificateResponse';

export const caService = {
  CreateCertificate: {
    path: '/tandem.ca.v1.CertificateService/CreateCertificate',
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: CertificateRequest) => Buffer.from(encode(REQ, m)),
    requestDeserialize: (b: Buffer) => decode<CertificateRequest>(REQ, b),
    responseSerialize: (m: CertificateResponse) => Buffer.from(encode(RES, m)),
    responseDeserialize: (b: Buffer) => decode<CertificateResponse>(RES, b),
  },
} satisfies grpc.ServiceDefinition;

/** gRPC metadata key of the bootstrap token, as Istio sends its JWT: `Bearer <token>`. */
export const AUTHORIZATION = 'authorization';
