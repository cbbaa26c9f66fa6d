// HOST:PORT flags. ":8080" is loopback (nothing listens beyond it unless asked, e.g.
// 0.0.0.0:8080); ":0" picks a port. And the addresses a workload announces to its peers.
import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

export class AddressError extends Error {
  readonly code = 'BAD_ADDRESS';
}

export function parseHostPort(s: string, flag = 'address'): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new AddressError(`${flag}: expected HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function formatHostPort(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/i;

/** A host another machine can be told to dial: an IP address or a DNS name (labels of at most 63). */
export function isDialableHost(host: string): boolean {
  return isIP(host) !== 0 || HOST_NAME.test(host);
}

/**
 * Why `s` is not an address peers can dial, HOST:PORT with an IPv6 host in brackets and a
 * port of 1..65535, or undefined when it is one.
 */
export function endpointProblem(s: string): string | undefined {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(s);
  if (!m) return `${JSON.stringify(s)} is not HOST:PORT`;
  const host = m[1] ?? m[2];
  const port = Number(m[3]);
  if (m[1] !== undefined ? isIP(host) !== 6 : !(isIP(host) === 4 || HOST_NAME.test(host))) {
    return `${JSON.stringify(s)}: the host must be an IP address or a DNS name${m[1] !== undefined ? ' (in brackets: an IPv6 address)' : ''}`;
  }
  if (!(port >= 1 && port <= 65535)) return `${JSON.stringify(s)}: the port must be 1..65535`;
  return undefined;
}
