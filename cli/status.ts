// `tandem status`: one row per connected proxy, like istioctl proxy-status.
import { parseFlags } from './flags';
import { parseHostPort, formatHostPort } from '../common/addr';
import type { SyncEntry } from '../control-plane/syncz';

export async function statusCommand(argv: string[]): Promise<number> {
  const f = parseFlags(argv, { 'control-plane-admin': { default: '127.0.0.1:15014' } }, 'status');
  const addr = formatHostPort(parseHostPort(f['control-plane-admin']!, '--control-plane-admin'));
  let entries: SyncEntry[];
  try {
    const res = await fetch(`http://${addr}/debug/syncz`);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    entries = (await res.json()) as SyncEntry[];
  } catch (err) {
    throw new Error(`cannot reach the control plane admin at ${addr}: ${(err as Error).message}`);
  }
  process.stdout.write(renderStatus(entries));
  return 0;
}

const BADNESS = ['SYNCED', 'NOT SENT', 'STALE', 'NACK'];
const worse = (a: string, b: string): string => (BADNESS.indexOf(b) > BADNESS.indexOf(a) ? b : a);

export function renderStatus(entries: SyncEntry[]): string {
  const rows = [['NAME', 'SERVICE', 'CDS', 'LDS', 'EDS', 'RDS', 'VERSION', 'CERT EXPIRES']];
  for (const e of entries) {
    const t = (k: string) => e.types[k]?.status ?? 'NOT SENT';
    const version = e.types.CDS?.acked ?? e.types.LDS?.acked ?? '-';
    // a Delta sidecar's routes come split (VHDS): the column says the worse of the two
    const routes = e.types.VHDS ? worse(t('RDS'), t('VHDS')) : t('RDS');
    rows.push([e.id, e.service ? `${e.service}.${e.namespace}` : '(proxyless)', t('CDS'), t('LDS'), t('EDS'), routes, version, e.certExpires ?? '-']);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}
