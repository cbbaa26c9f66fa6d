// HOST:PORT flags. ":8080" is loopback (nothing listens beyond it unless asked, e.g.
// 0.0.0.0:8080); ":0" picks a port.
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
