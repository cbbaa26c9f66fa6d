// Resilience end to end, with real processes on 127.0.0.1: a control plane watching an
// Istio YAML file, a caller ("frontend") whose requests enter at its sidecar's outbound
// port, and the service "backend" in three subsets — main (one app that plays every part:
// flaky, always failing, slow, body-checking), hang (never answers) and copy (records what
// it gets) — each app behind its own sidecar. The VirtualService gives each scenario its
// own route (by path prefix or header): retries (Istio's default, explicit, off), the
// retry budget, timeouts, body replay, fault abort and delay, gRPC aborts and mirrors.
import * as grpc from '@grpc/grpc-js';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

type FlakyPolicy = 'default' | 'explicit' | 'off';

const FLAKY_RETRIES: Record<FlakyPolicy, string> = {
  default: '', // no `retries`: Istio's default policy (2 retries, 503 among the conditions)
  explicit: '    retries: {attempts: 2, retryOn: 5xx}\n',
  off: '    retries: {attempts: 0}\n',
};

const STORM_ATTEMPTS = 10;
const GRPC_PATH = '/tandem.test.Resilience/Ping';

/**
 * The mesh config. Only the /flaky/ route changes between edits; it tags its answers
 * `x-policy: <policy>`, so an answer is known to come from the config in force.
 */
function meshYaml(flaky: FlakyPolicy): string {
  const main = '    route: [{destination: {host: backend, subset: main}}]\n';
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend}
spec:
  host: backend
  subsets:
  - {name: main, labels: {role: main}}
  - {name: hang, labels: {role: hang}}
  - {name: copy, labels: {role: copy}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend}
spec:
  hosts: [backend]
  http:
  - name: flaky
    match: [{uri: {prefix: /flaky/}}]
    headers: {response: {set: {x-policy: ${flaky}}}}
${FLAKY_RETRIES[flaky]}${main}  - name: storm
    match: [{uri: {prefix: /storm/}}]
    retries: {attempts: ${STORM_ATTEMPTS}, retryOn: 5xx}
${main}  - name: slow
    match: [{uri: {prefix: /slow/}}]
    timeout: 300ms
${main}  - name: body
    match: [{uri: {prefix: /body/}}]
    retries: {attempts: 2, retryOn: 5xx}
${main}  - name: abort
    match: [{uri: {prefix: /abort/}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 30}}}
${main}  - name: delay
    match: [{uri: {prefix: /delay/}}]
    fault: {delay: {fixedDelay: 50ms, percentage: {value: 20}}}
${main}  - name: grpc-abort
    match: [{uri: {prefix: /tandem.test.Resilience/}}]
    fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
${main}  - name: mirror-hang
    match: [{uri: {prefix: /mirror/}, headers: {x-mirror: {exact: hang}}}]
    mirror: {host: backend, subset: hang}
    mirrorPercentage: {value: 100}
${main}  - name: mirror-copy
    match: [{uri: {prefix: /mirror/}, headers: {x-mirror: {exact: copy}}}]
    mirror: {host: backend, subset: copy}
    mirrorPercentage: {value: 100}
${main}  - name: mirror-none
    match: [{uri: {prefix: /mirror/}, headers: {x-mirror: {exact: none}}}]
${main}  - name: plain
${main}`;
}

/** What an app saw of one request (one attempt, from the proxy's point of view). */
interface Seen {
  path: string;
  host: string;
  requestId: string;
  attempt: string | undefined;
  length: number;
  sha256: string;
  /** what the app answered */
  status: number;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** A pool of its own: up to 100 callers at once (the harness's shares 16 sockets). */
const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });

// Sequential loops (and latency measures) use a new connection per request: on a kept-alive
// connection to the outbound port every request currently stalls ~40 ms (a product bug,
// see 'latency' below), which would make them slow and drown a 5 ms comparison in noise.
interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** a new connection for this request (no keep-alive) */
  fresh?: boolean;
}

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}

describe('resilience e2e: retries, budgets, timeouts, faults and mirrors through real sidecars', () => {
  let dir: string;
  let configPath: string;
  let cp: h.ControlPlane;
  let front: h.Sidecar;
  const sidecars: h.Sidecar[] = [];
  let mainApp: h.App;
  let hangApp: h.App;
  let copyApp: h.App;

  // what the apps saw
  const mainSeen: Seen[] = [];
  const copySeen: Seen[] = [];
  let flakyCount = 0;
  const bodyAttempts = new Map<string, number>();
  const slow: { at: number; closedAt?: number; answered: boolean }[] = [];
  // the caller sidecar's access log, by request id (only ours: rz-...)
  const accessLog = new Map<string, { response_code: number; response_flags: string; duration_ms: number }>();

  const writeConfig = (text: string): void => fs.writeFileSync(configPath, text);

  function call(p: string, o: CallOptions = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const headers: Record<string, string | number> = { host: 'backend', ...(o.headers ?? {}) };
      if (o.body !== undefined) headers['content-length'] = Buffer.byteLength(o.body);
      const req = http.request({ host: '127.0.0.1', port: front.outbound, path: p, method: o.method ?? 'GET', headers, agent: o.fresh ? false : agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
        res.on('error', reject);
      });
      req.once('error', reject);
      req.end(o.body);
    });
  }

  /** An app that reads the whole body, hashes it, records what it saw and answers `status(seen)` with it as JSON. */
  function recording(log: Seen[], status: (s: Seen) => number = () => 200) {
    return (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (c: Buffer) => {
        length += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        const s: Seen = {
          path: req.url ?? '',
          host: String(req.headers.host ?? ''),
          requestId: String(req.headers['x-request-id'] ?? ''),
          attempt: req.headers['x-envoy-attempt-count'] as string | undefined,
          length,
          sha256: hash.digest('hex'),
          status: 200,
        };
        s.status = status(s);
        log.push(s);
        res.writeHead(s.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(s));
      });
    };
  }

  /** main: what it answers depends on the path prefix (each scenario has its route) */
  function mainStatus(s: Seen): number {
    if (s.path.startsWith('/flaky/')) return ++flakyCount % 2 === 1 ? 503 : 200; // every second request fails
    if (s.path.startsWith('/storm/')) return 503; // always
    if (s.path.startsWith('/body/')) {
      // 503 the first time a request id is seen, 200 after
      const n = (bodyAttempts.get(s.requestId) ?? 0) + 1;
      bodyAttempts.set(s.requestId, n);
      return n === 1 ? 503 : 200;
    }
    return 200;
  }

  async function converged(): Promise<boolean> {
    const clusters = await h.json<{ name: string; endpoints: { address: string }[] }[]>(front.admin, '/clusters');
    const has = (subset: string, sc: h.Sidecar) => clusters.some((c) => c.name.includes(`|${subset}|backend.`) && c.endpoints.some((e) => e.address === `127.0.0.1:${sc.inbound}`));
    return has('main', sidecars[0]) && has('hang', sidecars[1]) && has('copy', sidecars[2]);
  }

  beforeAll(async () => {
    dir = h.tmpDir('tandem-resilience-e2e-');
    configPath = path.join(dir, 'mesh.yaml');
    writeConfig(meshYaml('default'));
    cp = await h.startControlPlane(dir, configPath);

    const record = recording(mainSeen, mainStatus);
    mainApp = await h.startApp('main', (req, res) => {
      if (!(req.url ?? '').startsWith('/slow/')) return record(req, res);
      // slow: answers after 3 s, unless its request is cancelled first
      const entry: (typeof slow)[number] = { at: performance.now(), answered: false };
      slow.push(entry);
      req.resume();
      const t = setTimeout(() => {
        entry.answered = true;
        res.end('late');
      }, 3000);
      res.once('close', () => {
        clearTimeout(t);
        if (!res.writableEnded) entry.closedAt = performance.now();
      });
    });
    hangApp = await h.startApp('hang', (req) => void req.resume()); // never answers
    copyApp = await h.startApp('copy', recording(copySeen));
    const frontApp = await h.startApp('frontend');

    const started = await Promise.all([
      h.startSidecar(cp, 'backend', mainApp.port, { role: 'main' }),
      h.startSidecar(cp, 'backend', hangApp.port, { role: 'hang' }),
      h.startSidecar(cp, 'backend', copyApp.port, { role: 'copy' }),
      h.startSidecar(cp, 'frontend', frontApp.port, {}, { accessLog: 'stdout' }),
    ]);
    sidecars.push(...started.slice(0, 3));
    front = started[3];

    // the caller sidecar's access log, line by line
    let partial = '';
    front.proc.child.stdout!.on('data', (b: Buffer) => {
      const lines = (partial + b.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        try {
          const e = JSON.parse(line) as { request_id?: string; direction?: string; response_code: number; response_flags: string; duration_ms: number };
          if (e.direction === 'outbound' && e.request_id?.startsWith('rz-')) accessLog.set(e.request_id, e);
        } catch {
          // not an access-log line
        }
      }
    });

    try {
      await h.waitFor('frontend sidecar to learn every backend subset', converged, 10_000);
      await h.waitFor('the backend route in force', async () => (await call('/flaky/probe')).headers['x-policy'] === 'default', 10_000);
    } catch (err) {
      const clusters = await h.request(front.admin, { path: '/clusters' }).catch((e: Error) => e.message);
      throw new Error(`${(err as Error).message}\nclusters: ${JSON.stringify(clusters)}\ncp: ${cp.proc.output().slice(-3000)}\n${[front, ...sidecars].map((sc) => `${sc.service} (exit ${sc.proc.child.exitCode}): ${sc.proc.output().slice(-2000)}`).join('\n')}`);
    }
  });

  afterAll(async () => {
    // the apps first: requests held by the hanging app end, so no sidecar waits on them at SIGTERM
    await h.closeApps();
    await h.stopAll();
    agent.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('retries', () => {
    it('hides an upstream failing every second request (default and explicit policy); attempts: 0 shows it', async () => {
      const N = 200;
      for (const policy of ['default', 'explicit', 'off'] as const) {
        writeConfig(meshYaml(policy));
        await h.waitFor(`the ${policy} retry policy in force`, async () => (await call('/flaky/probe')).headers['x-policy'] === policy, 5000);

        const prefix = `/flaky/${policy}/`;
        const statuses: number[] = [];
        const tags = new Set<string>();
        // one at a time, so "every second request" the app sees is exactly that
        for (let i = 0; i < N; i++) {
          const r = await call(`${prefix}${i}`, { fresh: true });
          statuses.push(r.status);
          tags.add(String(r.headers['x-policy']));
        }
        expect([...tags], policy).toEqual([policy]);
        const seen = mainSeen.filter((s) => s.path.startsWith(prefix));
        const failedAtApp = seen.filter((s) => s.status === 503);
        const failedAtCaller = statuses.filter((s) => s === 503).length;
        console.info(`${policy}: the app answered ${seen.length} attempts, ${failedAtApp.length} of them 503; the caller saw ${failedAtCaller} 503s of ${N}`);

        if (policy === 'off') {
          expect(statuses.filter((s) => s !== 200 && s !== 503), policy).toEqual([]);
          expect(failedAtCaller, policy).toBeGreaterThanOrEqual(N * 0.45);
          expect(failedAtCaller, policy).toBeLessThanOrEqual(N * 0.55);
          expect(seen.length, 'one attempt per request').toBe(N);
          expect(failedAtApp.length).toBe(failedAtCaller);
          expect(seen.filter((s) => s.attempt !== undefined && s.attempt !== '1'), 'no retried attempt').toEqual([]);
        } else {
          expect(statuses.filter((s) => s !== 200), policy).toEqual([]);
          // about half the attempts failed at the app, and each was retried once, as attempt 2
          expect(failedAtApp.length, policy).toBeGreaterThanOrEqual(N * 0.45);
          expect(seen.length, policy).toBe(N + failedAtApp.length);
          const retried = seen.filter((s) => s.attempt === '2');
          expect(retried.length, policy).toBe(failedAtApp.length);
          expect(retried.every((s) => s.status === 200), policy).toBe(true);
          expect(new Set(retried.map((s) => s.path)).size, 'one retry per failed request').toBe(retried.length);
          for (const f of failedAtApp) expect(f.attempt, `${policy}: a first attempt`).toBe('1');
          // the retry of each failed request is that request: same path
          expect(new Set(retried.map((s) => s.path))).toEqual(new Set(failedAtApp.map((s) => s.path)));
        }
      }
    });

    it('caps a retry storm at the retry budget: an always-503 upstream sees far fewer than 11x the requests', async () => {
      const N = 200;
      const CALLERS = 60;
      const statuses = await h.pool(N, CALLERS, async (i) => (await call(`/storm/${i}`)).status);
      // Every caller gets the upstream's 503 (the last attempt's, or the first one's when the budget said no).
      expect(statuses.filter((s) => s !== 503)).toEqual([]);
      const seen = mainSeen.filter((s) => s.path.startsWith('/storm/')).length;
      // The budget: retries in flight per cluster <= max(3, 20% of its active requests).
      // With 60 callers, at most 12 are in a retry at any moment, and the other 48 or more
      // on a first attempt; a retry lasts at least as long as an attempt (its backoff
      // comes first), so retries are at most 12/48 of first attempts: N/4. As callers
      // run out at the end, the floor of 3 retries in flight lets the last few use all
      // their attempts. Bound generously: 2N plus those 3 x 10.
      const budget = Math.max(3, 0.2 * CALLERS);
      const steady = Math.ceil((N * budget) / (CALLERS - budget));
      const bound = 2 * N + 3 * STORM_ATTEMPTS;
      console.info(`storm: ${N} requests, ${seen} attempts at the upstream (${seen - N} retries; steady-state estimate <= ${steady}; bound ${bound}; with no budget ${N * (STORM_ATTEMPTS + 1)})`);
      expect(seen).toBeGreaterThanOrEqual(N);
      expect(seen).toBeLessThan(bound);
      // retries were not simply off: the budget let some through
      expect(seen).toBeGreaterThan(N);
    });

    it('replays a 10 KiB POST body byte-identical on the retry; a 100 KiB one is not retried', async () => {
      // at most 3 callers: the budget's floor is 3 retries in flight, and 20% of 4 active
      // requests is less, so a 4th simultaneous first failure would rightly not be retried
      const small = await h.pool(20, 3, async (i) => {
        const body = randomBytes(10 * 1024);
        const id = `rz-body-small-${i}-${randomBytes(4).toString('hex')}`;
        const r = await call(`/body/small/${i}`, { method: 'POST', body, headers: { 'x-request-id': id, 'content-type': 'application/octet-stream' } });
        return { id, hash: sha(body), r };
      });
      for (const { id, hash, r } of small) {
        expect(r.status, id).toBe(200);
        expect((JSON.parse(r.body) as Seen).sha256, id).toBe(hash);
        const attempts = mainSeen.filter((s) => s.requestId === id);
        expect(attempts.map((s) => [s.attempt, s.status, s.length, s.sha256]), id).toEqual([
          ['1', 503, 10 * 1024, hash],
          ['2', 200, 10 * 1024, hash],
        ]);
      }

      for (let i = 0; i < 3; i++) {
        const body = randomBytes(100 * 1024);
        const id = `rz-body-large-${i}-${randomBytes(4).toString('hex')}`;
        const r = await call(`/body/large/${i}`, { method: 'POST', body, headers: { 'x-request-id': id, 'content-type': 'application/octet-stream' } });
        // the app's own 503 reaches the caller, not retried
        expect(r.status, id).toBe(503);
        expect(r.headers['x-tandem-response-flags'], id).toBeUndefined();
        const attempts = mainSeen.filter((s) => s.requestId === id);
        expect(attempts.map((s) => [s.attempt, s.status, s.length, s.sha256]), id).toEqual([['1', 503, 100 * 1024, sha(body)]]);
      }
    });
  });

  describe('timeouts', () => {
    it('answers a slow upstream (3 s) with 504 UT at the route timeout (300 ms)', async () => {
      const answers = await Promise.all([0, 1, 2].map((i) => call(`/slow/answer-${i}`)));
      for (const r of answers) {
        expect(r.status).toBe(504);
        expect(r.headers['x-tandem-response-flags']).toBe('UT');
        expect(r.ms).toBeGreaterThanOrEqual(290);
        expect(r.ms).toBeLessThan(1500);
      }
    });

    // When the route timeout fires, the caller's sidecar resets the HTTP/2 stream (CANCEL),
    // and the serving sidecar must cancel its request to the application at once (an
    // HTTP/2 reset closes the response without ending it: that is the cancellation).
    it('cancels the upstream request when the route timeout fires: the app sees it go away before it answered', async () => {
      const before = slow.length;
      const answers = await Promise.all([0, 1, 2].map((i) => call(`/slow/cancel-${i}`)));
      for (const r of answers) expect(r.status).toBe(504);
      const mine = await h.waitFor(
        'the slow app to see its requests cancelled',
        () => {
          const m = slow.slice(before);
          return m.length === 3 && m.every((e) => e.closedAt !== undefined) ? m : undefined;
        },
        2500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(slow.slice(before).map((e) => ({ closedAfterMs: e.closedAt && Math.round(e.closedAt - e.at), answered: e.answered })))}`);
      });
      for (const e of mine) {
        expect(e.answered).toBe(false);
        expect(e.closedAt! - e.at).toBeLessThan(1500);
      }
    });
  });

  describe('fault injection', () => {
    it('aborts 30% (+-3 points) of 2000 requests with 418 FI, which never reach the app', async () => {
      const N = 2000;
      const hitsBefore = mainSeen.filter((s) => s.path.startsWith('/abort/')).length;
      const answers = await h.pool(N, 32, (i) => call(`/abort/${i}`));
      const aborted = answers.filter((r) => r.status === 418);
      expect(answers.filter((r) => r.status !== 418 && r.status !== 200).map((r) => r.status)).toEqual([]);
      expect(aborted.filter((r) => r.headers['x-tandem-response-flags'] !== 'FI')).toEqual([]);
      expect(answers.filter((r) => r.status === 200 && r.headers['x-tandem-response-flags'] !== undefined)).toEqual([]);
      const share = aborted.length / N;
      console.info(`abort: ${aborted.length} of ${N} (${(share * 100).toFixed(1)}%)`);
      expect(Math.abs(share - 0.3)).toBeLessThanOrEqual(0.03);
      expect(mainSeen.filter((s) => s.path.startsWith('/abort/')).length - hitsBefore).toBe(N - aborted.length);
    });

    it('delays 20% (+-3 points) of 2000 requests by 50 ms (DI), and only those', async () => {
      const N = 2000;
      const run = randomBytes(3).toString('hex');
      const id = (i: number) => `rz-delay-${run}-${i}`;
      const answers = await h.pool(N, 32, (i) => call(`/delay/${i}`, { headers: { 'x-request-id': id(i) } }));
      expect(answers.filter((r) => r.status !== 200).map((r) => r.status)).toEqual([]);
      // every delayed request reached the app all the same
      expect(mainSeen.filter((s) => s.path.startsWith('/delay/')).length).toBe(N);
      const entries = await h.waitFor(
        'an access-log line for each request',
        () => {
          const e = Array.from({ length: N }, (_, i) => accessLog.get(id(i)));
          return e.every((x) => x !== undefined) ? (e as NonNullable<(typeof e)[number]>[]) : undefined;
        },
        5000,
      );
      const delayed = entries.map((e, i) => ({ e, r: answers[i] })).filter(({ e }) => e.response_flags.split(',').includes('DI'));
      const slowOnes = answers.filter((r) => r.ms >= 45).length;
      const share = delayed.length / N;
      console.info(`delay: ${delayed.length} of ${N} marked DI (${(share * 100).toFixed(1)}%); ${slowOnes} took >= 45 ms at the caller, ${entries.filter((e) => e.duration_ms >= 45).length} at the sidecar`);
      expect(Math.abs(share - 0.2)).toBeLessThanOrEqual(0.03);
      // a DI request really waited (as the caller and the sidecar measured it)
      for (const { e, r } of delayed) {
        expect(r.ms).toBeGreaterThanOrEqual(45);
        expect(e.duration_ms).toBeGreaterThanOrEqual(45);
        expect(e.response_code).toBe(200);
      }
      // and only those: the sidecar spent 45 ms or more on hardly any other request (the
      // caller's own clock is no use here while kept-alive connections stall ~40 ms; 5%, not
      // less, for a machine whose cores other suites load meanwhile: a delay on every
      // request, the bug this guards against, is 80% of them)
      const slowUndelayed = entries.filter((e) => !e.response_flags.split(',').includes('DI') && e.duration_ms >= 45).length;
      expect(slowUndelayed).toBeLessThanOrEqual((N - delayed.length) * 0.05);
      expect(slowOnes).toBeGreaterThanOrEqual(delayed.length);
    });

    it('answers a gRPC caller a trailers-only UNAVAILABLE (HTTP 200, grpc-status 14), a plain HTTP caller 503', async () => {
      const hitsBefore = mainSeen.length;
      // a raw h2c request, to look at the frames
      const session = http2.connect(`http://127.0.0.1:${front.outbound}`);
      try {
        const req = session.request({ ':method': 'POST', ':path': GRPC_PATH, ':authority': 'backend', 'content-type': 'application/grpc', te: 'trailers' });
        req.end(Buffer.from([0, 0, 0, 0, 0])); // one empty message
        const [headers, flags] = (await once(req, 'response')) as [http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, number];
        let trailers: http2.IncomingHttpHeaders | undefined;
        req.on('trailers', (t: http2.IncomingHttpHeaders) => (trailers = t));
        let data = 0;
        req.on('data', (c: Buffer) => (data += c.length));
        await once(req, 'end');
        expect(headers[':status']).toBe(200);
        expect(headers['content-type']).toBe('application/grpc');
        expect(headers['grpc-status']).toBe('14');
        expect(headers['x-tandem-response-flags']).toBe('FI');
        // trailers-only: the status is in the one HEADERS frame, which ends the stream
        expect(flags & http2.constants.NGHTTP2_FLAG_END_STREAM, 'END_STREAM on the HEADERS frame').toBeTruthy();
        expect(data).toBe(0);
        expect(trailers).toBeUndefined();
      } finally {
        session.close();
      }

      // a real gRPC client reads it as UNAVAILABLE
      const client = new grpc.Client(`127.0.0.1:${front.outbound}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'backend' });
      try {
        const err = await new Promise<grpc.ServiceError | null>((resolve) =>
          client.makeUnaryRequest(GRPC_PATH, (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e) => resolve(e)),
        );
        expect(err?.code).toBe(grpc.status.UNAVAILABLE);
      } finally {
        client.close();
      }

      // the same route for a plain HTTP caller: the closest HTTP answer
      const r = await call(GRPC_PATH, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      expect(r.status).toBe(503);
      expect(r.headers['x-tandem-response-flags']).toBe('FI');
      expect(mainSeen.length, 'the app never saw an aborted request').toBe(hitsBefore);
    });
  });

  describe('latency', () => {
    // A kept-alive HTTP/1.1 connection to the outbound port must not wait for the client's
    // delayed ACK (~40 ms) before the last write of each response: the listening socket
    // disables Nagle (TCP_NODELAY), as Envoy does.
    it('adds no delayed-ACK stall to requests on a kept-alive connection', async () => {
      const one = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const get = (a: http.Agent | false) =>
        new Promise<number>((resolve, reject) => {
          const t0 = performance.now();
          http
            .get({ host: '127.0.0.1', port: front.outbound, path: '/plain/latency', headers: { host: 'backend' }, agent: a }, (res) => {
              res.resume();
              res.on('end', () => resolve(performance.now() - t0));
            })
            .once('error', reject);
        });
      try {
        const kept: number[] = [];
        const fresh: number[] = [];
        for (let i = 0; i < 5; i++) await get(one); // warm up
        for (let i = 0; i < 30; i++) {
          kept.push(await get(one));
          fresh.push(await get(false));
        }
        const p50 = { kept: percentile(kept, 50), fresh: percentile(fresh, 50) };
        console.info(`sequential requests, p50: kept-alive connection ${p50.kept.toFixed(1)} ms, new connection each ${p50.fresh.toFixed(1)} ms`);
        // reusing a connection is never slower than making one (allowing for noise)
        expect(p50.kept).toBeLessThan(p50.fresh + 10);
        expect(p50.kept).toBeLessThan(20);
      } finally {
        one.destroy();
      }
    });
  });

  describe('mirror', () => {
    it('a mirror that never answers adds nothing to the original requests p99 (300 sequential, within 5 ms)', async () => {
      const N = 300;
      const hangBefore = hangApp.hits;
      const send = async (mode: 'hang' | 'none') => {
        const r = await call(`/mirror/${mode}`, { headers: { 'x-mirror': mode }, fresh: true });
        expect(r.status, mode).toBe(200);
        return r.ms;
      };
      // warm up both routes (connections to every peer are up)
      for (let i = 0; i < 20; i++) {
        await send('hang');
        await send('none');
      }
      // Alternate which goes first, so drift and noise fall on both alike. A p99 of 300 is
      // the 3rd slowest: on a loaded 2-core machine (other suites in parallel) one burst of
      // noise can land on one side, so a round that misses is measured again, up to 3
      // rounds. A mirror that delays the original (waits on the copy) misses every round.
      const rounds: { hang: number; none: number }[] = [];
      for (let round = 1; round <= 3; round++) {
        const lat = { hang: [] as number[], none: [] as number[] };
        for (let i = 0; i < N; i++) {
          const order: ('hang' | 'none')[] = i % 2 ? ['hang', 'none'] : ['none', 'hang'];
          for (const m of order) lat[m].push(await send(m));
        }
        const p = (m: 'hang' | 'none', q: number) => percentile(lat[m], q).toFixed(2);
        console.info(`round ${round}: mirror to a hanging subset: p50 ${p('hang', 50)} ms, p99 ${p('hang', 99)} ms; no mirror: p50 ${p('none', 50)} ms, p99 ${p('none', 99)} ms`);
        rounds.push({ hang: percentile(lat.hang, 99), none: percentile(lat.none, 99) });
        if (rounds.at(-1)!.hang <= rounds.at(-1)!.none + 5) break;
      }
      const best = rounds.reduce((a, b) => (b.hang - b.none < a.hang - a.none ? b : a));
      expect(best.hang, `p99 with the hanging mirror vs without, per round: ${JSON.stringify(rounds)}`).toBeLessThanOrEqual(best.none + 5);
      // the copies did go out (and hang there)
      const sent = 20 + rounds.length * N;
      await h.waitFor('the hanging subset to get the shadow copies', () => hangApp.hits - hangBefore >= sent, 5000);
      expect(hangApp.hits - hangBefore).toBe(sent);
    });

    it('sends a POST to both the original (body intact) and a working mirror (Host <host>-shadow, same body)', async () => {
      for (let i = 0; i < 5; i++) {
        const body = randomBytes(8 * 1024 + i * 1000);
        const hash = sha(body);
        const id = `rz-mirror-${i}-${randomBytes(4).toString('hex')}`;
        const r = await call(`/mirror/copy/${i}`, { method: 'POST', body, headers: { 'x-mirror': 'copy', 'x-request-id': id } });
        expect(r.status).toBe(200);
        const original = JSON.parse(r.body) as Seen;
        expect(original).toMatchObject({ host: 'backend', length: body.length, sha256: hash });
        const copy = await h.waitFor(`the mirror to get ${id}`, () => copySeen.find((s) => s.requestId === id), 5000);
        expect(copy.host).toMatch(/-shadow$/);
        expect(copy.host).toBe('backend-shadow');
        expect(copy).toMatchObject({ path: `/mirror/copy/${i}`, length: body.length, sha256: hash });
        expect(mainSeen.filter((s) => s.requestId === id)).toHaveLength(1);
      }
    });
  });
});
