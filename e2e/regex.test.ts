// RE2 regexes and uriRegexRewrite end to end, with real processes on 127.0.0.1: a control
// plane watching an Istio YAML file, a caller ("frontend") whose requests enter at its
// sidecar's outbound port, and reviews v1 and v2, each app behind its own sidecar. Each
// route tags its answers `x-route: <name>`, so an answer says which route took it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';

interface AppAnswer {
  app: string;
  path: string;
}

interface DebugConfig {
  lastError?: { message: string; field?: string };
}

const route = (name: string, subset: string, rest: string) =>
  `  - name: ${name}\n${rest}    headers: {response: {set: {x-route: ${name}}}}\n    route: [{destination: {host: reviews, subset: ${subset}}}]\n`;

const MESH = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
${route('user', 'v2', '    match: [{headers: {end-user: {regex: "(?i)jason"}}}]\n')}${route('api', 'v2', '    match: [{uri: {regex: "(?i)/API/v[0-9]+/.*"}}]\n')}${route(
  'nested',
  'v2',
  '    match: [{uri: {regex: "/(a+)+b"}}]\n',
)}${route('service', 'v1', '    match: [{uri: {prefix: /service/}}]\n    rewrite: {uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: "\\\\2/instance/\\\\1"}}\n')}${route('default', 'v1', '')}`;

let dir: string;
let configPath: string;
let cp: h.ControlPlane;
let front: h.Sidecar;

async function call(p: string, headers: Record<string, string> = {}): Promise<{ status: number; route: unknown; app?: AppAnswer }> {
  const r = await h.request(front.outbound, { host: 'reviews', path: p, headers });
  return { status: r.status, route: r.headers['x-route'], app: r.status === 200 ? (JSON.parse(r.body) as AppAnswer) : undefined };
}

beforeAll(async () => {
  dir = h.tmpDir('tandem-regex-e2e-');
  configPath = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(configPath, MESH);
  cp = await h.startControlPlane(dir, configPath);
  const [v1, v2, frontApp] = await Promise.all([h.startApp('reviews-v1'), h.startApp('reviews-v2'), h.startApp('frontend')]);
  [front] = await Promise.all([
    h.startSidecar(cp, 'frontend', frontApp.port),
    h.startSidecar(cp, 'reviews', v1.port, { version: 'v1' }),
    h.startSidecar(cp, 'reviews', v2.port, { version: 'v2' }),
  ]);
  try {
    await h.waitFor(
      'both subsets reachable through their routes',
      async () => (await call('/service/x/y')).app?.app === 'reviews-v1' && (await call('/api/v1/x')).app?.app === 'reviews-v2',
      15_000,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\ncp: ${cp.proc.output().slice(-3000)}\nfrontend: ${front.proc.output().slice(-3000)}`);
  }
});

afterAll(async () => {
  await h.stopAll();
  await h.closeApps();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('RE2 regexes in VirtualService matches', () => {
  it("routes on Istio's (?i) header regex, matching the whole value", async () => {
    for (const user of ['jason', 'Jason', 'JASON']) {
      const r = await call('/reviews/1', { 'end-user': user });
      expect([r.route, r.app?.app], user).toEqual(['user', 'reviews-v2']);
    }
    const partial = await call('/reviews/1', { 'end-user': 'jason2' });
    expect(partial.route).toBe('default');
  });

  it('routes on a (?i) uri regex, matching the path without its query', async () => {
    expect((await call('/API/V2/items?limit=5')).route).toBe('api');
    expect((await call('/api/v1/')).route).toBe('api');
    expect((await call('/apis/v1/x')).route).toBe('default');
  });

  it('answers a hostile path against a nested-quantifier pattern, without backtracking', async () => {
    expect((await call('/aaab')).route).toBe('nested');
    // a backtracking engine tries 2^n ways to split the a's before giving up on this path
    const hostile = await call(`/${'a'.repeat(8000)}!`);
    expect([hostile.status, hostile.route, hostile.app?.app]).toEqual([200, 'default', 'reviews-v1']);
  });
});

describe('rewrite.uriRegexRewrite', () => {
  it("rewrites the path the backend sees with the match's groups, keeping the query", async () => {
    const r = await call('/service/foo/v1/api?x=1&y=2');
    expect([r.route, r.app?.app, r.app?.path]).toEqual(['service', 'reviews-v1', '/v1/api/instance/foo?x=1&y=2']);
  });

  it('leaves a path the pattern does not match as it was', async () => {
    const r = await call('/service/only');
    expect([r.route, r.app?.path]).toEqual(['service', '/service/only']);
  });
});

describe('a regex that is not RE2', () => {
  it('is refused at load, naming the field, and the config in force stays', async () => {
    fs.writeFileSync(configPath, MESH.replace('"(?i)/API/v[0-9]+/.*"', '"/api/(?=v[0-9])"'));
    const err = await h.waitFor('the control plane to refuse the lookahead', async () => (await h.json<DebugConfig>(cp.admin, '/debug/config')).lastError, 10_000);
    expect(err.field).toBe('spec.http[1].match[0].uri.regex');
    expect(err.message).toMatch(/lookarounds are not RE2/);
    expect((await call('/API/V2/items')).route).toBe('api');
    expect((await call('/service/foo/v1')).app?.path).toBe('/v1/instance/foo');
  });
});
