import { describe, expect, it } from 'vitest';
import { parseSpiffeUri, SpiffeError, spiffeUri } from './spiffe';

describe('SPIFFE IDs', () => {
  it('round-trip through their URI form', () => {
    const id = { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'reviews-v2.api' };
    const uri = spiffeUri(id);
    expect(uri).toBe('spiffe://cluster.local/ns/default/sa/reviews-v2.api');
    expect(parseSpiffeUri(uri)).toEqual(id);
  });

  it.each([
    ['extra path segment', 'spiffe://td/ns/a/sa/b/extra'],
    ['no service account', 'spiffe://td/ns/a/sa/'],
    ['no sa part', 'spiffe://td/ns/a'],
    ['no trust domain', 'spiffe:///ns/a/sa/b'],
    ['segments swapped', 'spiffe://td/sa/b/ns/a'],
    ['upper-case namespace', 'spiffe://td/ns/Default/sa/b'],
    ['upper-case trust domain', 'spiffe://TD/ns/a/sa/b'],
    ['upper-case scheme', 'SPIFFE://td/ns/a/sa/b'],
    ['another scheme', 'http://td/ns/a/sa/b'],
    ['a dot in the namespace', 'spiffe://td/ns/a.b/sa/b'],
    ['a port', 'spiffe://td:8080/ns/a/sa/b'],
    ['a query', 'spiffe://td/ns/a/sa/b?x=1'],
    ['trailing slash', 'spiffe://td/ns/a/sa/b/'],
    ['empty', ''],
  ])('refuses %s', (_what, uri) => {
    expect(() => parseSpiffeUri(uri)).toThrow(SpiffeError);
    try {
      parseSpiffeUri(uri);
    } catch (err) {
      expect((err as SpiffeError).code).toBe('BAD_SPIFFE_ID');
    }
  });

  it('will not build an ID it would refuse to parse', () => {
    expect(() => spiffeUri({ trustDomain: 'td', namespace: 'a/sa/b', serviceAccount: 'c' })).toThrow(SpiffeError);
  });
});
