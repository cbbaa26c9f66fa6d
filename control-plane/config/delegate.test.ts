import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { parseConfigText } from './load';

const ROOT = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: [bookinfo]
  http:
  - name: pp
    match:
    - uri: {prefix: /productpage}
      headers: {x-team: {exact: a}}
    - uri: {prefix: /static}
    timeout: 5s
    headers: {request: {set: {x-root: "1"}}}
    delegate: {name: productpage, namespace: nsa}
  - route: [{destination: {host: reviews}}]
`;

const DELEGATE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: nsa}
spec:
  http:
  - name: v1
    match:
    - uri: {prefix: /productpage/v1}
      headers: {x-user: {exact: jason}}
    retries: {attempts: 0}
    route: [{destination: {host: productpage-v1}}]
  - route: [{destination: {host: productpage}}]
`;

const load = (...docs: string[]) => parseConfigText(docs.join('---\n'), 'mesh.yaml');

function rejection(...docs: string[]): ConfigError {
  try {
    load(...docs);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('config was accepted');
}

describe('VirtualService delegation', () => {
  const c = load(ROOT, DELEGATE);
  const root = c.virtualServices.find((v) => v.name === 'bookinfo')!;

  it("puts the delegate's routes where the delegating route was, keeping the others", () => {
    expect(root.http.map((r) => r.name)).toEqual(['pp-v1', 'pp', undefined]);
    expect(root.http.every((r) => r.delegate === undefined)).toBe(true);
    expect(root.http[0].route[0].destination.host).toBe('productpage-v1.nsa.svc.cluster.local');
    expect(root.http[1].route[0].destination.host).toBe('productpage.nsa.svc.cluster.local');
    expect(root.http[2].route[0].destination.host).toBe('reviews.default.svc.cluster.local');
  });

  it("combines each delegate match with every root match it lies within (Istio's merge)", () => {
    // /productpage/v1 lies within /productpage only; headers of both apply
    expect(root.http[0].match).toEqual([{ uri: { prefix: '/productpage/v1' }, headers: { 'x-team': { exact: 'a' }, 'x-user': { exact: 'jason' } } }]);
    // a delegate route without match takes the root's
    expect(root.http[1].match).toEqual([{ uri: { prefix: '/productpage' }, headers: { 'x-team': { exact: 'a' } } }, { uri: { prefix: '/static' } }]);
  });

  it("gives a delegate route what it leaves unset from the root route, and keeps what it sets", () => {
    expect(root.http[0]).toMatchObject({ timeoutMs: 5000, retries: { attempts: 0 }, headers: { request: { set: { 'x-root': '1' } } } });
    expect(root.http[1].retries).toBeUndefined();
  });

  it('keeps the delegate itself, without hosts, out of routing', () => {
    expect(c.virtualServices.find((v) => v.name === 'productpage')!.hosts).toEqual([]);
  });

  it("looks the delegate up in the root's namespace when the reference names none", () => {
    const local = load(ROOT.replace('namespace: nsa}', '}'), DELEGATE.replace('namespace: nsa}', '}'));
    expect(local.virtualServices[0].http[0].route[0].destination.host).toBe('productpage-v1.default.svc.cluster.local');
  });

  it('combines names and match conditions as Istio: root-delegate, ports, presence', () => {
    const r = load(
      ROOT.replace('    - uri: {prefix: /static}\n', '    - name: s\n      uri: {prefix: /static}\n      port: 8080\n      withoutHeaders: {x-debug: {}}\n'),
      DELEGATE.replace('  - route: [{destination: {host: productpage}}]', '  - match: [{name: css, uri: {exact: /static/a.css}}]\n    route: [{destination: {host: productpage}}]'),
    ).virtualServices[0];
    expect(r.http[1].match).toEqual([{ name: 's-css', uri: { exact: '/static/a.css' }, port: 8080, withoutHeaders: { 'x-debug': { present: true } } }]);
  });
});

describe('VirtualService delegation: what is refused', () => {
  it('a delegate that does not exist, naming the reference', () => {
    const e = rejection(ROOT);
    expect(e.doc).toBe(0);
    expect(e.field).toBe('spec.http[0].delegate');
    expect(e.detail).toBe('no VirtualService nsa/productpage to delegate to');
  });

  it('a delegate with hosts', () => {
    const e = rejection(ROOT, DELEGATE.replace('spec:\n', 'spec:\n  hosts: [productpage]\n'));
    expect(e.field).toBe('spec.http[0].delegate');
    expect(e.detail).toMatch(/VirtualService nsa\/productpage has hosts/);
  });

  it('a delegate that delegates again (Istio: one level only)', () => {
    const e = rejection(ROOT, DELEGATE.replace('  - route: [{destination: {host: productpage}}]', '  - delegate: {name: deeper}'));
    expect(e.doc).toBe(1);
    expect(e.field).toBe('spec.http[1].delegate');
    expect(e.detail).toMatch(/one level of delegation/);
  });

  it('a delegating route that also routes', () => {
    const e = rejection(ROOT.replace('    delegate:', '    route: [{destination: {host: reviews}}]\n    delegate:'), DELEGATE);
    expect(e.field).toBe('spec.http[0].route');
    expect(e.detail).toMatch(/together with delegate/);
  });

  it('a delegate with gateways', () => {
    const e = rejection(ROOT, DELEGATE.replace('spec:\n', 'spec:\n  gateways: [mesh]\n'));
    expect(e.field).toBe('spec.gateways');
  });

  it("a delegate match outside every root match (Istio ignores the route), naming the delegate's match", () => {
    const e = rejection(ROOT, DELEGATE.replace('prefix: /productpage/v1', 'prefix: /reviews'));
    expect(e.doc).toBe(1);
    expect(e.field).toBe('spec.http[0].match[0]');
    expect(e.detail).toMatch(/not within any match of the route that delegates to it \(VirtualService default\/bookinfo spec\.http\[0\]\)/);
  });

  it.each<[string, string, string]>([
    ['an exact uri under another exact', 'uri: {exact: /a}', 'uri: {exact: /b}'],
    ['a prefix under an exact', 'uri: {exact: /a}', 'uri: {prefix: /a}'],
    ['a regex anywhere', 'uri: {prefix: /a}', 'uri: {regex: "/a.*"}'],
    ['presence under a value', 'headers: {x: {exact: "1"}}', 'headers: {x: {}}'],
    ['another header value', 'headers: {x: {exact: "1"}}', 'headers: {x: {exact: "2"}}'],
    ['another port', 'port: 80', 'port: 8080'],
    ['another uri case rule', 'ignoreUriCase: true', 'ignoreUriCase: false'],
  ])('a conflict: %s', (_what, rootMatch, leafMatch) => {
    const root = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: root}\nspec:\n  hosts: [r]\n  http:\n  - match: [{${rootMatch}}]\n    delegate: {name: leaf}\n`;
    const leaf = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: leaf}\nspec:\n  http:\n  - match: [{${leafMatch}}]\n    route: [{destination: {host: r}}]\n`;
    expect(rejection(root, leaf).field).toBe('spec.http[0].match[0]');
  });

  it('no conflict where the delegate asks for more: a prefix under a prefix, a value under presence', () => {
    const root = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: root}\nspec:\n  hosts: [r]\n  http:\n  - match: [{uri: {prefix: /a}, headers: {x: {}}}]\n    delegate: {name: leaf}\n`;
    const leaf = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: leaf}\nspec:\n  http:\n  - match: [{uri: {prefix: /a/b}, headers: {x: {exact: "1"}}}]\n    route: [{destination: {host: r}}]\n`;
    expect(load(root, leaf).virtualServices[0].http[0].match).toEqual([{ uri: { prefix: '/a/b' }, headers: { x: { exact: '1' } } }]);
  });
});
