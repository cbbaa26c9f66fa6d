// `tandem control-plane`: flags in, a running control plane out, SIGTERM drains.
import { parseHostPort } from '../common/addr';
import { runControlPlane } from '../control-plane/main';
import { CONFIG_LIMITS } from '../control-plane/config/limits';
import { parseFlags, UsageError } from './flags';
import { duration, onSignals } from './run-common';

const MIB = 1024 * 1024;

function mebibytes(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v ?? '') || n <= 0 || n > 1024) throw new UsageError(`--${flag}: a size in MiB, more than 0 and at most 1024`);
  return Math.floor(n * MIB);
}

export async function controlPlaneCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, {
    config: { default: 'mesh.yaml' },
    listen: { default: '127.0.0.1:15012' },
    'xds-plaintext': {},
    admin: { default: '127.0.0.1:15014' },
    'ca-dir': { default: 'certs' },
    'trust-domain': { default: 'cluster.local' },
    'cert-ttl': { default: '1h' },
    'max-config-file-mb': { default: String(CONFIG_LIMITS.fileBytes / MIB) },
    'max-config-mb': { default: String(CONFIG_LIMITS.totalBytes / MIB) },
    'service-grace': { default: '30s' },
    'endpoint-grace': { default: '5s' },
  }, 'control-plane');
  const cp = await runControlPlane({
    config: f.config!,
    listen: parseHostPort(f.listen!, '--listen'),
    xdsPlaintext: f['xds-plaintext'] && f['xds-plaintext'] !== 'off' ? parseHostPort(f['xds-plaintext'], '--xds-plaintext') : undefined,
    admin: parseHostPort(f.admin!, '--admin'),
    caDir: f['ca-dir']!,
    trustDomain: f['trust-domain']!,
    certTtlMs: duration('cert-ttl', f['cert-ttl']!),
    configLimits: { fileBytes: mebibytes('max-config-file-mb', f['max-config-file-mb']), totalBytes: mebibytes('max-config-mb', f['max-config-mb']) },
    serviceGraceMs: duration('service-grace', f['service-grace']!),
    endpointGraceMs: duration('endpoint-grace', f['endpoint-grace']!),
  });
  onSignals(() => cp.stop());
}
