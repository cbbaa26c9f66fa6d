// A grpc-js client and a grpc-js server talk through two sidecars (client → its sidecar's
// outbound port, h2c → mTLS h2 → the server's sidecar → h2c → the server): all four call
// kinds, metadata, trailers and status codes intact, grpc-timeout honoured, and an
// UNAVAILABLE answer retried by the mesh's default retry policy.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

interface Msg {
  text: string;
  n: number;
}
type EchoClient = grpc.Client & {
  Unary(m: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
  ServerStream(m: Msg, md?: grpc.Metadata): grpc.ClientReadableStream<Msg>;
  ClientStream(cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientWritableStream<Msg>;
  Bidi(): grpc.ClientDuplexStream<Msg, Msg>;
};

const def = protoLoader.loadSync(path.join(__dirname, 'fixtures', 'echo.proto'), { keepCase: true });
const Echo = (grpc.loadPackageDefinition(def) as unknown as { tandem: { e2e: { Echo: grpc.ServiceClientConstructor } } }).tandem.e2e.Echo;

let dir: string;
let cp: h.ControlPlane;
let server: grpc.Server;
let client: EchoClient;
let unaryCalls = 0;
let failNext = 0;

beforeAll(async () => {
  dir = h.tmpDir('tandem-grpc-');
  server = new grpc.Server();
  server.addService(Echo.service, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      unaryCalls++;
      if (call.request.text === 'flaky' && failNext > 0) {
        failNext--;
        return cb({ code: grpc.status.UNAVAILABLE, details: 'try again' });
      }
      if (call.request.text === 'fail') return cb({ code: grpc.status.FAILED_PRECONDITION, details: 'no such thing' });
      if (call.request.text === 'slow') return void setTimeout(() => cb(null, { text: 'late', n: 0 }), 3000);
      const md = new grpc.Metadata();
      md.set('x-trailer', 'kept');
      const echoed = call.metadata.get('x-tag')[0];
      cb(null, { text: `${call.request.text}|${echoed ?? ''}|${call.metadata.get('x-forwarded-client-cert')[0] ?? ''}`, n: call.request.n + 1 }, md);
    },
    ServerStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      for (let i = 0; i < call.request.n; i++) call.write({ text: `s${i}`, n: i });
      call.end();
    },
    ClientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      let sum = 0;
      call.on('data', (m: Msg) => (sum += m.n));
      call.on('end', () => cb(null, { text: 'sum', n: sum }));
    },
    Bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      call.on('data', (m: Msg) => call.write({ text: `echo:${m.text}`, n: m.n * 2 }));
      call.on('end', () => call.end());
    },
  });
  const appPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const configPath = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(
    configPath,
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - match: [{uri: {prefix: /tandem.e2e.Echo/Unary}, headers: {x-slow: {exact: "yes"}}}]
    timeout: 500ms
    route: [{destination: {host: echo}}]
  - route: [{destination: {host: echo}}]
`,
  );
  cp = await h.startControlPlane(dir, configPath);
  await h.startSidecar(cp, 'echo', appPort);
  const caller = await h.startSidecar(cp, 'caller', (await h.startApp('caller')).port);
  // the application dials its sidecar's outbound port; the authority names the service
  client = new Echo(`127.0.0.1:${caller.outbound}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'echo' }) as unknown as EchoClient;
  await h.waitFor('a unary call through the mesh', () => unary({ text: 'ping', n: 0 }).then((r) => r.n === 1).catch(() => false), 20_000);
}, 60_000);

afterAll(async () => {
  client?.close();
  server?.forceShutdown();
  await h.stopAll();
  await h.closeApps();
  fs.rmSync(dir, { recursive: true, force: true });
});

function unary(m: Msg, md = new grpc.Metadata(), o: grpc.CallOptions = {}): Promise<Msg & { trailers?: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let result: Msg | undefined;
    let error: grpc.ServiceError | undefined;
    const call = client.Unary(m, md, o, (e, r) => ((error = e ?? undefined), (result = r)));
    // the status (with the trailers) comes after the callback
    call.on('status', (s: grpc.StatusObject) => (error ? reject(error) : resolve({ ...result!, trailers: s.metadata })));
  });
}

describe('gRPC through two sidecars', () => {
  it('unary: request, metadata, response and trailers intact; the server sees the caller over mTLS', async () => {
    const md = new grpc.Metadata();
    md.set('x-tag', 'blue');
    const r = await unary({ text: 'hello', n: 41 }, md);
    const [text, tag, xfcc] = r.text.split('|');
    expect(text).toBe('hello');
    expect(tag).toBe('blue');
    expect(xfcc).toBe('By=spiffe://cluster.local/ns/default/sa/echo;URI=spiffe://cluster.local/ns/default/sa/caller');
    expect(r.n).toBe(42);
    expect(r.trailers?.get('x-trailer')).toEqual(['kept']);
  });

  it('status codes come back as the server set them', async () => {
    const err = await unary({ text: 'fail', n: 0 }).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.FAILED_PRECONDITION);
    expect((err as grpc.ServiceError).details).toBe('no such thing');
  });

  it('server streaming', async () => {
    const got: Msg[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = client.ServerStream({ text: '', n: 50 });
      s.on('data', (m: Msg) => got.push(m));
      s.on('end', resolve);
      s.on('error', reject);
    });
    expect(got.map((m) => m.n)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('client streaming', async () => {
    const r = await new Promise<Msg>((resolve, reject) => {
      const s = client.ClientStream((e, m) => (e ? reject(e) : resolve(m!)));
      for (let i = 1; i <= 100; i++) s.write({ text: '', n: i });
      s.end();
    });
    expect(r.n).toBe(5050);
  });

  it('bidirectional streaming, each answer before the next message is sent', async () => {
    const s = client.Bidi();
    const answers: Msg[] = [];
    for (let i = 1; i <= 5; i++) {
      const next = new Promise<Msg>((resolve) => s.once('data', resolve));
      s.write({ text: `m${i}`, n: i });
      answers.push(await next);
    }
    s.end();
    await new Promise((r) => s.on('end', r).resume());
    expect(answers.map((a) => `${a.text}=${a.n}`)).toEqual(['echo:m1=2', 'echo:m2=4', 'echo:m3=6', 'echo:m4=8', 'echo:m5=10']);
  });

  it('honours the caller\'s deadline (grpc-timeout) and the route timeout', async () => {
    const t0 = Date.now();
    const e1 = await unary({ text: 'slow', n: 0 }, new grpc.Metadata(), { deadline: Date.now() + 300 }).catch((e: grpc.ServiceError) => e);
    // the client's own deadline and the sidecar's (from grpc-timeout) fire together: either ends the call
    expect([grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE]).toContain((e1 as grpc.ServiceError).code);
    expect(Date.now() - t0).toBeLessThan(1500);
    const md = new grpc.Metadata();
    md.set('x-slow', 'yes');
    const e2 = await unary({ text: 'slow', n: 0 }, md).catch((e: grpc.ServiceError) => e);
    // the sidecar's 504 UT reaches a gRPC client as UNAVAILABLE (Envoy's mapping)
    expect((e2 as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
    expect(Date.now() - t0).toBeLessThan(2500);
  });

  it('retries an UNAVAILABLE answer (the mesh default retries unavailable)', async () => {
    failNext = 1;
    const before = unaryCalls;
    const r = await unary({ text: 'flaky', n: 1 });
    expect(r.n).toBe(2);
    expect(unaryCalls - before).toBe(2);
  });
});
