import { describe, expect, it } from 'vitest';
import type { ClusterRuntime } from '../runtime/config';
import { upstreamHttpVersion } from './upstream-protocol';

type Model = ClusterRuntime['model'];
const cluster = (model: Partial<Model>): ClusterRuntime => ({ model: { name: 'c', mesh: false, limits: {}, ...model } as Model }) as ClusterRuntime;
const meshTls = (alpn: string[]) => ({ kind: 'mesh' as const, sni: '', alpn, identities: [] });

describe('upstreamHttpVersion', () => {
  it('between sidecars: an HTTP/1.1 caller crosses as HTTP/1.1 where the cluster lists http/1.1, an HTTP/2 caller as HTTP/2', () => {
    const c = cluster({ mesh: true, protocol: 'HTTP', tls: meshTls(['h2', 'http/1.1']) });
    expect(upstreamHttpVersion(c, 'HTTP/1.1')).toBe('1.1');
    expect(upstreamHttpVersion(c, 'HTTP/2')).toBe('2');
  });

  it('between sidecars: h2 only where the control plane says so (HTTP/2 and gRPC ports, UPGRADE), whoever calls', () => {
    expect(upstreamHttpVersion(cluster({ mesh: true, protocol: 'HTTP', tls: meshTls(['h2']) }), 'HTTP/1.1')).toBe('2');
    expect(upstreamHttpVersion(cluster({ mesh: true, protocol: 'GRPC', tls: meshTls(['h2', 'http/1.1']) }), 'HTTP/1.1')).toBe('2');
    expect(upstreamHttpVersion(cluster({ mesh: true, protocol: 'HTTP', upstreamProtocol: 'http2', tls: meshTls(['h2', 'http/1.1']) }), 'HTTP/1.1')).toBe('2');
  });

  it('between sidecars in plaintext, and DO_NOT_UPGRADE said outright', () => {
    expect(upstreamHttpVersion(cluster({ mesh: true, protocol: 'HTTP' }), 'HTTP/1.1')).toBe('1.1');
    expect(upstreamHttpVersion(cluster({ mesh: true, protocol: 'HTTP', upstreamProtocol: 'http1', tls: meshTls(['h2', 'http/1.1']) }), 'HTTP/2')).toBe('1.1');
  });

  it('outside the mesh: the DestinationRule, else the port', () => {
    expect(upstreamHttpVersion(cluster({ protocol: 'HTTP' }), 'HTTP/2')).toBe('1.1');
    expect(upstreamHttpVersion(cluster({ protocol: 'HTTP2' }), 'HTTP/1.1')).toBe('2');
    expect(upstreamHttpVersion(cluster({ protocol: 'HTTP', upstreamProtocol: 'downstream' }), 'HTTP/2')).toBe('2');
    expect(upstreamHttpVersion(cluster({ protocol: 'HTTP', upstreamProtocol: 'http2' }), 'HTTP/1.1')).toBe('2');
  });
});
