// Asks the mesh CA for a certificate: a fresh CSR for the workload's own key, sent with
// the bootstrap token the first time and over the current certificate (mTLS) after.
import * as grpc from '@grpc/grpc-js';
import { caService, AUTHORIZATION, type CertificateRequest, type CertificateResponse } from '../../proto/ca';
import { CONTROL_PLANE_SNI } from '../../certs/ca';
import { buildCsr } from '../../certs/csr';
import type { WorkloadKey } from '../../certs/keys';

const CA_CLIENT = grpc.makeGenericClientConstructor(caService, 'CertificateService');

export type CaCredential = { token: string } | { certPem: string; keyPem: string };

export interface CaClientOptions {
  target: string;
  rootPem: string;
  timeoutMs?: number;
}

export class CaRequestError extends Error {
  readonly code = 'CA_REQUEST_FAILED';
  constructor(
    message: string,
    readonly grpcCode: grpc.status | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One CSR round trip on a channel of its own (a renewal must present the newest certificate). */
export async function requestCertificate(o: CaClientOptions, key: WorkloadKey, spiffeId: string, cred: CaCredential): Promise<string[]> {
  const creds =
    'token' in cred
      ? grpc.credentials.createSsl(Buffer.from(o.rootPem))
      : grpc.credentials.createSsl(Buffer.from(o.rootPem), Buffer.from(cred.keyPem), Buffer.from(cred.certPem));
  const client = new CA_CLIENT(o.target, creds, {
    'grpc.ssl_target_name_override': CONTROL_PLANE_SNI,
    'grpc.default_authority': CONTROL_PLANE_SNI,
    'grpc.use_local_subchannel_pool': 1,
  });
  const md = new grpc.Metadata();
  if ('token' in cred) md.set(AUTHORIZATION, `Bearer ${cred.token}`);
  const req: CertificateRequest = { csr: buildCsr(key, spiffeId) };
  try {
    const res = await new Promise<CertificateResponse>((resolve, reject) => {
      const call = client as unknown as {
        CreateCertificate(r: CertificateRequest, m: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: CertificateResponse) => void): void;
      };
      call.CreateCertificate(req, md, { deadline: Date.now() + (o.timeoutMs ?? 10_000) }, (err, r) => (err || !r ? reject(err ?? new Error('empty response')) : resolve(r)));
    });
    if (!res.cert_chain?.length) throw new CaRequestError('the CA answered with no certificate', undefined);
    return res.cert_chain;
  } catch (err) {
    if (err instanceof CaRequestError) throw err;
    const e = err as grpc.ServiceError;
    throw new CaRequestError(`certificate request to ${o.target} failed: ${e.details || e.message}`, e.code, { cause: err });
  } finally {
    client.close();
  }
}
