import { describe, expect, it } from 'vitest';
import { fqdn } from './hosts';

describe('fqdn', () => {
  it.each([
    ['reviews', 'default', 'reviews.default.svc.cluster.local'],
    ['Reviews', 'Prod', 'reviews.prod.svc.cluster.local'],
    ['reviews.prod', 'default', 'reviews.prod.svc.cluster.local'],
    ['reviews.prod.svc', 'default', 'reviews.prod.svc.cluster.local'],
    ['reviews.prod.svc.cluster.local', 'default', 'reviews.prod.svc.cluster.local'],
    ['api.example.com', 'default', 'api.example.com'],
    ['*.example.com', 'default', '*.example.com'],
    ['*', 'default', '*'],
  ])('%s in %s -> %s', (host, ns, want) => expect(fqdn(host, ns)).toBe(want));

  it('uses the given domain', () => {
    expect(fqdn('reviews', 'default', 'mesh.local')).toBe('reviews.default.svc.mesh.local');
    expect(fqdn('reviews.default.svc.mesh.local', 'x', 'mesh.local')).toBe('reviews.default.svc.mesh.local');
  });
});
