import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { loadConfig } from './load';

const DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews.shop.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`;
const VS = (subset: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: ${subset}}
`;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-load-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('loadConfig', () => {
  it('loads a single file', () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, `${DR}---\n${VS('v1')}`);
    const r = loadConfig(file);
    expect(r.files).toEqual([file]);
    expect(r.config.virtualServices[0].http[0].route[0].destination).toEqual({
      host: 'reviews.shop.svc.cluster.local',
      subset: 'v1',
    });
    expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(loadConfig(file).hash).toBe(r.hash);
  });

  it('loads every yaml file of a directory in name order, checking references across files', () => {
    fs.writeFileSync(path.join(dir, 'b-routes.yml'), VS('v2'));
    fs.writeFileSync(path.join(dir, 'a-rules.yaml'), DR);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not: config');
    fs.writeFileSync(path.join(dir, '.hidden.yaml'), 'junk: [');
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'c.yaml'), 'junk: [');
    const r = loadConfig(dir);
    expect(r.files).toEqual([path.join(dir, 'a-rules.yaml'), path.join(dir, 'b-routes.yml')]);
    expect(r.config.destinationRules[0].source).toEqual({ file: path.join(dir, 'a-rules.yaml'), doc: 0 });
    expect(r.config.virtualServices[0].source).toEqual({ file: path.join(dir, 'b-routes.yml'), doc: 0 });
  });

  it('names the referring file when a subset in another file is missing', () => {
    fs.writeFileSync(path.join(dir, 'a-rules.yaml'), DR);
    fs.writeFileSync(path.join(dir, 'b-routes.yaml'), `---\n${VS('v3')}`);
    const e = (() => {
      try {
        loadConfig(dir);
      } catch (err) {
        return err as ConfigError;
      }
      throw new Error('accepted');
    })();
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.file).toBe(path.join(dir, 'b-routes.yaml'));
    expect(e.doc).toBe(0);
    expect(e.field).toBe('spec.http[0].route[0].destination.subset');
  });

  it('changes the hash when content or names change', () => {
    fs.writeFileSync(path.join(dir, 'a.yaml'), DR);
    const h1 = loadConfig(dir).hash;
    fs.writeFileSync(path.join(dir, 'a.yaml'), `${DR}\n`);
    const h2 = loadConfig(dir).hash;
    fs.renameSync(path.join(dir, 'a.yaml'), path.join(dir, 'b.yaml'));
    const h3 = loadConfig(dir).hash;
    expect(new Set([h1, h2, h3]).size).toBe(3);
  });

  it('says which Kubernetes objects it skipped, as in a bookinfo.yaml applied with the rules', () => {
    fs.writeFileSync(
      path.join(dir, 'bookinfo.yaml'),
      `apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: shop}\nspec: {ports: [{port: 9080}]}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: reviews-v1, namespace: shop}\nspec: {replicas: 1}\n`,
    );
    fs.writeFileSync(path.join(dir, 'rules.yaml'), `${DR}---\n${VS('v1')}`);
    const r = loadConfig(dir);
    expect(r.config.virtualServices).toHaveLength(1);
    expect(r.skipped.map((s) => `${s.file}#${s.doc} ${s.apiVersion} ${s.kind} ${s.namespace}/${s.name}`)).toEqual([
      `${path.join(dir, 'bookinfo.yaml')}#0 v1 Service shop/reviews`,
      `${path.join(dir, 'bookinfo.yaml')}#1 apps/v1 Deployment shop/reviews-v1`,
    ]);
  });

  it('reports the problems of every file and document at once', () => {
    fs.writeFileSync(path.join(dir, 'a.yaml'), `${DR}  trafficPolicy: {loadBalancer: {simple: FASTEST}}\n`);
    fs.writeFileSync(path.join(dir, 'b.yaml'), `${VS('v1')}  - route: [{destination: {host: reviews}}]\n    timeout: never\n---\n${VS('v1').replace('name: reviews', 'name: other')}  tcp: []\n`);
    try {
      loadConfig(dir);
      throw new Error('accepted');
    } catch (e) {
      const err = e as ConfigError;
      expect(err.errors.map((x) => `${path.basename(x.file)}#${x.doc} ${x.field}`)).toEqual([
        'a.yaml#0 spec.trafficPolicy.loadBalancer.simple',
        'b.yaml#0 spec.http[1].timeout',
        'b.yaml#1 spec.tcp',
      ]);
    }
  });

  it('treats a missing path as an empty config', () => {
    const r = loadConfig(path.join(dir, 'nope.yaml'));
    expect(r.files).toEqual([]);
    expect(r.config.virtualServices).toEqual([]);
    expect(loadConfig(dir).files).toEqual([]);
  });

  it('reports a YAML syntax error naming the file and line', () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, `${DR}---\nkind: [\n`);
    expect(() => loadConfig(file)).toThrow(ConfigError);
    try {
      loadConfig(file);
    } catch (e) {
      const err = e as ConfigError;
      expect(err.file).toBe(file);
      expect(err.doc).toBeUndefined();
      expect(err.line).toBeGreaterThanOrEqual(8);
      expect(err.message.startsWith(`${file}: line `)).toBe(true);
    }
  });
});
