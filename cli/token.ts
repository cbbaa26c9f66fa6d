// `tandem token --namespace NS --service-account SA [--service NAME ...] [--ttl 24h] [--ca-dir certs]`
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT_KEY } from '../certs/ca';
import { mintToken } from '../certs/token';
import { parseDuration } from '../common/duration';
import { UsageError } from './flags';
import { DNS_LABEL } from '../control-plane/config/common';
import { parseArgs } from 'node:util';

export const TOKEN_USAGE = 'usage: tandem token --namespace NS --service-account SA [--service NAME ...] [--ttl 24h] [--ca-dir certs]';

export function tokenCommand(argv: string[]): number {
  let v: { namespace?: string; 'service-account'?: string; service?: string[]; ttl?: string; 'ca-dir'?: string; help?: boolean };
  try {
    v = parseArgs({
      args: argv,
      options: {
        namespace: { type: 'string' },
        'service-account': { type: 'string' },
        service: { type: 'string', multiple: true },
        ttl: { type: 'string', default: '24h' },
        'ca-dir': { type: 'string', default: 'certs' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${TOKEN_USAGE}`);
  }
  if (v.help) {
    process.stdout.write(`${TOKEN_USAGE}\n`);
    return 0;
  }
  if (!v.namespace) throw new UsageError(`--namespace is required\n${TOKEN_USAGE}`);
  if (!v['service-account']) throw new UsageError(`--service-account is required\n${TOKEN_USAGE}`);
  for (const [flag, values] of [['--namespace', [v.namespace]], ['--service', v.service ?? []]] as const) {
    for (const x of values) if (!DNS_LABEL.test(x)) throw new UsageError(`${flag}: ${JSON.stringify(x)} is not a DNS label`);
  }
  let ttlMs: number;
  try {
    ttlMs = parseDuration(v.ttl!);
  } catch (err) {
    throw new UsageError(`--ttl: ${(err as Error).message}`);
  }
  if (!(ttlMs > 0)) throw new UsageError('--ttl must be positive');
  const keyFile = path.join(v['ca-dir']!, ROOT_KEY);
  let keyPem: string;
  try {
    keyPem = fs.readFileSync(keyFile, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the mesh root key ${keyFile}: ${(err as Error).message}`, { cause: err });
  }
  const token = mintToken(keyPem, { namespace: v.namespace, serviceAccount: v['service-account']!, services: v.service ?? [], ttlMs });
  process.stdout.write(`${token}\n`);
  return 0;
}
