// The sidecar's metrics: Istio's standard request and TCP metrics, with Istio's names,
// labels and bucket boundaries (so Istio's dashboards and PromQL answer as they do for
// Envoy), and the proxy's own figures under the tandem_ prefix.
import * as client from 'prom-client';

import { BYTE_BUCKETS, REQUEST_LABELS, TCP_LABELS } from './istio-labels';
import { RequestSeries } from './request-series';

export { BYTE_BUCKETS, DURATION_BUCKETS_MS, REQUEST_LABELS, TCP_LABELS, type RequestLabels, type TcpLabels } from './istio-labels';

export class SidecarMetrics {
  readonly registry = new client.Registry();
  private readonly r = [this.registry];
  private readonly req = [...REQUEST_LABELS];
  private readonly tcp = [...TCP_LABELS];

  /** istio_requests_total and the duration and size histograms */
  readonly requestSeries = new RequestSeries(this.r);

  // Istio's names are istio_tcp_connections_{opened,closed}_total; the SPEC's shorter
  // istio_tcp_{opened,closed}_total are exported beside them, with the same values.
  readonly tcpOpened = new client.Counter({ name: 'istio_tcp_connections_opened_total', help: 'downstream connections opened', labelNames: this.tcp, registers: this.r });
  readonly tcpClosed = new client.Counter({ name: 'istio_tcp_connections_closed_total', help: 'downstream connections closed', labelNames: this.tcp, registers: this.r });
  readonly tcpOpenedShort = new client.Counter({ name: 'istio_tcp_opened_total', help: 'downstream connections opened (SPEC name of istio_tcp_connections_opened_total)', labelNames: this.tcp, registers: this.r });
  readonly tcpClosedShort = new client.Counter({ name: 'istio_tcp_closed_total', help: 'downstream connections closed (SPEC name of istio_tcp_connections_closed_total)', labelNames: this.tcp, registers: this.r });
  readonly tcpSent = new client.Counter({ name: 'istio_tcp_sent_bytes_total', help: 'bytes sent to downstream connections', labelNames: this.tcp, registers: this.r });
  readonly tcpReceived = new client.Counter({ name: 'istio_tcp_received_bytes_total', help: 'bytes received from downstream connections', labelNames: this.tcp, registers: this.r });

  readonly certExpiry = new client.Gauge({
    name: 'tandem_certificate_expiry_timestamp_seconds',
    help: 'when the workload certificate in use expires (Unix seconds)',
    registers: this.r,
    // with --concurrency, the worker whose certificate expires first
    aggregator: 'min',
  });
  readonly rotations = new client.Counter({
    name: 'tandem_certificate_rotations_total',
    help: 'workload certificates received (the first one and every renewal)',
    registers: this.r,
  });
  readonly inboundRefused = new client.Counter({
    name: 'tandem_inbound_connections_refused_total',
    help: 'connections the inbound port refused: plaintext to a STRICT workload, or a failed mTLS handshake',
    labelNames: ['reason'],
    registers: this.r,
  });
  readonly downstreamLimited = new client.Counter({
    name: 'tandem_downstream_connections_limited_total',
    help: 'downstream connections a listener refused or closed for a limit: over its connection cap (limit), silent past the headers timeout (silent), resetting streams as they open (rapid_reset)',
    labelNames: ['listener', 'reason'],
    registers: this.r,
  });
  readonly retries = new client.Counter({
    name: 'tandem_upstream_retries_total',
    help: 'attempts beyond the first, per upstream cluster',
    labelNames: ['cluster'],
    registers: this.r,
  });
  readonly timeouts = new client.Counter({
    name: 'tandem_upstream_timeouts_total',
    help: 'requests answered 504 UT because the route timeout ran out, per upstream cluster',
    labelNames: ['cluster'],
    registers: this.r,
  });
  readonly spansDropped = new client.Counter({
    name: 'tandem_spans_dropped_total',
    help: 'spans not exported over OTLP: the export queue was full (queue_full), or the collector did not take their batch (export_failed)',
    labelNames: ['reason'],
    registers: this.r,
  });
  readonly xdsConnected = new client.Gauge({
    name: 'tandem_xds_connected',
    help: '1 while the ADS stream to the control plane is up',
    registers: this.r,
    // with --concurrency: 1 only when every worker is connected
    aggregator: 'min',
  });
  readonly xdsAcks = new client.Counter({ name: 'tandem_xds_acks_total', help: 'xDS responses accepted, per type', labelNames: ['type'], registers: this.r });
  readonly xdsNacks = new client.Counter({ name: 'tandem_xds_nacks_total', help: 'xDS responses refused (NACKed), per type', labelNames: ['type'], registers: this.r });
  readonly xdsLastAck = new client.Gauge({
    name: 'tandem_xds_last_ack_timestamp_seconds',
    help: 'when a response of this type was last accepted (Unix seconds)',
    labelNames: ['type'],
    registers: this.r,
    aggregator: 'max',
  });
  readonly xdsLastNack = new client.Gauge({
    name: 'tandem_xds_last_nack_timestamp_seconds',
    help: 'when a response of this type was last refused (Unix seconds)',
    labelNames: ['type'],
    registers: this.r,
    aggregator: 'max',
  });

  /** Counters kept elsewhere (the circuit breakers' and outlier detection's tallies), read at scrape time. */
  clusterTallies(read: () => Iterable<{ name: string; overflows: number; ejections: number }>): void {
    const tally = (name: string, help: string, pick: (c: { overflows: number; ejections: number }) => number) =>
      new client.Counter({
        name,
        help,
        labelNames: ['cluster'],
        registers: this.r,
        collect() {
          this.reset();
          for (const c of read()) {
            const n = pick(c);
            if (n) this.inc({ cluster: c.name }, n);
          }
        },
      });
    tally('tandem_upstream_overflows_total', 'requests refused 503 UO by the cluster connection pool limits', (c) => c.overflows);
    tally('tandem_outlier_ejections_total', 'endpoints ejected by outlier detection', (c) => c.ejections);
  }
}
