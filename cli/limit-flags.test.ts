import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { LIMIT_FLAGS, parseLimits } from './limit-flags';
import { parseFlags } from './flags';
import { defaultLimits } from '../sidecar/proxy/limits';

const parse = (argv: string[]) => parseLimits(parseFlags(argv, LIMIT_FLAGS));

describe('the sidecar limit flags', () => {
  it('default to the limits the sidecar has without them', () => {
    const d = defaultLimits();
    expect(parse([])).toEqual({
      headersTimeoutMs: d.headersTimeoutMs,
      idleTimeoutMs: d.idleTimeoutMs,
      streamIdleTimeoutMs: d.streamIdleTimeoutMs,
      requestTimeoutMs: d.requestTimeoutMs,
      maxHeadersCount: d.maxHeadersCount,
      maxHeaderBytes: d.maxHeaderBytes,
      maxConcurrentStreams: d.maxConcurrentStreams,
      prematureResetLimit: d.prematureResetLimit,
      maxUpstreamRequests: d.maxUpstreamRequests,
    });
  });

  it('read durations, counts and sizes; 0 turns the stream timeouts off', () => {
    const l = parse(['--idle-timeout', '5m', '--stream-idle-timeout', '0', '--request-timeout', '0', '--max-connections', '500', '--max-request-headers-kb', '96', '--max-upstream-requests', '64']);
    expect(l).toMatchObject({ idleTimeoutMs: 300_000, streamIdleTimeoutMs: 0, requestTimeoutMs: 0, maxConnections: 500, maxHeaderBytes: 96 * 1024, maxUpstreamRequests: 64 });
  });

  it('refuse what cannot be a limit, naming the flag', () => {
    expect(() => parse(['--request-headers-timeout', '0'])).toThrow(/--request-headers-timeout/);
    expect(() => parse(['--idle-timeout', 'soon'])).toThrow(/--idle-timeout/);
    expect(() => parse(['--max-connections', '1.5'])).toThrow(/--max-connections: a whole number/);
    expect(() => parse(['--max-concurrent-streams', '0'])).toThrow(/--max-concurrent-streams/);
  });
});

describe('the control plane config-size flags', () => {
  it('refuse a size that is not one, with exit status 2', () => {
    const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'dist', 'cli', 'tandem.js'), 'control-plane', '--max-config-file-mb', 'lots'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--max-config-file-mb');
  });
});
