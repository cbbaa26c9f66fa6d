// The sidecar's limit flags (README, Limits): each one of ListenerLimits, with its default.
import { parseDuration } from '../common/duration';
import { defaultLimits, type ListenerLimits } from '../sidecar/proxy/limits';
import { UsageError, type FlagSpec } from './flags';

const d = defaultLimits();
const dur = (ms: number) => (ms % 1000 ? `${ms}ms` : `${ms / 1000}s`);

export const LIMIT_FLAGS: FlagSpec = {
  'request-headers-timeout': { default: dur(d.headersTimeoutMs) },
  'idle-timeout': { default: dur(d.idleTimeoutMs) },
  'stream-idle-timeout': { default: dur(d.streamIdleTimeoutMs) },
  'request-timeout': { default: dur(d.requestTimeoutMs) },
  'max-connections': { shown: 'from the descriptor limit' },
  'max-headers-count': { default: String(d.maxHeadersCount) },
  'max-request-headers-kb': { default: String(d.maxHeaderBytes / 1024) },
  'max-concurrent-streams': { default: String(d.maxConcurrentStreams) },
  'max-premature-resets': { default: String(d.prematureResetLimit) },
  'max-upstream-requests': { default: String(d.maxUpstreamRequests) },
};

function duration(name: string, v: string | undefined, min: number): number {
  let ms: number;
  try {
    ms = parseDuration(v ?? '');
  } catch (err) {
    throw new UsageError(`--${name}: ${(err as Error).message}`, { cause: err });
  }
  if (ms !== 0 && ms < min) throw new UsageError(`--${name}: at least ${dur(min)} (or 0 for none)`);
  return ms;
}

function count(name: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v ?? '') || n < min || n > max) throw new UsageError(`--${name}: a whole number, ${min}..${max}`);
  return n;
}

export function parseLimits(f: Record<string, string | undefined>): Partial<ListenerLimits> {
  const headersTimeoutMs = duration('request-headers-timeout', f['request-headers-timeout'], 10);
  // a connection must be taken to be timed: the headers and idle timeouts are never "none"
  if (headersTimeoutMs === 0) throw new UsageError('--request-headers-timeout: a connection must send its headers some time (0 is not taken)');
  const idleTimeoutMs = duration('idle-timeout', f['idle-timeout'], 10);
  if (idleTimeoutMs === 0) throw new UsageError('--idle-timeout: an idle connection must be closed some time (0 is not taken)');
  const out: Partial<ListenerLimits> = {
    headersTimeoutMs,
    idleTimeoutMs,
    streamIdleTimeoutMs: duration('stream-idle-timeout', f['stream-idle-timeout'], 10),
    requestTimeoutMs: duration('request-timeout', f['request-timeout'], 10),
    maxHeadersCount: count('max-headers-count', f['max-headers-count'], 1, 10_000),
    maxHeaderBytes: count('max-request-headers-kb', f['max-request-headers-kb'], 1, 8192) * 1024,
    maxConcurrentStreams: count('max-concurrent-streams', f['max-concurrent-streams'], 1, 100_000),
    prematureResetLimit: count('max-premature-resets', f['max-premature-resets'], 2, 1_000_000),
    maxUpstreamRequests: count('max-upstream-requests', f['max-upstream-requests'], 1, 1_000_000),
  };
  if (f['max-connections'] !== undefined) out.maxConnections = count('max-connections', f['max-connections'], 1, 1_000_000);
  return out;
}
