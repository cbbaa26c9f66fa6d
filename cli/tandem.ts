#!/usr/bin/env node
// The one executable. Exit status: 0 success, 2 bad usage, 1 anything else.
// Each command's code is loaded when it runs: a sidecar does not carry the control plane's
// config parser and translators (nor the demo, nor the CLI tables) in its memory.
import { HelpRequested, UsageError } from './flags';

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
      await (await import('./run-control-plane')).controlPlaneCommand(rest);
      return 'running';
    case 'sidecar':
      await (await import('./run')).sidecarCommand(rest);
      return 'running';
    case 'certs':
      return (await import('./certs')).certsCommand(rest);
    case 'token':
      return (await import('./token')).tokenCommand(rest);
    case 'status':
      return (await import('./status')).statusCommand(rest);
    case 'stat':
      return (await import('./stat')).statCommand(rest);
    case 'demo':
      return (await import('./demo')).demoCommand(rest);
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
