import { describe, expect, it } from 'vitest';
import type { SyncEntry } from '../control-plane/syncz';
import { renderStatus } from './status';

const entry = (types: SyncEntry['types']): SyncEntry => ({
  id: 'sidecar~127.0.0.1:15006',
  service: 'reviews',
  namespace: 'default',
  proxyless: false,
  protocol: 'delta',
  connectedAt: new Date(0).toISOString(),
  types,
  identity: null,
  registered: true,
  certExpires: null,
});

describe('tandem status', () => {
  it('says in the RDS column the worse of a split table\'s route configuration and virtual hosts (VHDS)', () => {
    const synced = { status: 'SYNCED' as const, sent: 'v1', acked: 'v1' };
    const rds = (vhds?: SyncEntry['types'][string]) => {
      const out = renderStatus([entry({ CDS: synced, LDS: synced, EDS: synced, RDS: synced, ...(vhds ? { VHDS: vhds } : {}) })]);
      return out.trim().split('\n')[1].split(/\s{2,}/)[5];
    };
    expect(rds()).toBe('SYNCED');
    expect(rds(synced)).toBe('SYNCED');
    expect(rds({ status: 'NACK', sent: 'v2', acked: 'v1' })).toBe('NACK');
    expect(rds({ status: 'STALE', sent: 'v2', acked: 'v1' })).toBe('STALE');
  });
});
