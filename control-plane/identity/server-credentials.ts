// TLS for the control plane's --listen port. Clients are asked for a certificate but
// not required to present one: a workload's first CA request has only its bootstrap
// token. grpc-js reports a peer certificate only when it chains to the mesh root, so
// ADS (which requires one) and renewals see verified peers or none.
import * as grpc from '@grpc/grpc-js';

class StaticCertificates implements grpc.experimental.CertificateProvider {
  constructor(
    private readonly root: Buffer,
    private readonly cert: Buffer,
    private readonly key: Buffer,
  ) {}
  // Delivered on the next tick, as grpc-js's own providers do: the server starts watching
  // for updates only after it subscribes, and would miss one delivered during subscribe.
  addCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    process.nextTick(() => l({ caCertificate: this.root }));
  }
  removeCaCertificateListener(): void {}
  addIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    process.nextTick(() => l({ certificate: this.cert, privateKey: this.key }));
  }
  removeIdentityCertificateListener(): void {}
}

export function meshServerCredentials(rootPem: string, certChainPem: string, keyPem: string): grpc.ServerCredentials {
  const p = new StaticCertificates(Buffer.from(rootPem), Buffer.from(certChainPem), Buffer.from(keyPem));
  // one provider for both roles: grpc-js's factory and constructor disagree on argument order
  return grpc.experimental.createCertificateProviderServerCredentials(p, p, false);
}
