// What both long-running commands share: flags read the same way, and SIGTERM/SIGINT drain.
import { parseDuration } from '../common/duration';
import { UsageError } from './flags';

export function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

export function duration(flag: string, v: string): number {
  try {
    return parseDuration(v);
  } catch (err) {
    throw new UsageError(`--${flag}: ${(err as Error).message}`);
  }
}
