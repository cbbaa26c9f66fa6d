// DestinationRules as Istio has them, end to end with real processes on 127.0.0.1: one
// control plane watching an Istio YAML file, one client sidecar every request enters (as
// its application would send them), and a service per behaviour:
//
//   merged   v1 and v2, their subsets in two DestinationRules      rules for one host merge
//   ported   one endpoint holding each request 300 ms              a pool limit on one port only
//   warm     one endpoint, then a second one joins                 warmupDurationSecs ramps it
//   idle     a ServiceEntry endpoint (an app, no sidecar)          idleTimeout closes the connection
//
// Every VirtualService route tags its answers `x-route: <name>`, so a test knows an answer
// came from the route under test and not from the default route used while it was not yet
// in force.
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

interface ClusterInfo {
  name: string;
  endpoints: { address: string }[];
}

function meshYaml(idlePort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: merged-v1}
spec:
  host: merged
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: merged-v2}
spec:
  host: merged.default.svc.cluster.local
  subsets:
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: merged}
spec:
  hosts: [merged]
  http:
  - match: [{headers: {x-version: {exact: v2}}}]
    headers: {response: {set: {x-route: merged-v2}}}
    route: [{destination: {host: merged, subset: v2}}]
  - headers: {response: {set: {x-route: merged-v1}}}
    route: [{destination: {host: merged, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ported}
spec:
  host: ported
  trafficPolicy:
    connectionPool: {http: {http2MaxRequests: 100}}
    portLevelSettings:
    - port: {number: 9080}
      connectionPool: {http: {http2MaxRequests: 1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ported}
spec:
  hosts: [ported]
  http:
  - match: [{uri: {prefix: /capped}}]
    headers: {response: {set: {x-route: ported-9080}}}
    retries: {attempts: 0}
    route: [{destination: {host: ported, port: {number: 9080}}}]
  - headers: {response: {set: {x-route: ported-80}}}
    retries: {attempts: 0}
    route: [{destination: {host: ported, port: {number: 80}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: warm}
spec:
  host: warm
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 120s}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: warm}
spec:
  hosts: [warm]
  http:
  - headers: {response: {set: {x-route: warm}}}
    route: [{destination: {host: warm}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: idle}
spec:
  hosts: [idle.example.com]
  location: MESH_EXTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: ${idlePort}}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: idle}
spec:
  host: idle.example.com
  trafficPolicy:
    connectionPool: {http: {idleTimeout: 1s}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: idle}
spec:
  hosts: [idle.example.com]
  http:
  - headers: {response: {set: {x-route: idle}}}
    route: [{destination: {host: idle.example.com}}]
`;
}

// more callers in flight than the harness's agent allows, each on its own connection
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

interface Answer extends h.HttpResult {
  /** the app that answered (from its JSON body), or undefined for a proxy's own reply */
  app?: string;
}

/** An app answering `{"app": name}`, after `delayMs`. */
function behaviour(name: string, delayMs = 0) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    req.resume();
    req.on('end', () => {
      const answer = () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ app: name }));
      };
      if (delayMs) setTimeout(answer, delayMs);
      else answer();
    });
  };
}

describe('DestinationRule e2e: merged rules, portLevelSettings, warm-up, idle timeout', () => {
  let dir: string;
  let configPath: string;
  let cp: h.ControlPlane;
  let client: h.Sidecar;
  const apps: Record<string, h.App> = {};
  const sidecars: Record<string, h.Sidecar> = {};
  // the connections the idle backend was opened, and how many of them were closed
  const idleConns = { opened: 0, closed: 0 };
  let idleServer: http.Server;
  let idlePort = 0;

  /** One request through the client sidecar, as its application would send it. */
  function send(host: string, p: string, headers: Record<string, string> = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: client.outbound, path: p, headers: { ...headers, host }, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          let app: string | undefined;
          try {
            app = (JSON.parse(body) as { app?: string }).app;
          } catch {
            app = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, app });
        });
      });
      req.once('error', reject);
      req.end();
    });
  }

  /** The client sidecar's endpoints of the clusters matching `re`. */
  async function endpointsOf(re: RegExp): Promise<Set<string>> {
    const cs = await h.json<ClusterInfo[]>(client.admin, '/clusters');
    return new Set(cs.filter((c) => re.test(c.name)).flatMap((c) => c.endpoints.map((e) => e.address)));
  }

  const addressOf = (name: string) => `127.0.0.1:${sidecars[name].inbound}`;

  /** Waits until requests for host+path answer from the VirtualService route tagged `tag`. */
  async function routeInForce(host: string, p: string, tag: string, headers: Record<string, string> = {}): Promise<void> {
    let last = '';
    await h
      .waitFor(
        `route ${tag} in force`,
        async () => {
          const r = await send(host, p, headers);
          last = `${r.status} x-route=${String(r.headers['x-route'])} ${r.body.slice(0, 200)}`;
          return r.status === 200 && r.headers['x-route'] === tag;
        },
        20_000,
        100,
      )
      .catch((err: Error) => {
        throw new Error(`${err.message}; last answer: ${last}; cp: ${cp.proc.output().slice(-2000)}`);
      });
  }

  beforeAll(async () => {
    dir = h.tmpDir('tandem-dr-e2e-');
    configPath = path.join(dir, 'mesh.yaml');

    // a plain HTTP/1.1 backend outside the mesh, counting its connections
    idleServer = http.createServer(behaviour('idle'));
    idleServer.keepAliveTimeout = 120_000;
    idleServer.on('connection', (s: Socket) => {
      idleConns.opened++;
      s.once('close', () => idleConns.closed++);
    });
    await new Promise<void>((r) => idleServer.listen(0, '127.0.0.1', () => r()));
    idlePort = (idleServer.address() as { port: number }).port;

    fs.writeFileSync(configPath, meshYaml(idlePort));
    cp = await h.startControlPlane(dir, configPath);

    apps.client = await h.startApp('client');
    apps.mergedV1 = await h.startApp('merged-v1', behaviour('merged-v1'));
    apps.mergedV2 = await h.startApp('merged-v2', behaviour('merged-v2'));
    apps.ported = await h.startApp('ported', behaviour('ported', 300));
    apps.warmOld = await h.startApp('warm-old', behaviour('warm-old'));
    apps.warmNew = await h.startApp('warm-new', behaviour('warm-new'));

    const workloads: [string, string, Record<string, string>][] = [
      ['mergedV1', 'merged', { version: 'v1' }],
      ['mergedV2', 'merged', { version: 'v2' }],
      ['ported', 'ported', { version: 'v1' }],
      ['warmOld', 'warm', { version: 'v1' }],
    ];
    const started = await Promise.all([
      h.startSidecar(cp, 'client', apps.client.port),
      ...workloads.map(([name, service, labels]) => h.startSidecar(cp, service, apps[name].port, labels)),
    ]);
    client = started[0];
    workloads.forEach(([name], i) => (sidecars[name] = started[i + 1]));

    await h.waitFor(
      'the client sidecar to learn every endpoint',
      async () =>
        (await endpointsOf(/\|v1\|merged\./)).has(addressOf('mergedV1')) &&
        (await endpointsOf(/\|v2\|merged\./)).has(addressOf('mergedV2')) &&
        (await endpointsOf(/\|9080\|\|ported\./)).has(addressOf('ported')) &&
        (await endpointsOf(/\|80\|\|ported\./)).has(addressOf('ported')) &&
        (await endpointsOf(/\|\|warm\./)).has(addressOf('warmOld')),
      20_000,
      100,
    );
    await routeInForce('merged', '/', 'merged-v1');
    await routeInForce('merged', '/', 'merged-v2', { 'x-version': 'v2' });
    await routeInForce('ported', '/capped', 'ported-9080');
    await routeInForce('ported', '/', 'ported-80');
    await routeInForce('warm', '/', 'warm');
  });

  afterAll(async () => {
    agent.destroy();
    await h.stopAll();
    await h.closeApps();
    if (idleServer) {
      idleServer.closeAllConnections();
      idleServer.close();
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('two DestinationRules for one host merge: the subsets of both are routed to', async () => {
    for (let i = 0; i < 5; i++) {
      const v1 = await send('merged', '/');
      expect([v1.status, v1.app]).toEqual([200, 'merged-v1']);
      const v2 = await send('merged', '/', { 'x-version': 'v2' });
      expect([v2.status, v2.app]).toEqual([200, 'merged-v2']);
    }
  });

  it("portLevelSettings: port 9080's pool takes one request at a time, port 80 takes all three", async () => {
    const capped = await Promise.all([0, 1, 2].map(() => send('ported', '/capped')));
    expect(capped.filter((r) => r.status === 200)).toHaveLength(1);
    expect(capped.filter((r) => r.status === 503)).toHaveLength(2);
    const open = await Promise.all([0, 1, 2].map(() => send('ported', '/')));
    expect(open.map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it('warmupDurationSecs: an endpoint that joins gets a small share at first', async () => {
    // the old endpoint has had traffic; now a second one registers
    sidecars.warmNew = await h.startSidecar(cp, 'warm', apps.warmNew.port, { version: 'v1' });
    await h.waitFor('the client sidecar to learn the new endpoint', async () => (await endpointsOf(/\|\|warm\./)).has(addressOf('warmNew')), 20_000, 100);
    const answers: Answer[] = [];
    for (let i = 0; i < 100; i++) answers.push(await send('warm', '/'));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const fresh = answers.filter((a) => a.app === 'warm-new').length;
    // round robin alone would give it 50; 10% of a weight (rising to ~15% over two
    // minutes of warm-up, whatever this machine's speed) gives it about one in ten
    expect(fresh).toBeGreaterThan(0);
    expect(fresh).toBeLessThan(25);
  });

  it('connectionPool.http.idleTimeout: the sidecar closes its idle connection to the backend', async () => {
    await routeInForce('idle.example.com', '/', 'idle');
    const opened = idleConns.opened;
    expect(opened).toBeGreaterThan(0);
    // every connection the sidecar opened is closed once idle for a second (the default would keep it a minute)
    await h.waitFor('the backend to see its connections closed', () => idleConns.closed === idleConns.opened, 10_000, 50);
    const r = await send('idle.example.com', '/');
    expect([r.status, r.app]).toEqual([200, 'idle']);
  });
});
