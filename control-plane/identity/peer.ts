// Who is on the other end of a gRPC call: the workload certificate the TLS handshake
// verified against the mesh root, read back as an identity. A call over plaintext, or
// with no certificate, or with one the handshake did not accept, has no identity.
import * as grpc from '@grpc/grpc-js';
import { verifySvid, CertVerifyError } from '../../certs/svid';

export interface PeerIdentity {
  spiffeId: string;
  namespace: string;
  serviceAccount: string;
  /** the services the bootstrap token allowed, carried in the certificate */
  services: string[];
  certExpires: Date;
  serial: string;
}

/** A refusal that ends a call with a real gRPC status; `reason` is a fixed metric label. */
export class CallRefused extends Error {
  constructor(
    readonly status: grpc.status,
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface AuthContextCall {
  getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null;
}

/**
 * The verified peer of a call, or undefined when it presented no certificate the
 * handshake accepted. The TLS layer already checked the chain (it only reports
 * authorized peers); the SVID checks here add the SAN shape and trust domain.
 */
export function peerIdentity(call: AuthContextCall, rootPem: string, trustDomain: string, now = Date.now()): PeerIdentity | undefined {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  if (!raw) return undefined;
  try {
    const s = verifySvid(raw, rootPem, { now, trustDomain });
    return {
      spiffeId: s.spiffeId,
      namespace: s.id.namespace,
      serviceAccount: s.id.serviceAccount,
      services: s.services,
      certExpires: s.notAfter,
      serial: s.serial,
    };
  } catch (err) {
    const code = err instanceof CertVerifyError ? err.code : 'BAD_CERT';
    throw new CallRefused(grpc.status.UNAUTHENTICATED, code, `client certificate refused: ${(err as Error).message}`, { cause: err });
  }
}

/** End a call with a status the client sees (grpc-js turns an 'error' event into the call's status). */
export function refuse(call: { emit(event: 'error', err: Error): boolean }, r: CallRefused): void {
  call.emit('error', Object.assign(new Error(r.message), { code: r.status, details: r.message }));
}
