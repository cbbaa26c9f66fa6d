#!/usr/bin/env node
// The one executable. Exit status: 0 success, 2 bad usage, 1 anything else.
import { HelpRequested, UsageError } from './flags';
import { controlPlaneCommand, sidecarCommand } from './run';
import { certsCommand } from './certs';
import { tokenCommand } from './token';
import { statusCommand } from './status';
import { statCommand } from './stat';
import { demoCommand } from './demo';

const USAGE = `usage: tandem <command> [flags]

commands:
  control-plane   run the control plane (xDS server and CA)
  sidecar         run a sidecar next to a service
  certs init      create the mesh root CA
  token           mint a bootstrap token for a workload (namespace, service account, services)
  status          one row per connected proxy, like istioctl proxy-status
  stat            success rate, RPS, latency, TCP connections and mTLS per service and version, like linkerd viz stat
  demo            the whole mesh on this machine
`;

async function main(argv: string[]): Promise<number | 'running'> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'control-plane':
      await controlPlaneCommand(rest);
      return 'running';
    case 'sidecar':
      await sidecarCommand(rest);
      return 'running';
    case 'certs':
      return certsCommand(rest);
    case 'token':
      return tokenCommand(rest);
    case 'status':
      return statusCommand(rest);
    case 'stat':
      return statCommand(rest);
    case 'demo':
      return demoCommand(rest);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)} (tandem --help lists them)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 'running') process.exitCode = code;
  },
  (err: Error & { code?: string }) => {
    if (err instanceof HelpRequested) {
      process.stdout.write(err.message);
      process.exit(0);
    }
    process.stderr.write(`tandem: ${err.message}\n`);
    process.exit(err instanceof UsageError || err.code === 'BAD_ADDRESS' ? 2 : 1);
  },
);
