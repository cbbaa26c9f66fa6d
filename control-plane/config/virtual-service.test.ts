import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { parseConfigText } from './load';

const DR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}, {name: v3, labels: {version: v3}}]
---
`;

const vs = (spec: string): string => `${DR}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
${spec}`;

const split = (...weights: (number | undefined)[]): string =>
  vs(`  hosts: [reviews]\n  http:\n  - route:\n${weights.map((w, i) => `    - destination: {host: reviews, subset: v${i + 1}}\n${w === undefined ? '' : `      weight: ${w}\n`}`).join('')}`);

function rejection(text: string): ConfigError {
  try {
    parseConfigText(text, 'mesh.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('config was accepted');
}

const weightsOf = (text: string) => parseConfigText(text, 'mesh.yaml').virtualServices[0].http[0].route.map((d) => d.weight);

describe('VirtualService weights are relative, as in Istio', () => {
  it('accepts weights that do not add up to 100', () => {
    expect(weightsOf(split(1, 3))).toEqual([1, 3]);
    expect(weightsOf(split(500, 250, 250))).toEqual([500, 250, 250]);
  });

  it('reads an omitted weight beside others as 0', () => {
    expect(weightsOf(split(1, undefined))).toEqual([1, 0]);
  });

  it('gives a lone destination everything, whatever weight it names', () => {
    expect(weightsOf(split(undefined))).toEqual([100]);
    expect(weightsOf(split(30))).toEqual([100]);
    expect(weightsOf(split(0))).toEqual([100]);
  });

  it('refuses several destinations that are all 0, naming the route', () => {
    const e = rejection(split(0, undefined));
    expect(e.field).toBe('spec.http[0].route');
    expect(e.detail).toMatch(/weights are all 0/);
  });

  it('refuses a negative weight, naming it', () => {
    expect(rejection(split(1, -1)).field).toBe('spec.http[0].route[1].weight');
  });

  it('refuses weights whose sum does not fit Envoy (uint32)', () => {
    const e = rejection(split(2 ** 31 - 1, 2 ** 31 - 1, 2));
    expect(e.field).toBe('spec.http[0].route');
    expect(e.detail).toMatch(/more than 4294967295/);
  });
});

describe('VirtualService hosts', () => {
  const hostsOf = (hosts: string) => parseConfigText(vs(`  hosts: ${hosts}\n  http:\n  - route: [{destination: {host: reviews}}]\n`), 'mesh.yaml').virtualServices[0].hosts;

  it('keeps * and *.suffix as written, and qualifies short names', () => {
    expect(hostsOf('["*"]')).toEqual(['*']);
    expect(hostsOf('["*.example.com", "*.Default.svc.cluster.local"]')).toEqual(['*.example.com', '*.default.svc.cluster.local']);
    expect(hostsOf('[reviews, ratings.prod]')).toEqual(['reviews.default.svc.cluster.local', 'ratings.prod.svc.cluster.local']);
  });

  it.each<[string, string, string]>([
    ['the same host twice (short and FQDN)', '[reviews, reviews.default.svc.cluster.local]', 'spec.hosts[1]'],
    ['a host a wildcard covers', '["*.example.com", api.example.com]', 'spec.hosts[1]'],
    ['a wildcard covering another', '["*.eu.example.com", "*.example.com"]', 'spec.hosts[1]'],
    ['* beside anything', '[reviews, "*"]', 'spec.hosts[1]'],
  ])('refuses overlapping hosts in one VirtualService (Istio does): %s', (_what, hosts, field) => {
    const e = rejection(vs(`  hosts: ${hosts}\n  http:\n  - route: [{destination: {host: reviews}}]\n`));
    expect(e.field).toBe(field);
    expect(e.detail).toMatch(/overlaps hosts\[0\]/);
  });

  it('refuses a wildcard as a destination, naming it', () => {
    const e = rejection(vs('  hosts: [reviews]\n  http:\n  - route: [{destination: {host: "*.example.com"}}]\n'));
    expect(e.field).toBe('spec.http[0].route[0].destination.host');
  });
});

describe('VirtualService authority rewrites', () => {
  it('accepts a Host set by the route or by a destination', () => {
    expect(() => parseConfigText(vs('  hosts: [reviews]\n  http:\n  - headers: {request: {set: {Host: r2}}}\n    route: [{destination: {host: reviews}, headers: {request: {add: {host: r3}}}}]\n'), 'mesh.yaml')).not.toThrow();
  });

  it('refuses the authority set twice on one route, as Istio does', () => {
    const e = rejection(vs('  hosts: [reviews]\n  http:\n  - rewrite: {authority: a}\n    headers: {request: {set: {host: b}}}\n    route: [{destination: {host: reviews}}]\n'));
    expect(e.field).toBe('spec.http[0]');
    expect(e.detail).toMatch(/sets the authority twice \(rewrite\.authority, headers\.request\.set\.host\)/);
  });
});
