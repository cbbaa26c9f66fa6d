import { describe, expect, it } from 'vitest';
import { nodeFromWorkload, workloadFromNode } from './node-meta';
import { toStruct } from './struct';

const w = { id: 'a', service: 'reviews', namespace: 'default', serviceAccount: 'reviews', labels: { version: 'v1' }, inboundAddress: '127.0.0.1:1' };

describe('the admin address in the Node metadata', () => {
  it('is announced and read back', () => {
    expect(workloadFromNode(nodeFromWorkload({ ...w, adminAddress: '127.0.0.1:15000' }))?.adminAddress).toBe('127.0.0.1:15000');
    expect(workloadFromNode(nodeFromWorkload({ ...w, adminAddress: '[::1]:15000' }))?.adminAddress).toBe('[::1]:15000');
  });

  it('is left out when it is not a host:port (it is shown and scraped, never a URL)', () => {
    for (const bad of ['http://evil/x', '127.0.0.1', 'a b:1', '127.0.0.1:15000/metrics?x=']) {
      const node = { id: 'a', metadata: toStruct({ SERVICE: 'reviews', INBOUND_ADDRESS: '127.0.0.1:1', ADMIN_ADDRESS: bad }) };
      expect(workloadFromNode(node)?.adminAddress, bad).toBeUndefined();
    }
  });
});
