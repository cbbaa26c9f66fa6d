// The soak's application, behind the server sidecar: one port that speaks HTTP/1.1 and
// h2c (prior knowledge), because the sidecar hands each request to the app in the protocol
// its caller spoke (--app-protocol auto) and the soak sends both. It checks what a request
// must carry after the mesh: the whole body the client said it sent (x-soak-body-bytes) and
// a SPIFFE x-forwarded-client-cert (the hop was mTLS); anything less is answered 500, so
// the client counts it as a failure rather than the app quietly accepting it. Counts go to
// the parent over IPC, like backend.ts.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';

export interface SoakAppStats {
  served: number;
  h1: number;
  h2: number;
  /** requests whose body was not the length the client declared */
  shortBodies: number;
  /** requests without a SPIFFE XFCC: they did not come over mTLS */
  withoutXfcc: number;
}

const stats: SoakAppStats = { served: 0, h1: 0, h2: 0, shortBodies: 0, withoutXfcc: 0 };

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

function handle(req: Req, res: Res): void {
  stats.served++;
  if (req.httpVersionMajor === 2) stats.h2++;
  else stats.h1++;
  const xfcc = req.headers['x-forwarded-client-cert'];
  const mtls = typeof xfcc === 'string' && xfcc.includes('URI=spiffe://');
  if (!mtls) stats.withoutXfcc++;
  const declared = Number(req.headers['x-soak-body-bytes'] ?? 0);
  let got = 0;
  req.on('data', (c: Buffer) => (got += c.length));
  req.on('end', () => {
    const problems = [...(got !== declared ? [`body ${got} of ${declared} bytes`] : []), ...(mtls ? [] : ['no SPIFFE x-forwarded-client-cert'])];
    if (got !== declared) stats.shortBodies++;
    const body = Buffer.from(JSON.stringify(problems.length ? { ok: false, problems } : { ok: true, got }) + '\n');
    res.writeHead(problems.length ? 500 : 200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
}

const h1 = http.createServer(handle);
// Long idle timeouts so the sidecar's keep-alive pool never races a close by the app.
h1.keepAliveTimeout = 120_000;
h1.headersTimeout = 121_000;
h1.requestTimeout = 0;
const h2 = http2.createServer({}, handle);

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

// One listener: the first bytes say which server gets the connection. They are read in
// paused mode and put back, where both servers find them (a 'data' listener would switch
// the socket to flowing mode and lose them to the h2 session).
const server = net.createServer({ noDelay: true }, (socket) => {
  socket.once('readable', () => {
    const head: Buffer | null = socket.read();
    if (!head) return void socket.destroy();
    socket.unshift(head);
    const n = Math.min(head.length, PREFACE.length);
    (head.subarray(0, n).equals(PREFACE.subarray(0, n)) ? h2 : h1).emit('connection', socket);
  });
  socket.on('error', () => socket.destroy());
});

server.listen(0, '127.0.0.1', () => {
  const port = (server.address() as net.AddressInfo).port;
  if (process.send) process.send({ port });
  else console.log(`soak app listening on 127.0.0.1:${port}`);
});

process.on('SIGTERM', () => {
  h1.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
process.on('message', (m: { id: number }) => process.send!({ id: m.id, stats }));
process.on('disconnect', () => process.exit(0));
