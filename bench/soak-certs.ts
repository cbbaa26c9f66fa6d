// Is the certificate really rotating? For a sidecar: the serial its admin /certs shows,
// the rotations its /metrics counted, the serial a new TLS handshake on its inbound port is
// shown (a renewal reaches new connections, not only memory), and the expiry the control
// plane reports for its stream at /debug/syncz (what `tandem status` shows as CERT EXPIRES).
// The probe presents no client certificate: TLS 1.3 sends the server's certificate before
// asking for the client's, so the serial is read before the sidecar refuses the handshake.
import * as tls from 'node:tls';
import { httpGet } from './util';

/** Serials as hex without separators or leading zeros, lower case, so two sources compare. */
export function normalSerial(s: string): string {
  return s.replace(/:/g, '').toLowerCase().replace(/^0+/, '');
}

export interface Held {
  serial: string;
  notAfter: string;
}

export async function held(admin: number): Promise<Held> {
  const r = await httpGet(admin, '/certs');
  if (r.status !== 200) throw new Error(`/certs: ${r.status} ${r.body.slice(0, 200)}`);
  const c = JSON.parse(r.body) as { serial?: string; notAfter?: string };
  if (!c.serial || !c.notAfter) throw new Error(`/certs has no serial or notAfter: ${r.body.slice(0, 200)}`);
  return { serial: normalSerial(c.serial), notAfter: c.notAfter };
}

/** The certificate expiry the control plane reports per connected service, from /debug/syncz. */
export async function controlPlaneExpiries(cpAdmin: number): Promise<Map<string, string | null>> {
  const r = await httpGet(cpAdmin, '/debug/syncz');
  if (r.status !== 200) throw new Error(`/debug/syncz: ${r.status} ${r.body.slice(0, 200)}`);
  const rows = JSON.parse(r.body) as { service?: string; certExpires: string | null }[];
  return new Map(rows.flatMap((e) => (e.service ? [[e.service, e.certExpires] as const] : [])));
}

export async function rotationsCounted(admin: number): Promise<number> {
  const r = await httpGet(admin, '/metrics');
  const m = /^tandem_certificate_rotations_total(?:\{[^}]*\})? (\S+)$/m.exec(r.body);
  if (!m) throw new Error('/metrics has no tandem_certificate_rotations_total');
  return Number(m[1]);
}

export function presentedSerial(port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'soak-probe', minVersion: 'TLSv1.3', ALPNProtocols: ['h2'], rejectUnauthorized: false });
    const t = setTimeout(() => s.destroy(new Error(`no TLS handshake on :${port} within ${timeoutMs} ms`)), timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(t);
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      if (serial) resolve(normalSerial(serial));
      else reject(new Error(`the handshake on :${port} showed no certificate`));
    });
    s.once('error', (err) => {
      clearTimeout(t);
      reject(new Error(`TLS probe of :${port}: ${err.message}`, { cause: err }));
    });
  });
}

/** What one sidecar's rotation looked like over the run. */
export class RotationWatch {
  readonly serials = new Set<string>();
  /** handshakes that showed the certificate /certs held just before or just after */
  current = 0;
  stale = 0;
  probeErrors: string[] = [];
  firstCount?: number;
  lastCount = 0;
  /** samples where /debug/syncz showed the expiry of the certificate held, and where it did not */
  cpCurrent = 0;
  cpStale: string[] = [];
  private bracket: Held[] = [];

  constructor(
    readonly name: string,
    readonly service: string,
    private readonly admin: number,
    private readonly inbound: number,
  ) {}

  async sample(): Promise<void> {
    const before = await held(this.admin);
    let shown: string | undefined;
    try {
      shown = await presentedSerial(this.inbound);
    } catch (err) {
      if (this.probeErrors.length < 5) this.probeErrors.push((err as Error).message);
    }
    const after = await held(this.admin);
    this.serials.add(before.serial).add(after.serial);
    this.bracket = [before, after];
    // a renewal between the two reads makes either one the right answer
    if (shown !== undefined) {
      if (shown === before.serial || shown === after.serial) this.current++;
      else this.stale++;
    }
    const n = await rotationsCounted(this.admin);
    this.firstCount ??= n;
    this.lastCount = n;
  }

  /**
   * Right after sample(): does the control plane's expiry for this sidecar match what it
   * holds? The CA signs before the sidecar holds the result, so /certs is read once more,
   * after /debug/syncz: a renewal in between makes that read the right answer.
   */
  async checkControlPlane(expires: string | null | undefined, at: number): Promise<void> {
    const now = await held(this.admin);
    this.serials.add(now.serial);
    if (expires && [...this.bracket, now].some((h) => Date.parse(h.notAfter) === Date.parse(expires))) this.cpCurrent++;
    else this.cpStale.push(`at ${at} s /debug/syncz says ${expires ?? 'nothing'}, the sidecar holds a certificate until ${now.notAfter}`);
  }

  /** renewals counted by the sidecar since the first sample */
  get rotations(): number {
    return this.lastCount - (this.firstCount ?? this.lastCount);
  }
}
