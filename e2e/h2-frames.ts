// Raw HTTP/2 frames, for clients no well-behaved library would be: a rapid-reset flood,
// HEADERS that never end. Only what the hostile suites need (RFC 9113 section 4, 6); the
// rapid-reset flood is fixtures/rapid-reset.cjs, a process of its own.
import * as net from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const TYPE = { HEADERS: 1, SETTINGS: 4 } as const;
export const FLAGS = { END_STREAM: 0x1, END_HEADERS: 0x4 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK: GET, http, the path and authority as literals without indexing (static names) */
export function requestBlock(path: string, authority: string): Buffer {
  const lit = (nameIndex: number, value: string) => Buffer.concat([Buffer.from([nameIndex, value.length]), Buffer.from(value, 'latin1')]);
  // 0x82 :method GET, 0x86 :scheme http; :path is static 4, :authority static 1
  return Buffer.concat([Buffer.from([0x82, 0x86]), lit(4, path), lit(1, authority)]);
}

export const settings = () => frame(TYPE.SETTINGS, 0, 0);
export const headers = (stream: number, block: Buffer, flags: number) => frame(TYPE.HEADERS, flags, stream, block);

/** A connection that has sent the preface and its SETTINGS; what the server sends is read and dropped. */
export function open(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(Buffer.concat([PREFACE, settings()]));
      resolve(s);
    });
    s.on('data', () => undefined);
    s.once('error', reject);
  });
}
