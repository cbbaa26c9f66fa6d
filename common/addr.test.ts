import { describe, expect, it } from 'vitest';
import { endpointProblem, isDialableHost, parseHostPort } from './addr';

describe('addresses peers are told to dial', () => {
  it.each(['127.0.0.1:15006', '[::1]:80', 'reviews-v1.shop.svc:9080', 'a:1', '10.0.0.1:65535'])('accepts %s', (a) => {
    expect(endpointProblem(a)).toBeUndefined();
  });

  it.each([
    ['bad host!:15006', /the host must be an IP address or a DNS name/],
    ['127.0.0.1:99999999', /the port must be 1\.\.65535/],
    ['127.0.0.1:0', /the port must be 1\.\.65535/],
    ['127.0.0.1', /is not HOST:PORT/],
    [':80', /the host must be/],
    ['[10.0.0.1]:80', /in brackets: an IPv6 address/],
    ['::1:80', /is not HOST:PORT/],
    [`${'a'.repeat(64)}.example:80`, /the host must be/],
    ['-a.example:80', /the host must be/],
  ])('refuses %s', (a, why) => {
    expect(endpointProblem(a)).toMatch(why);
  });

  it('takes IP addresses and DNS names as hosts, and nothing else', () => {
    expect(['10.0.0.1', '::1', 'localhost', 'reviews.default'].every(isDialableHost)).toBe(true);
    expect(['bad host!', '', 'a_b', '[::1]', `${'a'.repeat(250)}.bcd`].some(isDialableHost)).toBe(false);
  });

  it('still reads flags as before: ":0" is loopback, a port over 65535 refused', () => {
    expect(parseHostPort(':0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(() => parseHostPort('127.0.0.1:70000', '--inbound')).toThrow(/--inbound: expected HOST:PORT/);
  });
});
