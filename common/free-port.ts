// A port free on 127.0.0.1 right now (the OS picks it). Someone else may take it before
// the caller binds it, so callers that can should retry on EADDRINUSE.
import * as net from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
