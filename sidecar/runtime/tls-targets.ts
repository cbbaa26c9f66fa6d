// From a cluster's TLS model to how a dispatcher reaches one of its endpoints. Mesh
// endpoints are checked against the identity EDS says registered them; TLS originated
// to outside services reads its files when it connects (they may be renewed on disk).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { TlsTarget } from '../proxy/dispatch';
import type { ClusterTls } from '../../proto/decode/model';

/** The sidecar's side of mesh mTLS (its certificate, the mesh root); see identity/mesh-tls.ts. */
export interface MeshTlsSource {
  peer(host: string, port: number, identities: string[], sni: string, alpn?: string[]): TlsTarget;
}

export function tlsTarget(c: ClusterTls | undefined, host: string, port: number, identity: string | undefined, mesh: MeshTlsSource | undefined): TlsTarget | undefined {
  if (!c) return undefined;
  if (c.kind === 'mesh') {
    if (!mesh) return undefined;
    const ids = c.identities.length ? c.identities : identity ? [identity] : [];
    return mesh.peer(host, port, ids, c.sni || host, c.alpn.length ? c.alpn : ['h2']);
  }
  const servername = c.sni || (net.isIP(host) ? undefined : host);
  const key = `${host}:${port}|origination|${servername ?? ''}|${c.caFile ?? ''}|${c.certFile ?? ''}|${c.verify}|${c.dnsNames.join(',')}`;
  return {
    key,
    options: () => ({
      host,
      port,
      servername,
      ALPNProtocols: c.alpn.length ? c.alpn : undefined,
      rejectUnauthorized: c.verify,
      ...(c.caFile ? { ca: fs.readFileSync(c.caFile) } : {}),
      ...(c.certFile && c.keyFile ? { cert: fs.readFileSync(c.certFile), key: fs.readFileSync(c.keyFile) } : {}),
      checkServerIdentity: (name: string, cert: tls.PeerCertificate) => {
        if (!c.verify) return undefined;
        if (!c.dnsNames.length) return tls.checkServerIdentity(servername ?? name, cert);
        // subjectAltNames: any one of them will do, as in Istio
        for (const n of c.dnsNames) if (!tls.checkServerIdentity(n, cert)) return undefined;
        return new Error(`server certificate matches none of ${c.dnsNames.join(', ')}`);
      },
    }),
  };
}
