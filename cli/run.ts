// `tandem sidecar`: flags in, a running sidecar (or --concurrency workers) out, SIGTERM drains.
import cluster from 'node:cluster';
import { endpointProblem, isDialableHost, parseHostPort, type HostPort } from '../common/addr';
import { runSidecar } from '../sidecar/main';
import { serveClusterMetrics } from '../sidecar/cluster-metrics';
import { parseFlags, parseLabels, UsageError } from './flags';
import { LIMIT_FLAGS, parseLimits } from './limit-flags';
import { duration, onSignals } from './run-common';

// The inbound address is announced to every peer (by --advertise, or as the listener's own):
// one they could not dial is refused here, at startup, not at registration.
function inboundFlag(v: string): HostPort {
  const a = parseHostPort(v, '--inbound');
  if (!isDialableHost(a.host)) throw new UsageError(`--inbound: ${JSON.stringify(a.host)} is not an IP address or a DNS name`);
  return a;
}

/** --advertise HOST or HOST:PORT, as peers will dial it. */
function advertiseFlag(v: string | undefined): string | undefined {
  if (v === undefined || isDialableHost(v)) return v;
  const problem = /:\d+$/.test(v) ? endpointProblem(v) : `${JSON.stringify(v)} is not an IP address or a DNS name`;
  if (problem) throw new UsageError(`--advertise: ${problem} (expected HOST or HOST:PORT that peers can dial)`);
  return v;
}

export async function sidecarCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, {
    service: { required: true },
    namespace: { default: 'default' },
    'service-account': {},
    labels: {},
    app: { default: '127.0.0.1:8080' },
    inbound: { default: '0.0.0.0:15006' },
    advertise: {},
    outbound: { default: '127.0.0.1:15001' },
    admin: { default: '127.0.0.1:15000' },
    'control-plane': { default: '127.0.0.1:15012' },
    'root-cert': { default: 'certs/root-cert.pem' },
    token: { default: process.env.TANDEM_TOKEN, shown: '$TANDEM_TOKEN' },
    'trust-domain': {},
    concurrency: { default: '1' },
    'access-log': { default: 'stdout' },
    metrics: { default: 'on' },
    'app-protocol': { default: 'auto' },
    'xds-protocol': { default: 'delta' },
    ...LIMIT_FLAGS,
  }, 'sidecar');
  const inbound = inboundFlag(f.inbound!);
  const advertise = advertiseFlag(f.advertise);
  const appProtocol = f['app-protocol'];
  if (appProtocol !== 'auto' && appProtocol !== 'http1' && appProtocol !== 'http2') throw new UsageError('--app-protocol: auto, http1 or http2');
  if (f.metrics !== 'on' && f.metrics !== 'off') throw new UsageError('--metrics: on or off');
  const xdsProtocol = f['xds-protocol'];
  if (xdsProtocol !== 'delta' && xdsProtocol !== 'sotw') throw new UsageError('--xds-protocol: delta or sotw');
  if (!f.token) throw new UsageError('--token (or $TANDEM_TOKEN) is required: the bootstrap token file from `tandem token --namespace NS --service-account SA`');
  const limits = parseLimits(f);
  const concurrency = Number(f.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError('--concurrency: a whole number of worker processes, 1..64');
  if (concurrency > 1 && cluster.isPrimary) return runWorkers(concurrency);
  // one request's bug must not take every other request down with the process: say so loudly, carry on
  process.on('unhandledRejection', (err) => process.stderr.write(`${new Date().toISOString()} error sidecar: unhandled rejection: ${(err as Error)?.stack ?? String(err)}\n`));
  const sc = await runSidecar({
    service: f.service!,
    namespace: f.namespace!,
    serviceAccount: f['service-account'] ?? f.service!,
    labels: parseLabels(f.labels),
    app: parseHostPort(f.app!, '--app'),
    inbound,
    advertise,
    outbound: parseHostPort(f.outbound!, '--outbound'),
    admin: parseHostPort(f.admin!, '--admin'),
    controlPlane: parseHostPort(f['control-plane']!, '--control-plane'),
    rootCert: f['root-cert']!,
    token: f.token ?? '',
    trustDomain: f['trust-domain'],
    accessLog: f['access-log']!,
    metrics: f.metrics === 'on',
    appProtocol,
    xdsProtocol,
    limits,
  });
  onSignals(() => sc.stop(5000));
}

// --concurrency N: N workers each run a whole sidecar (its own xDS stream) and share the
// listening sockets through node:cluster; the primary forwards signals, sums the
// workers' metrics for a scrape (cluster-metrics.ts) and waits.
function runWorkers(n: number): void {
  const started = new Map<number, number>();
  const fork = () => started.set(cluster.fork().id, Date.now());
  serveClusterMetrics();
  for (let i = 0; i < n; i++) fork();
  let stopping = false;
  const stop = (sig: NodeJS.Signals) => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(sig);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGTERM'));
  cluster.on('exit', (w, code) => {
    if (!stopping && Date.now() - (started.get(w.id) ?? 0) < 5000) {
      // it could not even start (a port in use, a bad flag): restarting would only loop
      process.stderr.write(`tandem: sidecar worker ${w.process.pid} failed at start (${code})\n`);
      stop('SIGTERM');
      process.exitCode = 1;
    } else if (!stopping) {
      process.stderr.write(`tandem: sidecar worker ${w.process.pid} exited (${code}); starting another\n`);
      fork();
    } else if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(process.exitCode ?? 0);
  });
}
