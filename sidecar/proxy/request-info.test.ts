import { describe, expect, it } from 'vitest';
import type { DownstreamRequest } from './downstream';
import { requestInfo } from './request-info';

const h1 = (url: string, headers: Record<string, string>, method = 'GET') =>
  ({ url, headers, rawHeaders: Object.entries(headers).flat(), method, httpVersion: '1.1', httpVersionMajor: 1, socket: { remoteAddress: '::ffff:127.0.0.1' } }) as unknown as DownstreamRequest;

describe('requestInfo', () => {
  it('answers pseudo-headers for HTTP/1.1 so method matches work', () => {
    const i = requestInfo(h1('/a?b=1', { host: 'reviews:9080' }, 'DELETE'));
    expect(i.header(':method')).toBe('DELETE');
    expect(i.header(':authority')).toBe('reviews:9080');
    expect(i.header(':path')).toBe('/a?b=1');
    expect(i.clientIp).toBe('127.0.0.1');
  });

  it('takes authority and path from an absolute-form target', () => {
    const i = requestInfo(h1('http://ratings:8080/x?y=2', { host: 'elsewhere' }));
    expect(i.authority).toBe('ratings:8080');
    expect(i.path).toBe('/x?y=2');
  });

  it('keeps an x-request-id, or makes one', () => {
    expect(requestInfo(h1('/', { host: 'a', 'x-request-id': 'abc' })).requestId).toBe('abc');
    expect(requestInfo(h1('/', { host: 'a' })).requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('rejects a request without a host as a bad request', () => {
    expect(() => requestInfo(h1('/', {}))).toThrow(/missing Host/);
  });

  it('knows when an HTTP/1.1 request has a body', () => {
    expect(requestInfo(h1('/', { host: 'a', 'content-length': '3' }, 'POST')).hasBody).toBe(true);
    expect(requestInfo(h1('/', { host: 'a', 'content-length': '0' }, 'POST')).hasBody).toBe(false);
    expect(requestInfo(h1('/', { host: 'a' })).hasBody).toBe(false);
  });
});
