import { describe, expect, it } from 'vitest';
import { appProtocolOf } from './protocol';

describe('the protocol the application is spoken to in', () => {
  it('follows the caller: gRPC and marked HTTP/2 as h2c, the rest as HTTP/1.1', () => {
    expect(appProtocolOf('auto', 'HTTP/2', undefined, 'application/grpc')).toBe('http2');
    expect(appProtocolOf('auto', 'HTTP/2', undefined, 'application/grpc+proto')).toBe('http2');
    expect(appProtocolOf('auto', 'HTTP/2', 'HTTP/2', 'text/plain')).toBe('http2');
    expect(appProtocolOf('auto', 'HTTP/2', undefined, 'text/plain')).toBe('http1');
    expect(appProtocolOf('auto', 'HTTP/1.1', 'HTTP/2', 'application/grpc')).toBe('http1');
  });

  it('does what --app-protocol says when it is not auto', () => {
    expect(appProtocolOf('http1', 'HTTP/2', 'HTTP/2', 'application/grpc')).toBe('http1');
    expect(appProtocolOf('http2', 'HTTP/1.1', undefined, undefined)).toBe('http2');
  });
});
