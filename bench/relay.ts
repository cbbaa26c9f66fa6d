// A byte-recording TCP relay, used only to check what goes over the wire between two
// sidecars before anything is measured: it pipes every connection to the target and
// keeps the first bytes the connecting side sent, so the benchmark can tell a TLS
// ClientHello (record type 0x16) from the h2c connection preface ("PRI * HTTP/2.0").
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

const KEEP = 64;

export interface Relay {
  port: number;
  /** the first bytes (up to 64) of each connection, client to server */
  firstBytes: Buffer[];
  close(): Promise<void>;
}

export function startRelay(targetPort: number, targetHost = '127.0.0.1'): Promise<Relay> {
  const firstBytes: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(targetPort, targetHost);
    sockets.add(down).add(up);
    const i = firstBytes.push(Buffer.alloc(0)) - 1;
    down.on('data', (b: Buffer) => {
      if (firstBytes[i].length < KEEP) firstBytes[i] = Buffer.concat([firstBytes[i], b]).subarray(0, KEEP);
    });
    down.pipe(up);
    up.pipe(down);
    const end = () => {
      down.destroy();
      up.destroy();
      sockets.delete(down);
      sockets.delete(up);
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        firstBytes,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    );
  });
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** What a connection's first bytes are: a TLS handshake record, the h2c preface, a plaintext HTTP/1.1 request, or other. */
export function classify(first: Buffer): 'tls' | 'h2c' | 'http1' | 'other' {
  // TLS record: content type 22 (handshake), legacy version 3.x, then a ClientHello (1)
  if (first.length >= 6 && first[0] === 0x16 && first[1] === 0x03 && first[5] === 0x01) return 'tls';
  if (first.length >= H2_PREFACE.length && first.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) return 'h2c';
  if (/^[A-Z]+ \S+ HTTP\/1\.1\r\n/.test(first.subarray(0, 512).toString('latin1'))) return 'http1';
  return 'other';
}
