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
    // one protocol offered per connection: h2 sessions and HTTP/1.1 pools never get each other's
    return mesh.peer(host, port, meshIdentities(c, identity), c.sni || host, ['h2']);
  }
  return originated(c, host, port);
}

/** A mesh peer over mTLS as an HTTP/1.1 pool reaches it (ALPN http/1.1), when the cluster allows HTTP/1.1 at all. */
export function meshH1Target(c: ClusterTls | undefined, host: string, port: number, identity: string | undefined, mesh: MeshTlsSource | undefined): TlsTarget | undefined {
  if (c?.kind !== 'mesh' || !mesh || !meshAllowsH1(c)) return undefined;
  return mesh.peer(host, port, meshIdentities(c, identity), c.sni || host, ['http/1.1']);
}

/** The control plane lists `http/1.1` beside `h2` where a mesh cluster may carry HTTP/1.1 (not HTTP/2 or gRPC ports, not UPGRADE). */
export function meshAllowsH1(c: ClusterTls): boolean {
  return c.kind === 'mesh' && c.alpn.includes('http/1.1');
}

function meshIdentities(c: Extract<ClusterTls, { kind: 'mesh' }>, identity: string | undefined): string[] {
  return c.identities.length ? c.identities : identity ? [identity] : [];
}

function originated(c: Exclude<ClusterTls, { kind: 'mesh' }>, host: string, port: number): TlsTarget {
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
