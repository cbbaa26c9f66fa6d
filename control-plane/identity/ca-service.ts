// The CA service: a workload's CSR in, its certificate chain out, for exactly the
// identity its credential proves. The first request is authenticated by a bootstrap
// token (`authorization: Bearer …`), later ones by the workload's current certificate;
// the services the token allowed travel in the certificate, so renewals keep them.
import * as grpc from '@grpc/grpc-js';
import { AUTHORIZATION, type CertificateRequest, type CertificateResponse } from '../../proto/ca';
import type { CertificateAuthority } from '../../certs/ca';
import { parseCsr, CsrError } from '../../certs/csr';
import { verifyToken, TokenError } from '../../certs/token';
import { spiffeUri } from '../../certs/spiffe';
import { describeSvid } from '../../certs/svid';
import type { IssuedCert } from './cert-tracker';
import { CallRefused, peerIdentity } from './peer';

export interface CaServiceOptions {
  ca: CertificateAuthority;
  trustDomain: string;
  certTtlMs: number;
  now?: () => number;
  onIssued?(spiffeId: string, services: string[], via: 'token' | 'certificate', cert: IssuedCert): void;
  onRefused?(reason: string, message: string): void;
}

interface Credential {
  namespace: string;
  serviceAccount: string;
  services: string[];
  via: 'token' | 'certificate';
  /** serial of the certificate that authenticated a renewal */
  serial?: string;
}

type UnaryCall = grpc.ServerUnaryCall<CertificateRequest, CertificateResponse>;

export function caHandlers(o: CaServiceOptions): grpc.UntypedServiceImplementation {
  const now = o.now ?? Date.now;
  const createCertificate = (call: UnaryCall, callback: grpc.sendUnaryData<CertificateResponse>): void => {
    try {
      const cred = credential(call, o, now());
      const csr = parseCsrOrRefuse(call.request.csr ?? '');
      const want = spiffeUri({ trustDomain: o.trustDomain, namespace: cred.namespace, serviceAccount: cred.serviceAccount });
      if (csr.uris.length !== 1 || csr.uris[0] !== want || csr.dnsNames.length) {
        throw new CallRefused(
          grpc.status.PERMISSION_DENIED,
          'IDENTITY_MISMATCH',
          `the CSR asks for ${JSON.stringify([...csr.uris, ...csr.dnsNames])} but the ${cred.via} proves ${want}`,
        );
      }
      const asked = Number(call.request.validity_duration ?? 0) * 1000;
      const ttlMs = asked > 0 ? Math.min(asked, o.certTtlMs) : o.certTtlMs;
      const leaf = o.ca.signWorkload({ publicKey: csr.publicKey, spiffeId: want, services: cred.services, ttlMs });
      const issued = describeSvid(leaf);
      o.onIssued?.(want, cred.services, cred.via, { serial: issued.serial, notAfter: issued.notAfter, renewedFrom: cred.serial });
      callback(null, { cert_chain: [leaf, o.ca.rootPem] });
    } catch (err) {
      const r = err instanceof CallRefused ? err : new CallRefused(grpc.status.INTERNAL, 'INTERNAL', `signing failed: ${(err as Error).message}`, { cause: err });
      o.onRefused?.(r.reason, r.message);
      callback({ code: r.status, details: r.message });
    }
  };
  return { CreateCertificate: createCertificate as grpc.handleUnaryCall<unknown, unknown> };
}

// A valid certificate wins over a token: a workload renewing presents both only while
// it holds a current certificate, and that certificate carries the original binding.
function credential(call: UnaryCall, o: CaServiceOptions, at: number): Credential {
  const peer = peerIdentity(call, o.ca.rootPem, o.trustDomain, at);
  if (peer) return { namespace: peer.namespace, serviceAccount: peer.serviceAccount, services: peer.services, via: 'certificate', serial: peer.serial };
  const auth = call.metadata.get(AUTHORIZATION)[0];
  const token = typeof auth === 'string' ? /^Bearer\s+(\S+)$/i.exec(auth)?.[1] : undefined;
  if (!token) {
    throw new CallRefused(grpc.status.UNAUTHENTICATED, 'NO_CREDENTIAL', 'no credential: send a bootstrap token (authorization: Bearer …) or present a workload certificate');
  }
  try {
    const c = verifyToken(token, o.ca.rootPem, at);
    return { namespace: c.namespace, serviceAccount: c.serviceAccount, services: c.services, via: 'token' };
  } catch (err) {
    const code = err instanceof TokenError ? err.code : 'TOKEN_MALFORMED';
    throw new CallRefused(grpc.status.UNAUTHENTICATED, code, `bootstrap token refused: ${(err as Error).message}`, { cause: err });
  }
}

function parseCsrOrRefuse(pem: string): ReturnType<typeof parseCsr> {
  try {
    return parseCsr(pem);
  } catch (err) {
    if (!(err instanceof CsrError)) throw err;
    throw new CallRefused(grpc.status.INVALID_ARGUMENT, 'BAD_CSR', err.message, { cause: err });
  }
}
