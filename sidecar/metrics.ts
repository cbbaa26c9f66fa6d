// The sidecar's own figures, under the tandem_ prefix (Istio's request metrics join
// them with the observability work).
import * as client from 'prom-client';

export class SidecarMetrics {
  readonly registry = new client.Registry();
  readonly certExpiry = new client.Gauge({
    name: 'tandem_certificate_expiry_timestamp_seconds',
    help: 'when the workload certificate in use expires (Unix seconds)',
    registers: [this.registry],
  });
  readonly rotations = new client.Counter({
    name: 'tandem_certificate_rotations_total',
    help: 'workload certificates received (the first one and every renewal)',
    registers: [this.registry],
  });
  readonly inboundRefused = new client.Counter({
    name: 'tandem_inbound_connections_refused_total',
    help: 'connections the inbound port refused: plaintext to a STRICT workload, or a failed mTLS handshake',
    labelNames: ['reason'],
    registers: [this.registry],
  });
}
