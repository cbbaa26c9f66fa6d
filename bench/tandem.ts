// The tandem side of the benchmark: a control plane, a client sidecar and a server
// sidecar for each of backend (mTLS, the default) and backend-plain (plaintext), each with a
// bootstrap token minted with the mesh root key; and, before anything is measured, the
// wire check through a byte-recording relay between the sidecars (a TLS ClientHello for
// backend, a plaintext HTTP/1.1 request line for backend-plain, and the XFCC the backend sees).
// One sidecar alone ("1 sidecar" rows): an application's outbound call to a service outside
// the mesh, a ServiceEntry (STATIC, plain HTTP) whose endpoint is the backend: client →
// client sidecar's outbound port (route, cluster, pool) → HTTP/1.1 keep-alive → backend, the
// job one nginx does. It is the only path through exactly one sidecar that uses its whole
// outbound request path; the backend checks that none of it arrives with an XFCC.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT_CERT, ROOT_KEY } from '../certs/ca';
import { spiffeUri } from '../certs/spiffe';
import { mintToken } from '../certs/token';
import { OBS, WORKERS } from './config';
import { classify, startRelay, type Relay } from './relay';
import { backendStats, NAMES, type Target } from './target';
import { startTraceSink, type TraceSink } from './trace-sink';
import { freePort, httpGet, processTree, startProc, waitFor, type Proc } from './util';

const TANDEM = path.resolve(__dirname, '..', 'cli', 'tandem.js');

export interface Mesh {
  targets: Target[];
  /** what the wire check found, one line each */
  verified: string[];
  caDir: string;
  controlPlane: Proc;
  /** host:port of its ADS/CA listener */
  cpTarget: string;
  /** BENCH_OBS: where the spans row's sidecars export, and the trace of one known request */
  traces?: { sink: TraceSink; exampleTraceId: string; admins: number[] };
}

const MESH_SERVICES = { mtls: 'backend', plain: 'backend-plain', logged: 'backend-logged', bare: 'backend-bare', traced: 'backend-traced' } as const;
/** the backend as a service outside the mesh (ServiceEntry), for the one-sidecar rows */
const EXTERNAL_HOST = 'backend.external';

/** The mesh config: the services routed to themselves; backend-plain plaintext both ways; the backend as a ServiceEntry. */
function meshConfig(backendPort: number): string {
  const vs = (host: string) => [
    'apiVersion: networking.istio.io/v1',
    'kind: VirtualService',
    'metadata:',
    `  name: ${host}`,
    '  namespace: default',
    'spec:',
    `  hosts: [${host}]`,
    '  http:',
    '  - route:',
    '    - destination:',
    `        host: ${host}`,
  ];
  return [
    // backend: no PeerAuthentication (STRICT) and no DestinationRule (ISTIO_MUTUAL), the default
    ...vs(MESH_SERVICES.mtls),
    '---',
    ...vs(MESH_SERVICES.plain),
    '---',
    ...vs(MESH_SERVICES.logged),
    '---',
    ...vs(MESH_SERVICES.bare),
    '---',
    ...vs(MESH_SERVICES.traced),
    '---',
    'apiVersion: networking.istio.io/v1',
    'kind: ServiceEntry',
    'metadata:',
    '  name: backend-external',
    '  namespace: default',
    'spec:',
    `  hosts: [${EXTERNAL_HOST}]`,
    '  location: MESH_EXTERNAL',
    '  ports:',
    '  - {number: 80, name: http, protocol: HTTP}',
    '  resolution: STATIC',
    '  endpoints:',
    `  - {address: 127.0.0.1, ports: {http: ${backendPort}}}`,
    '---',
    // backend-plain: its server sidecar also takes plaintext, and clients send plaintext to it
    'apiVersion: security.istio.io/v1',
    'kind: PeerAuthentication',
    'metadata:',
    `  name: ${MESH_SERVICES.plain}`,
    '  namespace: default',
    'spec:',
    '  selector:',
    '    matchLabels:',
    `      app: ${MESH_SERVICES.plain}`,
    '  mtls:',
    '    mode: PERMISSIVE',
    '---',
    'apiVersion: networking.istio.io/v1',
    'kind: DestinationRule',
    'metadata:',
    `  name: ${MESH_SERVICES.plain}`,
    '  namespace: default',
    'spec:',
    `  host: ${MESH_SERVICES.plain}`,
    '  trafficPolicy:',
    '    tls:',
    '      mode: DISABLE',
    '',
  ].join('\n');
}

/** the mTLS hop with the sidecars' defaults: access log (stdout) and metrics on both sides */
export const ACCESS_LOG_TARGET = NAMES.hop;
/** the mTLS hop with nothing recorded: --access-log off --metrics off, no OTLP (the baseline of the observability rows) */
export const BARE_TARGET = NAMES.hopBare;
/** the defaults plus spans exported over OTLP/HTTP protobuf to the bench's sink */
export const SPANS_TARGET = NAMES.hopSpans;

interface Sidecar {
  proc: Proc;
  service: string;
  /** the address it told the control plane */
  address: string;
  outbound: number;
  admin: number;
}

/**
 * One control plane and three sidecars: a client, and a server sidecar for each of
 * backend (mTLS) and backend-plain (plaintext), both in front of the same backend process.
 * Before those server sidecars start, a stand-in for each (same service, same labels,
 * same token) advertises a byte-recording relay instead of its own port, so the first
 * bytes the client sidecar sends can be checked; then the stand-ins make way.
 */
export async function startTandem(dir: string, backend: Proc, backendPort: number): Promise<Mesh> {
  if (!fs.existsSync(TANDEM)) throw new Error(`${TANDEM} not found: run npm run build first`);
  const meshDir = path.join(dir, 'tandem');
  fs.mkdirSync(meshDir);
  const config = path.join(meshDir, 'mesh.yaml');
  fs.writeFileSync(config, meshConfig(backendPort));
  const caDir = path.join(meshDir, 'certs');
  const [listen, admin] = [await freePort(), await freePort()];
  const cp = startProc('control-plane', process.execPath, [TANDEM, 'control-plane', '--config', config, '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--ca-dir', caDir]);
  await waitFor('control plane /ready', async () => (await httpGet(admin, '/ready')).status === 200).catch((err: Error) => {
    throw new Error(`${err.message}\n${cp.output().slice(-2000)}`);
  });

  // Bootstrap tokens, as `tandem token --namespace default --service-account SVC --service SVC` mints them.
  const rootKey = fs.readFileSync(path.join(caDir, ROOT_KEY), 'utf8');
  const tokenFile = (service: string) => {
    const f = path.join(meshDir, `${service}.token`);
    if (!fs.existsSync(f)) fs.writeFileSync(f, mintToken(rootKey, { namespace: 'default', serviceAccount: service, services: [service], ttlMs: 3600e3 }), { mode: 0o600 });
    return f;
  };

  const sidecar = async (
    service: string,
    appPort: number,
    advertise?: (inbound: number) => Promise<number>,
    accessLog = 'off',
    more: { metrics?: 'on' | 'off'; env?: NodeJS.ProcessEnv; concurrency?: number } = {},
  ): Promise<Sidecar> => {
    const [inbound, outbound, sAdmin] = [await freePort(), await freePort(), await freePort()];
    const advertised = advertise ? await advertise(inbound) : inbound;
    const proc = startProc(`sidecar ${service}`, process.execPath, [
      TANDEM, 'sidecar',
      '--service', service,
      '--labels', `app=${service}`,
      '--app', `127.0.0.1:${appPort}`,
      '--inbound', `127.0.0.1:${inbound}`,
      ...(advertise ? ['--advertise', `127.0.0.1:${advertised}`] : []),
      '--outbound', `127.0.0.1:${outbound}`,
      '--admin', `127.0.0.1:${sAdmin}`,
      '--control-plane', `127.0.0.1:${listen}`,
      '--root-cert', path.join(caDir, ROOT_CERT),
      '--token', tokenFile(service),
      '--access-log', accessLog,
      '--metrics', more.metrics ?? 'on',
      ...(more.concurrency ? ['--concurrency', String(more.concurrency)] : []),
    ], more.env);
    // With --concurrency the workers share the admin port and each answers for itself: ready
    // when all the workers are there and 4 readiness checks per worker in a row say so.
    const workers = more.concurrency ?? 1;
    let inARow = 0;
    await waitFor(`sidecar ${service} /ready`, async () => {
      if (workers > 1 && processTree(proc.pid).length - 1 < workers) return false;
      inARow = (await httpGet(sAdmin, '/ready')).status === 200 ? inARow + 1 : 0;
      return inARow >= 4 * workers;
    }, 30_000, 20).catch((err: Error) => {
      throw new Error(`${err.message}\n${proc.output().slice(-2000)}`, { cause: err });
    });
    return { proc, service, address: `127.0.0.1:${advertised}`, outbound, admin: sAdmin };
  };

  const through = async (client: Sidecar, host: string, what: string) => {
    let last = '';
    await waitFor(`a 200 through ${what}`, async () => {
      const r = await httpGet(client.outbound, '/', host);
      last = `${r.status} ${r.body.slice(0, 200)}`;
      return r.status === 200;
    }).catch((err: Error) => {
      throw new Error(`${err.message} (last: ${last})`);
    });
  };

  // 1. The wire check, with stand-in server sidecars behind relays.
  const relays: Relay[] = [];
  const viaRelay = async (inbound: number) => {
    const r = await startRelay(inbound);
    relays.push(r);
    return r.port;
  };
  const [probeMtls, probePlain] = await Promise.all([sidecar(MESH_SERVICES.mtls, backendPort, viaRelay), sidecar(MESH_SERVICES.plain, backendPort, viaRelay)]);
  // The client's own application is never called in this benchmark; any port will do.
  const client = await sidecar('client', await freePort());
  const verified: string[] = [];
  const clientId = spiffeUri({ trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'client' });
  for (const [svc, relay, want] of [[MESH_SERVICES.mtls, relays[0], 'tls'], [MESH_SERVICES.plain, relays[1], 'http1']] as const) {
    await through(client, svc, `client sidecar -> relay -> ${svc} sidecar -> backend`);
    const before = await backendStats(backend);
    const n = 5;
    for (let i = 0; i < n; i++) {
      const r = await httpGet(client.outbound, '/', svc);
      if (r.status !== 200) throw new Error(`wire check: ${svc}: ${r.status} ${r.body.slice(0, 200)}`);
    }
    const after = await backendStats(backend);
    const kinds = relay.firstBytes.map(classify);
    const xfcc = after.xfcc - before.xfcc;
    const hex = relay.firstBytes[0]?.subarray(0, 6).toString('hex').replace(/(..)/g, '$1 ').trim() ?? '';
    if (kinds.length === 0 || kinds.some((k) => k !== want)) {
      throw new Error(`wire check: ${svc}: expected ${want}, the client sidecar opened ${kinds.length} connection(s): ${kinds.join(', ') || 'none'} (first bytes ${hex})`);
    }
    if (want === 'tls' && (xfcc !== n || !after.lastXfcc.includes(`URI=${clientId}`))) {
      throw new Error(`wire check: ${svc}: ${xfcc}/${n} requests reached the backend with an XFCC naming ${clientId} (last: ${after.lastXfcc})`);
    }
    if (want === 'http1' && xfcc !== 0) throw new Error(`wire check: ${svc}: ${xfcc}/${n} plaintext requests reached the backend with a SPIFFE XFCC`);
    verified.push(
      want === 'tls'
        ? `${svc}: TLS on the wire (${kinds.length} connection(s), first bytes ${hex}: a TLS handshake record, ClientHello), and ${xfcc}/${n} requests reached the backend with XFCC URI=${clientId}`
        : `${svc}: plaintext on the wire (${kinds.length} connection(s), first bytes "${relay.firstBytes[0]?.subarray(0, 14).toString('latin1')}": a plaintext HTTP/1.1 request line), and ${n - xfcc}/${n} requests reached the backend without XFCC`,
    );
  }

  // 2. The measured server sidecars (no relay), then the stand-ins leave.
  const [server, serverPlain] = await Promise.all([sidecar(MESH_SERVICES.mtls, backendPort), sidecar(MESH_SERVICES.plain, backendPort)]);
  // the default access log (stdout, read by this process as a container runtime would) on both sides
  const [clientLogged, serverLogged] = await Promise.all([sidecar('client-logged', await freePort(), undefined, 'stdout'), sidecar(MESH_SERVICES.logged, backendPort, undefined, 'stdout')]);
  // one sidecar with --concurrency WORKERS and the defaults, for the one-sidecar rows
  const clientWorkers = await sidecar('client-workers', await freePort(), undefined, 'stdout', { concurrency: WORKERS });
  // BENCH_OBS: the same hop with nothing recorded, and with the defaults plus spans over OTLP
  let obs: { bare: [Sidecar, Sidecar]; traced: [Sidecar, Sidecar]; sink: TraceSink } | undefined;
  if (OBS) {
    const sink = await startTraceSink();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' };
    const [cb, sb, ct, st] = await Promise.all([
      sidecar('client-bare', await freePort(), undefined, 'off', { metrics: 'off' }),
      sidecar(MESH_SERVICES.bare, backendPort, undefined, 'off', { metrics: 'off' }),
      sidecar('client-traced', await freePort(), undefined, 'stdout', { env }),
      sidecar(MESH_SERVICES.traced, backendPort, undefined, 'stdout', { env }),
    ]);
    obs = { bare: [cb, sb], traced: [ct, st], sink };
  }
  await Promise.all([probeMtls.proc.stop(), probePlain.proc.stop()]);
  await Promise.all(relays.map((r) => r.close()));
  const relayAddrs = new Set([probeMtls.address, probePlain.address]);
  let seen = '';
  await waitFor('the client sidecar to drop the stand-ins and see only the measured server sidecars', async () => {
    const r = await httpGet(client.admin, '/clusters');
    const addrs = new Set((JSON.parse(r.body) as { endpoints: { address: string }[] }[]).flatMap((c) => c.endpoints.map((e) => e.address)));
    seen = [...addrs].join(', ');
    return addrs.has(server.address) && addrs.has(serverPlain.address) && addrs.has(serverLogged.address) && ![...relayAddrs].some((a) => addrs.has(a));
  }).catch((err: Error) => {
    throw new Error(`${err.message} (endpoints: ${seen})`);
  });

  await through(client, MESH_SERVICES.mtls, `client sidecar -> ${MESH_SERVICES.mtls} sidecar -> backend`);
  await through(client, MESH_SERVICES.plain, `client sidecar -> ${MESH_SERVICES.plain} sidecar -> backend`);
  await through(clientLogged, MESH_SERVICES.logged, `client-logged sidecar -> ${MESH_SERVICES.logged} sidecar -> backend`);
  for (const s of [client, clientLogged, clientWorkers]) await through(s, EXTERNAL_HOST, `${s.service} sidecar -> ${EXTERNAL_HOST} (ServiceEntry) -> backend`);
  const logged = (s: Sidecar) => s.proc.output().includes('"response_code":200');
  // written in batches, a moment after the response
  await waitFor('an access log line from both access-log sidecars', async () => logged(clientLogged) && logged(serverLogged), 5000);
  let traces: Mesh['traces'];
  if (obs) {
    await through(obs.bare[0], MESH_SERVICES.bare, `client-bare sidecar -> ${MESH_SERVICES.bare} sidecar -> backend`);
    await through(obs.traced[0], MESH_SERVICES.traced, `client-traced sidecar -> ${MESH_SERVICES.traced} sidecar -> backend`);
    // one request with a known trace, as an application that starts one sends it: its spans
    // are read back from the sink after the measured runs (exported by then)
    const exampleTraceId = randomBytes(16).toString('hex');
    const r = await httpGet(obs.traced[0].outbound, '/', MESH_SERVICES.traced, 2000, { traceparent: `00-${exampleTraceId}-${randomBytes(8).toString('hex')}-01` });
    if (r.status !== 200) throw new Error(`the example trace's request: ${r.status} ${r.body.slice(0, 200)}`);
    traces = { sink: obs.sink, exampleTraceId, admins: obs.traced.map((t) => t.admin) };
  }

  // one sidecar: its outbound port to the ServiceEntry; every request must arrive without XFCC
  const single = (name: string, s: Sidecar, label: string): Target => ({
    name,
    url: `http://127.0.0.1:${s.outbound}/`,
    host: EXTERNAL_HOST,
    xfcc: 'none',
    proxies: [{ label, pid: s.proc.pid }],
  });
  const target = (name: string, host: string, s: Sidecar, xfcc: 'all' | 'none', from = client): Target => ({
    name,
    url: `http://127.0.0.1:${from.outbound}/`,
    host,
    xfcc,
    proxies: [
      { label: 'client sidecar', pid: from.proc.pid },
      { label: `${s.service} sidecar`, pid: s.proc.pid },
    ],
  });
  return {
    targets: [
      single(NAMES.sidecar, clientLogged, 'sidecar'),
      single(NAMES.sidecarNoLog, client, 'sidecar'),
      single(NAMES.sidecarC2, clientWorkers, `sidecar (primary + ${WORKERS} workers)`),
      target(ACCESS_LOG_TARGET, MESH_SERVICES.logged, serverLogged, 'all', clientLogged),
      target(NAMES.hopNoLog, MESH_SERVICES.mtls, server, 'all'),
      target(NAMES.hopPlain, MESH_SERVICES.plain, serverPlain, 'none'),
      ...(obs
        ? [target(BARE_TARGET, MESH_SERVICES.bare, obs.bare[1], 'all', obs.bare[0]), target(SPANS_TARGET, MESH_SERVICES.traced, obs.traced[1], 'all', obs.traced[0])]
        : []),
    ],
    traces,
    verified,
    caDir,
    controlPlane: cp,
    cpTarget: `127.0.0.1:${listen}`,
  };
}
