// The soak's mesh, as processes on 127.0.0.1: the app (soak-app.ts), a control plane
// whose workload certificates live `certTtl` (so sidecars renew every ~0.45 of it), a
// server sidecar for service `backend` in front of the app, and a client sidecar whose
// outbound port takes the load. The config (mesh.yaml, watched by the control plane) is
// one VirtualService and one DestinationRule; each generation sets its number in a response
// header and swaps the split between two subsets, so the soak can see every edit arrive.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT_CERT, ROOT_KEY } from '../certs/ca';
import { mintToken } from '../certs/token';
import type { SoakAppStats } from './soak-app';
import { forkProc, freePort, httpGet, startProc, waitFor, type Proc } from './util';

const TANDEM = path.resolve(__dirname, '..', 'cli', 'tandem.js');
export const SERVICE = 'backend';

export interface SoakSidecar {
  name: string;
  service: string;
  proc: Proc;
  admin: number;
  inbound: number;
  outbound: number;
  /** "certificate … for … until …" lines its log has shown so far */
  rotationLogLines(): number;
  /** access log lines (JSON on stdout) so far */
  accessLogLines(): number;
}

export interface SoakMesh {
  app: Proc;
  controlPlane: Proc;
  cpAdmin: number;
  client: SoakSidecar;
  server: SoakSidecar;
  configPath: string;
  /** Replaces mesh.yaml (write, then rename over it, as editors and ConfigMaps do). */
  writeConfig(generation: number): void;
  appStats(): Promise<SoakAppStats>;
}

/** The v1 subset's weight in a generation (the rest goes to subset `all`): 90 and 10 alternately. */
export function v1Weight(generation: number): number {
  return generation % 2 ? 10 : 90;
}

function meshYaml(generation: number): string {
  const w = v1Weight(generation);
  return [
    `# soak config generation ${generation}, written ${new Date().toISOString()}`,
    'apiVersion: networking.istio.io/v1',
    'kind: VirtualService',
    'metadata:',
    `  name: ${SERVICE}`,
    '  namespace: default',
    'spec:',
    `  hosts: [${SERVICE}]`,
    '  http:',
    '  - name: soak',
    '    headers:',
    '      response:',
    '        set:',
    `          x-soak-config: "${generation}"`,
    '    route:',
    '    - destination:',
    `        host: ${SERVICE}`,
    '        subset: v1',
    `      weight: ${w}`,
    '      headers:',
    '        response:',
    '          set:',
    '            x-soak-subset: v1',
    '    - destination:',
    `        host: ${SERVICE}`,
    '        subset: all',
    `      weight: ${100 - w}`,
    '      headers:',
    '        response:',
    '          set:',
    '            x-soak-subset: all',
    '---',
    'apiVersion: networking.istio.io/v1',
    'kind: DestinationRule',
    'metadata:',
    `  name: ${SERVICE}`,
    '  namespace: default',
    'spec:',
    `  host: ${SERVICE}`,
    '  subsets:',
    '  - name: v1',
    '    labels:',
    '      version: v1',
    '  - name: all',
    '    labels:',
    `      app: ${SERVICE}`,
    '',
  ].join('\n');
}

/** Counts complete lines of a stream that match, across chunk boundaries. */
function lineCounter(stream: NodeJS.ReadableStream | null, re: RegExp): () => number {
  let n = 0;
  let partial = '';
  stream?.on('data', (b: Buffer) => {
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (re.test(l)) n++;
  });
  return () => n;
}

let appQueries = 0;

export async function startSoakMesh(dir: string, certTtl: string): Promise<SoakMesh> {
  if (!fs.existsSync(TANDEM)) throw new Error(`${TANDEM} not found: run npm run build first`);
  const app = forkProc('app', path.join(__dirname, 'soak-app.js'));
  const appPort = await new Promise<number>((resolve, reject) => {
    app.child.once('message', (m: { port: number }) => resolve(m.port));
    app.child.once('exit', () => reject(new Error(`the soak app exited: ${app.output()}`)));
  });

  const configPath = path.join(dir, 'mesh.yaml');
  const writeConfig = (generation: number) => {
    const tmp = `${configPath}.tmp`;
    fs.writeFileSync(tmp, meshYaml(generation));
    fs.renameSync(tmp, configPath);
  };
  writeConfig(0);
  const caDir = path.join(dir, 'certs');
  const [listen, cpAdmin] = [await freePort(), await freePort()];
  const controlPlane = startProc('control-plane', process.execPath, [
    TANDEM, 'control-plane',
    '--config', configPath,
    '--listen', `127.0.0.1:${listen}`,
    '--admin', `127.0.0.1:${cpAdmin}`,
    '--ca-dir', caDir,
    '--cert-ttl', certTtl,
  ]);
  await waitFor('control plane /ready', async () => (await httpGet(cpAdmin, '/ready')).status === 200).catch((err: Error) => {
    throw new Error(`${err.message}\n${controlPlane.output().slice(-2000)}`, { cause: err });
  });

  const rootKey = fs.readFileSync(path.join(caDir, ROOT_KEY), 'utf8');
  const sidecar = async (service: string, labels: string, appAt: number): Promise<SoakSidecar> => {
    const token = path.join(dir, `${service}.token`);
    // as `tandem token --namespace default --service-account SVC --service SVC` mints it
    fs.writeFileSync(token, mintToken(rootKey, { namespace: 'default', serviceAccount: service, services: [service], ttlMs: 24 * 3600e3 }), { mode: 0o600 });
    const [inbound, outbound, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = startProc(`${service} sidecar`, process.execPath, [
      TANDEM, 'sidecar',
      '--service', service,
      '--labels', labels,
      '--app', `127.0.0.1:${appAt}`,
      '--inbound', `127.0.0.1:${inbound}`,
      '--outbound', `127.0.0.1:${outbound}`,
      '--admin', `127.0.0.1:${admin}`,
      '--control-plane', `127.0.0.1:${listen}`,
      '--root-cert', path.join(caDir, ROOT_CERT),
      '--token', token,
      // the access log is left at its default (stdout, read by this process) so that it soaks too
    ]);
    const rotationLogLines = lineCounter(proc.child.stderr, /\binfo\b.*\bcertificate [0-9A-Fa-f]+ for spiffe:\/\/\S+ until /);
    const accessLogLines = lineCounter(proc.child.stdout, /"response_code":/);
    await waitFor(`${service} sidecar /ready`, async () => (await httpGet(admin, '/ready')).status === 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${proc.output().slice(-2000)}`, { cause: err });
    });
    return { name: `${service} sidecar`, service, proc, admin, inbound, outbound, rotationLogLines, accessLogLines };
  };
  const server = await sidecar(SERVICE, `app=${SERVICE},version=v1`, appPort);
  // the client's own application is never called: any port will do
  const client = await sidecar('client', 'app=client', await freePort());

  let last = '';
  await waitFor(`a 200 through client sidecar -> ${SERVICE} sidecar -> app`, async () => {
    const r = await httpGet(client.outbound, '/', SERVICE);
    last = `${r.status} ${r.body.slice(0, 200)}`;
    return r.status === 200;
  }).catch((err: Error) => {
    throw new Error(`${err.message} (last: ${last})`, { cause: err });
  });

  const appStats = (): Promise<SoakAppStats> => {
    const id = ++appQueries;
    return new Promise((resolve, reject) => {
      const onMsg = (m: { id?: number; stats?: SoakAppStats }) => {
        if (m.id !== id || !m.stats) return;
        app.child.off('message', onMsg);
        resolve(m.stats);
      };
      app.child.on('message', onMsg);
      app.child.send({ id }, (err) => {
        if (err) reject(err);
      });
    });
  };

  return { app, controlPlane, cpAdmin, client, server, configPath, writeConfig, appStats };
}
