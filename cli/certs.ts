// `tandem certs init [--dir certs]`
import { initRootCA, ROOT_CERT } from '../certs/ca';
import * as path from 'node:path';
import { parseFlags, UsageError } from './flags';

export function certsCommand(argv: string[]): number {
  const [sub, ...rest] = argv;
  if (sub !== 'init') throw new UsageError('usage: tandem certs init [--dir certs] [--trust-domain cluster.local]');
  const f = parseFlags(rest, { dir: { default: 'certs' }, 'trust-domain': { default: 'cluster.local' } });
  initRootCA(f.dir!, f['trust-domain']);
  process.stdout.write(`created ${path.join(f.dir!, ROOT_CERT)} and its key\n`);
  return 0;
}
