// Zero trust end to end (SPEC §3, §5, §7, §8), with real processes on 127.0.0.1: what
// crosses the wire between sidecars is TLS 1.3 with certificates both ways; an inbound
// port takes nothing else; a peer must be who EDS says it is; certificates rotate under
// load; registration and certificates need credentials that prove exactly the identity
// and service claimed; a control-plane outage loses no request; the application learns
// its caller from XFCC and nobody can forge it.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';
import { CertificateAuthority, CONTROL_PLANE_SNI, createRootCA, initRootCA } from '../certs/ca';
import { newKey } from '../certs/keys';
import { mintToken } from '../certs/token';
import { adsService, type DiscoveryRequest, type DiscoveryResponse, type AdsClientStream } from '../proto/ads';
import { nodeFromWorkload } from '../proto/node-meta';
import { TypeUrl } from '../proto/type-urls';
import { requestCertificate, CaRequestError } from '../sidecar/identity/ca-client';

const sid = (sa: string, ns = 'default') => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

interface ClusterInfo {
  name: string;
  endpoints: { address: string }[];
}

interface SyncEntry {
  id: string;
  service?: string;
  identity: string | null;
  registered: boolean;
  certExpires: string | null;
  types: Record<string, { status: string }>;
}

interface CertsView {
  spiffeId?: string;
  serial?: string;
  notAfter?: string;
}

const dirs: string[] = [];
const newDir = (prefix: string) => {
  const d = h.tmpDir(prefix);
  dirs.push(d);
  return d;
};

afterAll(async () => {
  await h.stopAll();
  await h.closeApps();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------
// helpers

const rootFiles = (caDir: string) => ({
  certPem: fs.readFileSync(path.join(caDir, 'root-cert.pem'), 'utf8'),
  keyPem: fs.readFileSync(path.join(caDir, 'root-key.pem'), 'utf8'),
});

/** A workload certificate made by the test itself with the mesh root (or any root). */
function workloadCert(root: { certPem: string; keyPem: string }, sa: string, services = [sa]): { key: string; cert: string } {
  const key = newKey();
  const cert = new CertificateAuthority(root).signWorkload({ publicKey: key.publicKey, spiffeId: sid(sa), services, ttlMs: 3600e3 });
  return { key: key.keyPem, cert };
}

async function metrics(port: number): Promise<string> {
  return (await h.request(port, { path: '/metrics' })).body;
}

/** A counter's value, 0 when it has no sample yet. */
async function counter(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  return h.metricValue(await metrics(port), name, labels) ?? 0;
}

const syncz = (cp: h.ControlPlane) => h.json<SyncEntry[]>(cp.admin, '/debug/syncz');

/** The endpoints a sidecar knows for a service (any subset). */
async function endpointsOf(sc: { admin: number }, service: string): Promise<string[]> {
  const clusters = await h.json<ClusterInfo[]>(sc.admin, '/clusters');
  return clusters.filter((c) => c.name.includes(`|${service}.`)).flatMap((c) => c.endpoints.map((e) => e.address));
}

/** Process still running? A helper's wait fails fast with its output when not. */
function alive(p: h.Proc): void {
  const { exitCode, signalCode } = p.child;
  if (exitCode !== null || signalCode !== null) throw new Error(`process exited (${exitCode ?? signalCode}):\n${p.output().slice(-3000)}`);
}

/** A control plane with extra flags (startControlPlane takes none). */
async function startControlPlaneWith(dir: string, configPath: string, extra: string[]): Promise<h.ControlPlane> {
  const caDir = path.join(dir, 'certs');
  for (let attempt = 1; ; attempt++) {
    const [listen, admin, xdsPlaintext] = [await h.freePort(), await h.freePort(), await h.freePort()];
    const proc = h.start([
      'control-plane', '--config', configPath,
      '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--xds-plaintext', `127.0.0.1:${xdsPlaintext}`,
      '--ca-dir', caDir, ...extra,
    ]);
    try {
      await h.waitFor('control plane ready', async () => {
        alive(proc);
        const r = await h.request(admin, { path: '/ready' });
        if (r.status !== 200) return false;
        const files = (await h.json<{ files?: string[] }>(admin, '/debug/config')).files ?? [];
        return files.length === 0 || files.some((f) => f.startsWith(configPath));
      });
      return { proc, listen, admin, xdsPlaintext, caDir, configPath };
    } catch (err) {
      await proc.stop('SIGKILL');
      if (attempt >= 3 || !/EADDRINUSE/.test(proc.output())) throw err;
    }
  }
}

interface RawSidecar extends h.Sidecar {
  /** the address EDS carries for it */
  advertised: string;
}

/**
 * A sidecar started by hand, for what startSidecar cannot do: --advertise (startSidecar
 * recognises its sidecar by the inbound address it announces), `:PORT` address flags, a
 * control plane that is not up yet, or a sidecar that is expected never to become ready.
 * It is recognised by the pid in its node id.
 */
async function launchSidecar(o: {
  controlPlane: number;
  caDir: string;
  service: string;
  serviceAccount?: string;
  token: string;
  appPort: number;
  advertise?: string;
  /** write address flags as `:PORT` */
  shortAddresses?: boolean;
  /** wait for /ready 200 (default), or only until the admin port answers as this process */
  ready?: boolean;
}): Promise<RawSidecar> {
  for (let attempt = 1; ; attempt++) {
    const [inbound, outbound, admin] = [await h.freePort(), await h.freePort(), await h.freePort()];
    const addr = (p: number) => (o.shortAddresses ? `:${p}` : `127.0.0.1:${p}`);
    const args = [
      'sidecar', '--service', o.service, '--namespace', 'default', '--service-account', o.serviceAccount ?? o.service,
      '--app', `127.0.0.1:${o.appPort}`, '--inbound', addr(inbound), '--outbound', addr(outbound), '--admin', addr(admin),
      '--control-plane', `127.0.0.1:${o.controlPlane}`, '--root-cert', path.join(o.caDir, 'root-cert.pem'),
      '--token', o.token, '--access-log', 'off',
      ...(o.advertise ? ['--advertise', o.advertise] : []),
    ];
    const proc = h.start(args);
    try {
      await h.waitFor(
        `sidecar ${o.service} ${o.ready === false ? 'answering' : 'ready'}`,
        async () => {
          alive(proc);
          const ours = (await h.json<{ node?: { id?: string } }>(admin, '/config_dump')).node?.id?.endsWith(`.${proc.child.pid}`);
          if (!ours) return false;
          return o.ready === false || (await h.request(admin, { path: '/ready' })).status === 200;
        },
        20_000,
      );
      return { proc, service: o.service, inbound, outbound, admin, advertised: o.advertise ?? `127.0.0.1:${inbound}` };
    } catch (err) {
      await proc.stop('SIGKILL');
      if (attempt >= 3 || !/EADDRINUSE/.test(proc.output())) throw err;
    }
  }
}

/** Steady load through a sidecar's outbound port: `rps` requests a second over `concurrency` loops, until stopped. */
function steadyLoad(port: number, host: string, rps: number, concurrency: number) {
  const state = { ok: 0, failed: [] as string[], stopped: false };
  const every = (1000 * concurrency) / rps;
  const loops = Array.from({ length: concurrency }, async (_, w) => {
    let i = 0;
    while (!state.stopped) {
      const started = Date.now();
      try {
        const r = await h.request(port, { host, path: `/load/${w}/${i++}` });
        if (r.status === 200) state.ok++;
        else state.failed.push(`${new Date().toISOString()} ${r.status} ${r.headers['x-tandem-response-flags'] ?? ''} ${r.body.trim().slice(0, 200)}`);
      } catch (err) {
        state.failed.push(`${new Date().toISOString()} ${(err as Error).message}`);
      }
      const wait = every - (Date.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  });
  return {
    state,
    async stop() {
      state.stopped = true;
      await Promise.all(loops);
      return state;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- raw TLS --------------------------------------------------------------------------

interface TlsAttempt {
  /** the client side saw the handshake finish (in TLS 1.3 it may, before the server refuses) */
  secure: boolean;
  protocol?: string | null;
  alpn?: string | false | null;
  error?: string;
  /** what came back after an HTTP/1.1 request was written */
  data: string;
  /** the server neither answered nor closed within 10s */
  timedOut: boolean;
}

/** A TLS connection to an inbound port; once up, sends one HTTP/1.1 request and reads until close. */
function tlsAttempt(port: number, o: { ca: string; key?: string; cert?: string; alpn?: string[]; path?: string; headers?: [string, string][] }): Promise<TlsAttempt> {
  return new Promise((resolve) => {
    const out: TlsAttempt = { secure: false, data: '', timedOut: false };
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      ca: o.ca,
      key: o.key,
      cert: o.cert,
      servername: 'mesh',
      ALPNProtocols: o.alpn ?? ['http/1.1'],
      // the sidecar's certificate carries a SPIFFE ID, not a host name
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      out.timedOut = true;
      s.destroy();
    }, 10_000);
    s.on('secureConnect', () => {
      out.secure = true;
      out.protocol = s.getProtocol();
      out.alpn = s.alpnProtocol;
      const extra = (o.headers ?? []).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      s.write(`GET ${o.path ?? '/raw-tls'} HTTP/1.1\r\nhost: raw\r\n${extra}connection: close\r\n\r\n`);
    });
    s.on('data', (b: Buffer) => (out.data += b.toString('latin1')));
    s.on('error', (err: NodeJS.ErrnoException) => (out.error ??= err.code ?? err.message));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** A plaintext connection: writes `bytes`, returns what came back before the sidecar closed it. */
function plainAttempt(port: number, bytes: Buffer): Promise<{ data: Buffer; closedBy: 'peer' | 'timeout' }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closedBy: 'peer' | 'timeout' = 'peer';
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    const timer = setTimeout(() => {
      closedBy = 'timeout';
      s.destroy();
    }, 5000);
    s.on('data', (b: Buffer) => chunks.push(b));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closedBy });
    });
  });
}

/** TLS records (type, legacy version, payload) read off a captured byte stream; a partial last record is left out. */
function tlsRecords(b: Buffer): { type: number; version: number; body: Buffer }[] {
  const out: { type: number; version: number; body: Buffer }[] = [];
  let i = 0;
  while (i + 5 <= b.length) {
    const len = b.readUInt16BE(i + 3);
    if (i + 5 + len > b.length) break;
    out.push({ type: b[i], version: b.readUInt16BE(i + 1), body: b.subarray(i + 5, i + 5 + len) });
    i += 5 + len;
  }
  return out;
}

/** The version a ServerHello's supported_versions extension selects (0x0304 is TLS 1.3), or undefined. */
function serverHelloVersion(handshake: Buffer): number | undefined {
  if (handshake[0] !== 2) return undefined; // ServerHello
  let i = 4 + 2 + 32; // header, legacy_version, random
  i += 1 + handshake[i]; // session id
  i += 2 + 1; // cipher suite, compression
  const end = i + 2 + handshake.readUInt16BE(i);
  i += 2;
  while (i + 4 <= end) {
    const type = handshake.readUInt16BE(i);
    const len = handshake.readUInt16BE(i + 2);
    if (type === 0x002b && len === 2) return handshake.readUInt16BE(i + 4);
    i += 4 + len;
  }
  return undefined;
}

// ---- a hand-made xDS client -------------------------------------------------------------

const AdsClient = grpc.makeGenericClientConstructor(adsService, 'AggregatedDiscoveryService');

interface AdsOutcome {
  code?: grpc.status;
  details?: string;
  responses: DiscoveryResponse[];
  stream: AdsClientStream;
  client: grpc.Client;
}

/**
 * Opens an ADS stream, sends a CDS request with `node`, and resolves once the stream
 * ends with a status or the first response arrives (then the stream stays open).
 */
function adsAttempt(target: string, creds: grpc.ChannelCredentials, node: DiscoveryRequest['node']): Promise<AdsOutcome> {
  const client = new AdsClient(target, creds, {
    'grpc.ssl_target_name_override': CONTROL_PLANE_SNI,
    'grpc.default_authority': CONTROL_PLANE_SNI,
    'grpc.use_local_subchannel_pool': 1,
  });
  const stream = (client as unknown as { StreamAggregatedResources(): AdsClientStream }).StreamAggregatedResources();
  const out: AdsOutcome = { responses: [], stream, client };
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(out), 10_000);
    stream.on('data', (r: DiscoveryResponse) => {
      out.responses.push(r);
      clearTimeout(timer);
      resolve(out);
    });
    stream.on('error', (err: grpc.ServiceError) => {
      out.code = err.code;
      out.details = err.details;
      clearTimeout(timer);
      resolve(out);
    });
    stream.on('status', (s: grpc.StatusObject) => {
      out.code ??= s.code;
      out.details ??= s.details;
    });
    stream.write({ node, type_url: TypeUrl.Cluster, resource_names: [] });
  });
}

function closeAds(o: AdsOutcome): void {
  o.stream.cancel();
  o.client.close();
}

// =======================================================================================

describe('zero trust: one control plane, sidecars that prove who they are', () => {
  let dir: string;
  let cp: h.ControlPlane;
  let root: { certPem: string; keyPem: string };
  let reviewsApp: h.App;
  let webApp: h.App;
  let reviews: h.Sidecar;
  let web: h.Sidecar;

  beforeAll(async () => {
    dir = newDir('tandem-zt-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, ''); // no PeerAuthentication: the mesh default, STRICT
    cp = await h.startControlPlane(dir, configPath);
    root = rootFiles(cp.caDir);
    reviewsApp = await h.startApp('reviews');
    webApp = await h.startApp('web');
    // service accounts that differ from the service names, so XFCC shows which one it carries
    [reviews, web] = await Promise.all([
      h.startSidecar(cp, 'reviews', reviewsApp.port, { version: 'v1' }, { serviceAccount: 'reviews-sa' }),
      h.startSidecar(cp, 'web', webApp.port, { version: 'v1' }, { serviceAccount: 'web-sa' }),
    ]);
    await h.waitFor('web to learn the reviews endpoint', async () => (await endpointsOf(web, 'reviews')).includes(`127.0.0.1:${reviews.inbound}`), 10_000);
  });

  it('carries traffic between sidecars as TLS 1.3 with certificates both ways, seen at the socket', async () => {
    // a relay in front of the server sidecar's inbound port, recording both directions
    const captured: { c2s: Buffer[]; s2c: Buffer[] }[] = [];
    let upstreamPort = 0;
    const relay = net.createServer((down) => {
      const rec = { c2s: [] as Buffer[], s2c: [] as Buffer[] };
      captured.push(rec);
      const up = net.connect(upstreamPort, '127.0.0.1');
      down.on('data', (b: Buffer) => rec.c2s.push(Buffer.from(b)));
      up.on('data', (b: Buffer) => rec.s2c.push(Buffer.from(b)));
      down.pipe(up);
      up.pipe(down);
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
      down.on('close', () => up.destroy());
      up.on('close', () => down.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    const relayPort = (relay.address() as net.AddressInfo).port;
    try {
      const marker = crypto.randomBytes(8).toString('hex');
      const detailsApp = await h.startApp('details', (req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => res.end(`RESPONSE-${marker} for ${req.url} with ${body.length} bytes`));
      });
      const details = await launchSidecar({
        controlPlane: cp.listen,
        caDir: cp.caDir,
        service: 'details',
        token: h.mintTokenFile(cp, { serviceAccount: 'details', services: ['details'] }),
        appPort: detailsApp.port,
        advertise: `127.0.0.1:${relayPort}`,
      });
      upstreamPort = details.inbound;
      await h.waitFor('web to learn details at the relay', async () => (await endpointsOf(web, 'details')).includes(`127.0.0.1:${relayPort}`), 10_000);

      for (let i = 0; i < 5; i++) {
        const r = await h.request(web.outbound, { host: 'details', method: 'POST', path: `/PATH-${marker}/${i}`, body: `BODY-${marker}-${'x'.repeat(100)}`, headers: { 'content-type': 'text/plain' } });
        expect(r.status, r.body).toBe(200);
        expect(r.body).toContain(`RESPONSE-${marker} for /PATH-${marker}/${i}`);
      }
      expect(detailsApp.hits).toBe(5);
      expect(captured.length).toBeGreaterThan(0);

      for (const { c2s, s2c } of captured) {
        const up = Buffer.concat(c2s);
        const downBytes = Buffer.concat(s2c);
        if (up.length === 0) continue;
        // both directions open with a TLS handshake record
        expect(up[0]).toBe(0x16);
        expect(downBytes[0]).toBe(0x16);
        const upRecs = tlsRecords(up);
        const downRecs = tlsRecords(downBytes);
        expect(upRecs.length).toBeGreaterThan(1);
        expect(downRecs.length).toBeGreaterThan(1);
        // the server chose TLS 1.3 (supported_versions in its ServerHello)
        expect(serverHelloVersion(downRecs[0].body)).toBe(0x0304);
        // past the hellos, nothing is in the clear: only application data (and the compatibility ChangeCipherSpec)
        for (const recs of [upRecs.slice(1), downRecs.slice(1)]) {
          expect(new Set(recs.map((r) => r.type))).not.toContain(0x16);
          for (const r of recs) expect([0x14, 0x17]).toContain(r.type);
        }
        // no request path, body, response or certificate (encrypted in TLS 1.3) in the clear
        for (const bytes of [up, downBytes]) {
          const text = bytes.toString('latin1');
          expect(text).not.toContain(marker);
          expect(text).not.toContain('spiffe://');
        }
      }

      // directly to the inbound port: TLS 1.3, and the server asks for and uses our certificate
      const tester = workloadCert(root, 'tester');
      const withCert = await tlsAttempt(details.inbound, { ca: root.certPem, ...tester, path: '/direct' });
      expect(withCert.error).toBeUndefined();
      expect(withCert.protocol).toBe('TLSv1.3');
      expect(withCert.alpn).toBe('http/1.1');
      expect(withCert.data).toMatch(/^HTTP\/1\.1 200/);
      expect(detailsApp.last?.['x-forwarded-client-cert']).toBe(`By=${sid('details')};URI=${sid('tester')}`);
      const h2 = await tlsAttempt(details.inbound, { ca: root.certPem, ...tester, alpn: ['h2', 'http/1.1'] });
      expect(h2.protocol).toBe('TLSv1.3');
      expect(h2.alpn).toBe('h2');
      // without one, the server refuses: it demands a client certificate
      const without = await tlsAttempt(details.inbound, { ca: root.certPem });
      expect(without.data).not.toMatch(/HTTP\/1\.1/);
      expect(without.error).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
      expect(detailsApp.hits).toBe(6);
    } finally {
      relay.close();
    }
  });

  it('a STRICT inbound port answers no plaintext, no certless and no foreign-root connection', async () => {
    const hits = reviewsApp.hits;
    const before = {
      plaintext: await counter(reviews.admin, 'tandem_inbound_connections_refused_total', { reason: 'plaintext' }),
      handshake: await counter(reviews.admin, 'tandem_inbound_connections_refused_total', { reason: 'handshake' }),
    };
    // plaintext HTTP/1.1
    const h1 = await plainAttempt(reviews.inbound, Buffer.from('GET /plain HTTP/1.1\r\nhost: reviews\r\n\r\n'));
    expect(h1.closedBy).toBe('peer');
    expect(h1.data.toString('latin1')).not.toMatch(/HTTP\//);
    expect(h1.data.length).toBe(0);
    // h2c with prior knowledge: the preface and an empty SETTINGS frame
    const preface = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
    const h2c = await plainAttempt(reviews.inbound, preface);
    expect(h2c.closedBy).toBe('peer');
    expect(h2c.data.length).toBe(0); // not even a SETTINGS frame back
    // TLS with no client certificate
    const certless = await tlsAttempt(reviews.inbound, { ca: root.certPem });
    expect(certless.data).not.toMatch(/HTTP\//);
    expect(certless.error).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
    // TLS with a workload certificate from another root (same SPIFFE ID shape as a real caller)
    const foreign = createRootCA();
    const impostor = workloadCert(foreign, 'web-sa', ['web']);
    const foreignRoot = await tlsAttempt(reviews.inbound, { ca: root.certPem, ...impostor });
    expect(foreignRoot.data).not.toMatch(/HTTP\//);
    // (Node verifies the client's chain after the handshake and just closes: no alert to see)
    expect(foreignRoot.timedOut).toBe(false);
    expect(foreignRoot.data).toBe('');

    expect(reviewsApp.hits).toBe(hits);
    // the control: the same connection with a mesh certificate is answered
    const real = await tlsAttempt(reviews.inbound, { ca: root.certPem, ...workloadCert(root, 'web-sa', ['web']) });
    expect(real.data).toMatch(/^HTTP\/1\.1 200/);
    expect(reviewsApp.hits).toBe(hits + 1);
    await h.waitFor('the refusals to be counted', async () => {
      const plaintext = await counter(reviews.admin, 'tandem_inbound_connections_refused_total', { reason: 'plaintext' });
      const handshake = await counter(reviews.admin, 'tandem_inbound_connections_refused_total', { reason: 'handshake' });
      return plaintext >= before.plaintext + 2 && handshake >= before.handshake + 2;
    }, 5000);
    // and the port still serves the mesh
    expect((await h.request(web.outbound, { host: 'reviews', path: '/after-refusals' })).status).toBe(200);
  });

  // Breaks if the client stops checking the peer's SPIFFE ID (sidecar/identity/mesh-tls.ts checkPeer):
  // the request would then reach reviews' app.
  it('refuses a peer whose SPIFFE ID is not the one EDS registered for the endpoint (503 UF)', async () => {
    const evilApp = await h.startApp('evil');
    const evil = await launchSidecar({
      controlPlane: cp.listen,
      caDir: cp.caDir,
      service: 'evil',
      token: h.mintTokenFile(cp, { serviceAccount: 'evil', services: ['evil'] }),
      appPort: evilApp.port,
      advertise: `127.0.0.1:${reviews.inbound}`, // lies: that is reviews' inbound port
    });
    await h.waitFor('web to learn the lying evil endpoint', async () => (await endpointsOf(web, 'evil')).includes(`127.0.0.1:${reviews.inbound}`), 10_000);
    const row = (await syncz(cp)).find((e) => e.id.endsWith(`.${evil.proc.child.pid}`));
    expect(row?.identity).toBe(sid('evil'));
    const hits = reviewsApp.hits;
    for (let i = 0; i < 3; i++) {
      const r = await h.request(web.outbound, { host: 'evil', path: `/steal/${i}` });
      expect(r.status, r.body).toBe(503);
      expect(r.headers['x-tandem-response-flags']).toBe('UF');
    }
    expect(reviewsApp.hits).toBe(hits);
    expect(evilApp.hits).toBe(0);
    await evil.proc.stop();
  });

  it('an xDS client gets no stream without a certificate, nor for an identity or service its certificate does not prove', async () => {
    const target = `127.0.0.1:${cp.listen}`;
    const refused = (reason: string) => counter(cp.admin, 'tandem_xds_streams_refused_total', { reason });
    const node = (id: string, service: string, serviceAccount: string, inboundAddress = '127.0.0.1:9') =>
      nodeFromWorkload({ id, service, namespace: 'default', serviceAccount, labels: {}, inboundAddress });

    // (a) no client certificate on --listen
    const before = { noCert: await refused('NO_CERTIFICATE'), mismatch: await refused('IDENTITY_MISMATCH'), service: await refused('SERVICE_NOT_ALLOWED') };
    const a = await adsAttempt(target, grpc.credentials.createSsl(Buffer.from(root.certPem)), node('zt-a', 'reviews', 'reviews-sa'));
    closeAds(a);
    expect(a.code, a.details).toBe(grpc.status.UNAUTHENTICATED);
    expect(a.responses).toHaveLength(0);
    expect(await refused('NO_CERTIFICATE')).toBe(before.noCert + 1);

    // (b) a mesh certificate for sa ratings, a Node claiming sa reviews-sa
    const ratings = workloadCert(root, 'ratings', ['ratings']);
    const ratingsCreds = () => grpc.credentials.createSsl(Buffer.from(root.certPem), Buffer.from(ratings.key), Buffer.from(ratings.cert));
    const b = await adsAttempt(target, ratingsCreds(), node('zt-b', 'reviews', 'reviews-sa'));
    closeAds(b);
    expect(b.code, b.details).toBe(grpc.status.PERMISSION_DENIED);
    expect(b.responses).toHaveLength(0);
    expect(await refused('IDENTITY_MISMATCH')).toBe(before.mismatch + 1);

    // (c) sa ratings, as its certificate says, but claiming service reviews, which its token did not allow
    const c = await adsAttempt(target, ratingsCreds(), node('zt-c', 'reviews', 'ratings'));
    closeAds(c);
    expect(c.code, c.details).toBe(grpc.status.PERMISSION_DENIED);
    expect(c.responses).toHaveLength(0);
    expect(await refused('SERVICE_NOT_ALLOWED')).toBe(before.service + 1);
    // none of them was ever an endpoint
    expect((await syncz(cp)).filter((e) => /^zt-[abc]$/.test(e.id))).toEqual([]);
  });

  it('the plaintext xDS port serves config but never makes its client an endpoint', async () => {
    const impostor = await h.startApp('impostor');
    const d = await adsAttempt(
      `127.0.0.1:${cp.xdsPlaintext}`,
      grpc.credentials.createInsecure(),
      nodeFromWorkload({ id: 'zt-plaintext', service: 'reviews', namespace: 'default', serviceAccount: 'reviews-sa', labels: { version: 'v1' }, inboundAddress: `127.0.0.1:${impostor.port}` }),
    );
    try {
      expect(d.code, d.details).toBeUndefined();
      expect(d.responses.length).toBeGreaterThan(0);
      expect(d.responses[0].type_url).toBe(TypeUrl.Cluster);
      expect(d.responses[0].resources.length).toBeGreaterThan(0);
      const row = await h.waitFor('the plaintext stream in /debug/syncz', async () => (await syncz(cp)).find((e) => e.id === 'zt-plaintext'));
      expect(row.registered).toBe(false);
      expect(row.identity).toBeNull();
      // the stream stays up while reviews is called many times: the impostor gets nothing
      await sleep(500);
      expect(await endpointsOf(web, 'reviews')).not.toContain(`127.0.0.1:${impostor.port}`);
      const results = await h.pool(30, 4, (i) => h.request(web.outbound, { host: 'reviews', path: `/who/${i}` }));
      expect(results.map((r) => r.status)).toEqual(Array(30).fill(200));
      expect(impostor.hits).toBe(0);
      expect((await syncz(cp)).find((e) => e.id === 'zt-plaintext')?.registered).toBe(false);
    } finally {
      closeAds(d);
      await impostor.close();
    }
  });

  it('a token for one identity gets no certificate for another; forged and expired tokens get none at all', async () => {
    const rootPem = root.certPem;
    const target = `127.0.0.1:${cp.listen}`;
    const refused = (reason: string) => counter(cp.admin, 'tandem_certificate_requests_refused_total', { reason });
    const ask = async (spiffeId: string, token: string): Promise<grpc.status | 'issued'> => {
      try {
        await requestCertificate({ target, rootPem }, newKey(), spiffeId, { token });
        return 'issued';
      } catch (err) {
        expect(err).toBeInstanceOf(CaRequestError);
        return (err as CaRequestError).grpcCode!;
      }
    };
    const tokenA = fs.readFileSync(h.mintTokenFile(cp, { serviceAccount: 'a', services: ['a'] }), 'utf8');
    // the token itself works, for its own identity
    expect(await ask(sid('a'), tokenA)).toBe('issued');

    const mismatch = await refused('IDENTITY_MISMATCH');
    expect(await ask(sid('b'), tokenA)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await ask(sid('a', 'other'), tokenA)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await refused('IDENTITY_MISMATCH')).toBe(mismatch + 2);

    // forged: signed by another root
    const forged = mintToken(createRootCA().keyPem, { namespace: 'default', serviceAccount: 'a', services: ['a'], ttlMs: 3600e3 });
    const badSig = await refused('TOKEN_BAD_SIGNATURE');
    expect(await ask(sid('a'), forged)).toBe(grpc.status.UNAUTHENTICATED);
    expect(await refused('TOKEN_BAD_SIGNATURE')).toBe(badSig + 1);

    // expired: `tandem token --ttl 1s`, then wait it out
    const minted = await h.runTandem(['token', '--namespace', 'default', '--service-account', 'a', '--service', 'a', '--ttl', '1s', '--ca-dir', cp.caDir]);
    expect(minted.code, minted.stderr).toBe(0);
    const shortLived = minted.stdout.trim();
    const exp = (JSON.parse(Buffer.from(shortLived.split('.')[1], 'base64url').toString()) as { exp: number }).exp;
    await sleep(Math.max(0, exp * 1000 - Date.now()) + 100);
    const expired = await refused('TOKEN_EXPIRED');
    expect(await ask(sid('a'), shortLived)).toBe(grpc.status.UNAUTHENTICATED);
    expect(await refused('TOKEN_EXPIRED')).toBe(expired + 1);

    // no token at all
    const none = await refused('NO_CREDENTIAL');
    expect(await ask(sid('a'), '')).toBe(grpc.status.UNAUTHENTICATED);
    expect(await refused('NO_CREDENTIAL')).toBe(none + 1);
  });

  it('a sidecar for service b holding a token for a never becomes ready nor an endpoint of b', async () => {
    const bApp = await h.startApp('b');
    const tokenA = h.mintTokenFile(cp, { serviceAccount: 'a', services: ['a'] });
    const mismatch = await counter(cp.admin, 'tandem_certificate_requests_refused_total', { reason: 'IDENTITY_MISMATCH' });
    const notAllowed = await counter(cp.admin, 'tandem_xds_streams_refused_total', { reason: 'SERVICE_NOT_ALLOWED' });
    // one asks for b's identity with a's token: no certificate; the other is a with its certificate, claiming service b: no ADS stream
    const [asB, asA] = await Promise.all([
      launchSidecar({ controlPlane: cp.listen, caDir: cp.caDir, service: 'b', serviceAccount: 'b', token: tokenA, appPort: bApp.port, ready: false }),
      launchSidecar({ controlPlane: cp.listen, caDir: cp.caDir, service: 'b', serviceAccount: 'a', token: tokenA, appPort: bApp.port, ready: false }),
    ]);
    await h.waitFor('the CA to refuse b\'s certificate and the control plane a\'s stream for b', async () => {
      const m = await counter(cp.admin, 'tandem_certificate_requests_refused_total', { reason: 'IDENTITY_MISMATCH' });
      const s = await counter(cp.admin, 'tandem_xds_streams_refused_total', { reason: 'SERVICE_NOT_ALLOWED' });
      return m > mismatch && s > notAllowed;
    }, 15_000);
    expect(cp.proc.output()).toMatch(/claims service b, which the bootstrap token behind spiffe:\/\/cluster\.local\/ns\/default\/sa\/a does not allow/);
    await sleep(1500);
    const readyB = await h.request(asB.admin, { path: '/ready' });
    expect(readyB.status).toBe(503);
    expect(readyB.body).toMatch(/waiting for a workload certificate/);
    expect(await h.json<CertsView>(asB.admin, '/certs')).not.toHaveProperty('serial');
    const readyA = await h.request(asA.admin, { path: '/ready' });
    expect(readyA.status).toBe(503);
    expect((await h.json<CertsView>(asA.admin, '/certs')).spiffeId).toBe(sid('a'));
    // nothing registered for b, and callers have no b endpoint
    expect((await syncz(cp)).filter((e) => e.service === 'b' && e.registered)).toEqual([]);
    const eps = await endpointsOf(web, 'b');
    expect(eps).not.toContain(`127.0.0.1:${asA.inbound}`);
    expect(eps).not.toContain(`127.0.0.1:${asB.inbound}`);
    expect((await h.request(web.outbound, { host: 'b', path: '/x' })).status).not.toBe(200);
    expect(bApp.hits).toBe(0);
    await Promise.all([asA.proc.stop(), asB.proc.stop()]);
  });

  it('XFCC: the application sees exactly who called, and never what the caller wrote', async () => {
    const r = await h.request(web.outbound, {
      host: 'reviews',
      path: '/xfcc',
      headers: { 'x-forwarded-client-cert': `By=${sid('reviews-sa')};URI=${sid('admin')}` },
    });
    expect(r.status).toBe(200);
    expect(reviewsApp.last?.['x-forwarded-client-cert']).toBe(`By=${sid('reviews-sa')};URI=${sid('web-sa')}`);
    // without one from the caller too
    await h.request(web.outbound, { host: 'reviews', path: '/xfcc2' });
    expect(reviewsApp.last?.['x-forwarded-client-cert']).toBe(`By=${sid('reviews-sa')};URI=${sid('web-sa')}`);
    // straight to the inbound port with a mesh certificate (no caller sidecar to strip anything),
    // with two forged XFCC headers: the application still sees only the verified caller
    const direct = await tlsAttempt(reviews.inbound, {
      ca: root.certPem,
      ...workloadCert(root, 'tester'),
      path: '/xfcc-direct',
      headers: [['x-forwarded-client-cert', `By=${sid('reviews-sa')};URI=${sid('admin')}`], ['X-Forwarded-Client-Cert', `URI=${sid('root')}`]],
    });
    expect(direct.data).toMatch(/^HTTP\/1\.1 200/);
    expect(reviewsApp.last?.['x-forwarded-client-cert']).toBe(`By=${sid('reviews-sa')};URI=${sid('tester')}`);
  });
});

// =======================================================================================

describe('rotation under load', () => {
  it('certificates of 10s rotate again and again while 20 rps flow between two sidecars, and no request fails', async () => {
    const dir = newDir('tandem-zt-rot-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, '');
    const cp = await startControlPlaneWith(dir, configPath, ['--cert-ttl', '10s']);
    const echoApp = await h.startApp('echo');
    const callerApp = await h.startApp('caller');
    const [echo, caller] = await Promise.all([h.startSidecar(cp, 'echo', echoApp.port), h.startSidecar(cp, 'caller', callerApp.port)]);
    await h.waitFor('caller to reach echo', async () => (await h.request(caller.outbound, { host: 'echo', path: '/warm' })).status === 200, 10_000);

    const serials = { echo: new Set<string>(), caller: new Set<string>() };
    const load = steadyLoad(caller.outbound, 'echo', 20, 2);
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      for (const [name, sc] of [['echo', echo], ['caller', caller]] as const) {
        const c = await h.json<CertsView>(sc.admin, '/certs');
        if (c.serial) serials[name].add(c.serial);
      }
      await sleep(500);
    }
    const done = await load.stop();
    expect(done.failed).toEqual([]);
    expect(done.ok).toBeGreaterThan(100);
    // the serial changed at least twice on each side
    expect(serials.echo.size).toBeGreaterThanOrEqual(3);
    expect(serials.caller.size).toBeGreaterThanOrEqual(3);
    for (const sc of [echo, caller]) {
      expect(await counter(sc.admin, 'tandem_certificate_rotations_total')).toBeGreaterThanOrEqual(3);
      const c = await h.json<CertsView>(sc.admin, '/certs');
      expect(Date.parse(c.notAfter!)).toBeGreaterThan(Date.now());
    }
    // renewals were authenticated by the current certificate, not the token again
    expect(await counter(cp.admin, 'tandem_certificates_issued_total', { via: 'certificate' })).toBeGreaterThanOrEqual(4);
    // both streams are still registered and in sync
    const rows = await syncz(cp);
    for (const sc of [echo, caller]) {
      const row = rows.find((e) => e.id.endsWith(`.${sc.proc.child.pid}`));
      expect(row?.registered).toBe(true);
    }
    // the control plane follows the renewals (tandem status CERT EXPIRES) long after the
    // certificate each stream connected with, and its first renewals, have expired; /certs
    // is read on both sides of /debug/syncz in case a renewal falls in between
    for (const sc of [echo, caller]) {
      const before = (await h.json<CertsView>(sc.admin, '/certs')).notAfter!;
      const row = (await syncz(cp)).find((e) => e.id.endsWith(`.${sc.proc.child.pid}`));
      const after = (await h.json<CertsView>(sc.admin, '/certs')).notAfter!;
      expect([Date.parse(before), Date.parse(after)]).toContain(Date.parse(row!.certExpires!));
    }
    await Promise.all([echo.proc.stop(), caller.proc.stop(), cp.proc.stop(), echoApp.close(), callerApp.close()]);
  }, 90_000);
});

// =======================================================================================

describe('control plane outage', () => {
  it('a control plane SIGKILLed for 20s under load loses no request; restarted, both sidecars resync and a new one joins', async () => {
    const dir = newDir('tandem-zt-outage-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, '');
    let cp = await h.startControlPlane(dir, configPath);
    const storeApp = await h.startApp('store');
    const shopperApp = await h.startApp('shopper');
    const [store, shopper] = await Promise.all([h.startSidecar(cp, 'store', storeApp.port), h.startSidecar(cp, 'shopper', shopperApp.port)]);
    await h.waitFor('shopper to reach store', async () => (await h.request(shopper.outbound, { host: 'store', path: '/warm' })).status === 200, 10_000);
    const certsBefore = await Promise.all([store, shopper].map((sc) => h.json<CertsView>(sc.admin, '/certs')));

    const load = steadyLoad(shopper.outbound, 'store', 20, 2);
    await sleep(1000);
    await cp.proc.stop('SIGKILL');
    const killedAt = Date.now();
    // the sidecars notice, and keep serving on what they hold
    await h.waitFor('the sidecars to notice', async () => {
      for (const sc of [store, shopper]) if ((await h.json<{ controlPlaneConnected: boolean }>(sc.admin, '/config_dump')).controlPlaneConnected) return false;
      return true;
    }, 15_000);
    await sleep(Math.max(0, 20_000 - (Date.now() - killedAt)));
    const okDuringOutage = load.state.ok;
    expect(load.state.failed).toEqual([]);
    for (const sc of [store, shopper]) expect((await h.request(sc.admin, { path: '/ready' })).status).toBe(200);

    cp = await h.startControlPlane(dir, configPath, { listen: cp.listen, admin: cp.admin, xdsPlaintext: cp.xdsPlaintext });
    const pids = [store, shopper].map((sc) => `.${sc.proc.child.pid}`);
    await h.waitFor(
      '`tandem status` to show both sidecars SYNCED',
      async () => {
        const st = await h.runTandem(['status', '--control-plane-admin', `127.0.0.1:${cp.admin}`]);
        if (st.code !== 0) return false;
        const rows = st.stdout.split('\n').slice(1).filter(Boolean);
        return pids.every((pid) => rows.some((r) => r.split(/\s+/)[0].endsWith(pid) && r.split(/\s+/).slice(2, 6).every((s) => s === 'SYNCED')));
      },
      30_000,
      500,
    );
    const rows = await syncz(cp);
    for (const pid of pids) expect(rows.find((e) => e.id.endsWith(pid))?.registered).toBe(true);
    await sleep(1000); // traffic across the reconnection and the end of the warm-up
    const done = await load.stop();
    expect(done.failed).toEqual([]);
    expect(okDuringOutage).toBeGreaterThan(50);
    expect(done.ok).toBeGreaterThan(okDuringOutage);
    // same certificates all along (1h lifetime: no renewal was needed)
    const certsAfter = await Promise.all([store, shopper].map((sc) => h.json<CertsView>(sc.admin, '/certs')));
    expect(certsAfter.map((c) => c.serial)).toEqual(certsBefore.map((c) => c.serial));

    // a newcomer joins through the restarted control plane, and is reachable
    const newApp = await h.startApp('newcomer');
    await h.startSidecar(cp, 'newcomer', newApp.port);
    await h.waitFor('shopper to reach the newcomer', async () => (await h.request(shopper.outbound, { host: 'newcomer', path: '/hello' })).status === 200, 10_000);
    expect(newApp.hits).toBeGreaterThan(0);
  }, 120_000);
});

// =======================================================================================

describe('sidecar start without a control plane, and loopback binds', () => {
  it('/ready says it waits for a certificate until the control plane is up; `:PORT` binds 127.0.0.1', async () => {
    const dir = newDir('tandem-zt-early-');
    const configPath = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(configPath, '');
    const caDir = path.join(dir, 'certs');
    const root = initRootCA(caDir);
    const tokenFile = path.join(dir, 'early.jwt');
    fs.writeFileSync(tokenFile, mintToken(root.keyPem, { namespace: 'default', serviceAccount: 'early', services: ['early'], ttlMs: 3600e3 }), { mode: 0o600 });
    const cpListen = await h.freePort(); // nothing listens there yet
    const app = await h.startApp('early');
    const sc = await launchSidecar({ controlPlane: cpListen, caDir, service: 'early', token: tokenFile, appPort: app.port, shortAddresses: true, ready: false });

    for (let i = 0; i < 3; i++) {
      const r = await h.request(sc.admin, { path: '/ready' });
      expect(r.status).toBe(503);
      expect(r.body).toMatch(/waiting for a workload certificate/);
      await sleep(300);
    }

    // bound to 127.0.0.1, not 0.0.0.0 nor ::
    const listening = (file: string) =>
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[3] === '0A')
        .map((f) => ({ host: f[1].split(':')[0], port: parseInt(f[1].split(':')[1], 16) }));
    const v4 = listening('/proc/net/tcp');
    const v6 = fs.existsSync('/proc/net/tcp6') ? listening('/proc/net/tcp6') : [];
    for (const port of [sc.outbound, sc.admin, sc.inbound]) {
      expect(v4.filter((l) => l.port === port).map((l) => l.host), `port ${port}`).toEqual(['0100007F']);
      expect(v6.filter((l) => l.port === port), `port ${port}`).toEqual([]);
    }

    const cp = await h.startControlPlane(dir, configPath, { listen: cpListen });
    await h.waitFor('the sidecar to become ready', async () => {
      alive(sc.proc);
      return (await h.request(sc.admin, { path: '/ready' })).status === 200;
    }, 20_000);
    expect((await h.json<CertsView>(sc.admin, '/certs')).spiffeId).toBe(sid('early'));
    expect((await syncz(cp)).find((e) => e.id.endsWith(`.${sc.proc.child.pid}`))?.registered).toBe(true);
  }, 60_000);
});
