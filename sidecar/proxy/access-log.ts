// One JSON line per request (SPEC section 8), to stdout, a file, or nowhere.
import * as fs from 'node:fs';

export interface AccessEntry {
  start_time: string;
  method: string;
  path: string;
  protocol: string;
  response_code: number;
  response_flags: string;
  bytes_received: number;
  bytes_sent: number;
  duration_ms: number;
  upstream_service_time_ms: number | null;
  upstream_host: string | null;
  upstream_cluster: string | null;
  route_name: string | null;
  request_id: string | null;
  trace_id: string | null;
  authority: string | null;
  x_forwarded_for: string | null;
  user_agent: string | null;
  peer_principal: string | null;
  direction: 'inbound' | 'outbound';
}

/** null when access logging is off, so callers skip building entries at all */
export type AccessLog = ((e: AccessEntry) => void) | null;

export function accessLog(where: string): AccessLog {
  if (where === 'off') return null;
  const out = where === 'stdout' ? process.stdout : fs.createWriteStream(where, { flags: 'a' });
  return (e) => {
    out.write(JSON.stringify(e) + '\n');
  };
}
