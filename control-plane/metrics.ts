// Control-plane figures, under the tandem_ prefix.
import * as client from 'prom-client';
import { shortName, TypeUrl, type XdsTypeUrl } from '../proto/type-urls';

/**
 * The `type` label of the xDS figures: a VirtualHost (split routes, VHDS) counts as RDS, route
 * discovery, so that dashboards and alerts on RDS pushes and convergence see a route edit
 * whichever form a sidecar takes its routes in; /debug/syncz tells VHDS apart.
 */
export const metricType = (t: XdsTypeUrl): string => (t === TypeUrl.VirtualHost ? 'RDS' : shortName[t]);

export class ControlPlaneMetrics {
  readonly registry = new client.Registry();
  readonly connectedProxies = new client.Gauge({ name: 'tandem_connected_proxies', help: 'xDS streams open now', registers: [this.registry] });
  readonly pushes = new client.Counter({
    name: 'tandem_xds_pushes_total',
    help: 'xDS responses sent, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly nacks = new client.Counter({
    name: 'tandem_xds_nacks_total',
    help: 'xDS responses rejected by a client, by type',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly convergence = new client.Histogram({
    name: 'tandem_xds_push_convergence_seconds',
    help: 'time from a config file change or endpoint event to the client acknowledging the push it caused (first answers to a subscription not counted)',
    labelNames: ['type'],
    // up to a minute: a mesh whose pushes take that long must show it, not pile into +Inf
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60],
    registers: [this.registry],
  });
  readonly configReloads = new client.Counter({
    name: 'tandem_config_reloads_total',
    help: 'config loads, by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly configValid = new client.Gauge({
    name: 'tandem_config_last_load_success',
    help: '1 when the last config load succeeded, 0 when it was rejected (the last good config stays in force)',
    registers: [this.registry],
  });
  readonly certsIssued = new client.Counter({
    name: 'tandem_certificates_issued_total',
    help: 'workload certificates signed, by the credential that proved the identity (token or certificate)',
    labelNames: ['via'],
    registers: [this.registry],
  });
  readonly csrRefused = new client.Counter({
    name: 'tandem_certificate_requests_refused_total',
    help: 'certificate requests refused, by reason (forged, expired or mismatched credentials, bad CSRs)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly streamsRefused = new client.Counter({
    name: 'tandem_xds_streams_refused_total',
    help: 'ADS streams refused, by reason (no or bad certificate, identity or service not allowed, bad node)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
}
