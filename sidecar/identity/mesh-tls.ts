// TLS between sidecars: TLS 1.3 only, both sides present their workload certificate,
// both trust only the mesh root. The server context is swapped on every rotation; the
// client context is rebuilt then too, so new handshakes use the new certificate at once
// while connections already up (and their requests) carry on.
import * as tls from 'node:tls';
import { uriSanOf } from '../../certs/svid';
import type { HeldCert, WorkloadIdentity } from './workload-identity';
import type { TlsTarget } from '../proxy/dispatch';


const TLS13 = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export class PeerIdentityError extends Error {
  readonly code = 'PEER_IDENTITY_MISMATCH';
}

export class MeshTls {
  readonly server: tls.Server;
  private client?: tls.SecureContext;

  constructor(
    identity: WorkloadIdentity,
    private readonly rootPem: string,
  ) {
    this.server = tls.createServer({
      ...TLS13,
      requestCert: true,
      rejectUnauthorized: true,
      ca: rootPem,
      ALPNProtocols: ['h2', 'http/1.1'],
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    if (identity.current) this.apply(identity.current);
    identity.on('rotated', (c: HeldCert) => this.apply(c));
  }

  get ready(): boolean {
    return this.client !== undefined;
  }

  private apply(c: HeldCert): void {
    const opts = { ...TLS13, key: c.key.keyPem, cert: c.chainPem, ca: this.rootPem };
    this.server.setSecureContext(opts);
    this.client = tls.createSecureContext(opts);
  }

  /**
   * A peer sidecar that must prove one of `identities` (its SPIFFE ID from EDS, or the
   * DestinationRule's subjectAltNames); an empty list accepts any mesh identity.
   */
  peer(host: string, port: number, identities: string[], sni: string, alpn: string[] = ['h2']): TlsTarget {
    return {
      key: `${host}:${port}|${identities.join(',')}|${alpn.join(',')}`,
      options: () => {
        if (!this.client) throw new Error('no workload certificate yet');
        return {
          ...TLS13,
          host,
          port,
          secureContext: this.client,
          servername: sni,
          ALPNProtocols: alpn,
          checkServerIdentity: (_host, cert) => checkPeer(cert, identities),
        };
      },
    };
  }
}

/** The peer's URI SAN must be the identity it is expected to have: an endpoint lying about its address fails here. */
export function checkPeer(cert: tls.PeerCertificate, identities: string[]): Error | undefined {
  const got = uriSanOf(cert);
  if (!got) return new PeerIdentityError('peer certificate has no SPIFFE ID');
  if (identities.length && !identities.includes(got)) {
    return new PeerIdentityError(`peer presented ${got}, expected ${identities.join(' or ')}`);
  }
  return undefined;
}
