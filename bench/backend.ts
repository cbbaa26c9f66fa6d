// The benchmark's backend: a tiny HTTP server answering every request with a small
// fixed body. Runs in its own process so its CPU is accounted apart from the load
// generator and the proxies; reports its port to the parent over IPC. It also counts the
// requests that arrived with an x-forwarded-client-cert naming a SPIFFE caller (what a
// server sidecar adds only for a peer that authenticated over mTLS), so the parent can
// tell which hops were mTLS and which plaintext. The nginx pair's second nginx adds
// x-bench-tls: "$ssl_protocol $ssl_client_verify" (empty on plaintext); requests where that
// reads "TLSv1.3 SUCCESS" are counted by Host too, so every request of the nginx pair's run
// is checked for TLS with a verified client certificate between the two.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

const BODY = Buffer.from('{"service":"backend","ok":true}\n');

let served = 0;
/** requests with an XFCC carrying URI=spiffe://… */
let xfcc = 0;
let lastXfcc = '';
/** the same, by Host: a straggler of one target's run must not count for the next target's */
const xfccByHost: Record<string, number> = {};
/** requests that came through the nginx pair's TLS with a verified client certificate, by Host */
const tlsByHost: Record<string, number> = {};

/** every request by Host (the port dropped): a straggler of one target's run lands while the next runs */
const servedByHost: Record<string, number> = {};

const server = http.createServer((req, res) => {
  served++;
  const hostName = (req.headers.host ?? '').replace(/:\d+$/, '');
  servedByHost[hostName] = (servedByHost[hostName] ?? 0) + 1;
  const cert = req.headers['x-forwarded-client-cert'];
  if (typeof cert === 'string' && cert.includes('URI=spiffe://')) {
    xfcc++;
    lastXfcc = cert;
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    xfccByHost[host] = (xfccByHost[host] ?? 0) + 1;
  }
  if (req.headers['x-bench-tls'] === 'TLSv1.3 SUCCESS') {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    tlsByHost[host] = (tlsByHost[host] ?? 0) + 1;
  }
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
    res.end(BODY);
  });
});
// Long idle timeouts so a keepalive pool in front (nginx, a sidecar) never races a close.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.requestTimeout = 0;

server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const port = (server.address() as AddressInfo).port;
  if (process.send) process.send({ port });
  else console.log(`backend listening on 127.0.0.1:${port}`);
});

process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
// The parent asks how many requests were served (to cross-check the load generator) and
// how many of them came with a SPIFFE XFCC.
process.on('message', (m: { id: number }) => process.send!({ id: m.id, served, xfcc, lastXfcc, xfccByHost, tlsByHost, servedByHost }));
process.on('disconnect', () => process.exit(0));
