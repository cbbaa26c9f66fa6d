// `tandem certs init [--dir certs]`
import { initRootCA, ROOT_CERT } from '../certs/ca';
import * as path from 'node:path';
import { HelpRequested, parseFlags, UsageError } from './flags';

export function certsCommand(argv: string[]): number {
  const [sub, ...rest] = argv;
  const usage = 'usage: tandem certs init [--dir certs] [--trust-domain cluster.local]';
  if (sub === '--help' || sub === '-h') throw new HelpRequested(`${usage}\n`);
  if (sub !== 'init') throw new UsageError(usage);
  const f = parseFlags(rest, { dir: { default: 'certs' }, 'trust-domain': { default: 'cluster.local' } }, 'certs init');
  initRootCA(f.dir!, f['trust-domain']);
  process.stdout.write(`created ${path.join(f.dir!, ROOT_CERT)} and its key\n`);
  return 0;
}
