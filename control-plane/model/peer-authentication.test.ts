import { describe, expect, it } from 'vitest';
import { effectiveMtlsMode, MESH_ROOT_NAMESPACE, selectorMatches } from './peer-authentication';
import type { MtlsMode, PeerAuthentication } from './types';

let n = 0;
const pa = (namespace: string, p: Partial<Omit<PeerAuthentication, 'namespace'>> = {}): PeerAuthentication => ({
  name: `pa${n++}`,
  namespace,
  source: { file: 'mesh.yaml', doc: n },
  ...p,
});

const ROOT = MESH_ROOT_NAMESPACE;
const W = { namespace: 'foo', labels: { app: 'reviews', version: 'v1' } };
const SEL = { app: 'reviews' };

describe('effectiveMtlsMode', () => {
  it.each<[string, PeerAuthentication[], number | undefined, MtlsMode]>([
    ['no policy: STRICT', [], 8080, 'STRICT'],
    ['mesh-wide PERMISSIVE', [pa(ROOT, { mode: 'PERMISSIVE' })], 8080, 'PERMISSIVE'],
    ['mesh-wide UNSET: default STRICT', [pa(ROOT)], 8080, 'STRICT'],
    ['namespace over mesh', [pa(ROOT, { mode: 'PERMISSIVE' }), pa('foo', { mode: 'DISABLE' })], 8080, 'DISABLE'],
    ['namespace UNSET inherits mesh', [pa(ROOT, { mode: 'PERMISSIVE' }), pa('foo')], 8080, 'PERMISSIVE'],
    ['another namespace does not apply', [pa('bar', { mode: 'DISABLE' })], 8080, 'STRICT'],
    ['workload over namespace', [pa('foo', { mode: 'PERMISSIVE' }), pa('foo', { selector: SEL, mode: 'STRICT' })], 8080, 'STRICT'],
    ['workload over mesh, whatever the order', [pa('foo', { selector: SEL, mode: 'DISABLE' }), pa(ROOT, { mode: 'STRICT' })], 8080, 'DISABLE'],
    ['workload UNSET inherits namespace', [pa('foo', { mode: 'PERMISSIVE' }), pa('foo', { selector: SEL })], 8080, 'PERMISSIVE'],
    ['workload UNSET, namespace UNSET, inherits mesh', [pa(ROOT, { mode: 'DISABLE' }), pa('foo'), pa('foo', { selector: SEL })], 8080, 'DISABLE'],
    ['a selector that does not match', [pa('foo', { selector: { app: 'ratings' }, mode: 'DISABLE' })], 8080, 'STRICT'],
    ['a selector needs every label', [pa('foo', { selector: { app: 'reviews', version: 'v2' }, mode: 'DISABLE' })], 8080, 'STRICT'],
    ['a selector in another namespace', [pa('bar', { selector: SEL, mode: 'DISABLE' })], 8080, 'STRICT'],
    ['a selector in the root namespace is ignored (as Istio)', [pa(ROOT, { selector: SEL, mode: 'DISABLE' })], 8080, 'STRICT'],
    ['portLevelMtls for the port', [pa('foo', { selector: SEL, mode: 'STRICT', portLevelMtls: { 8080: 'PERMISSIVE' } })], 8080, 'PERMISSIVE'],
    ['portLevelMtls for another port', [pa('foo', { selector: SEL, mode: 'STRICT', portLevelMtls: { 9090: 'DISABLE' } })], 8080, 'STRICT'],
    ['portLevelMtls with no port asked', [pa('foo', { selector: SEL, mode: 'STRICT', portLevelMtls: { 8080: 'DISABLE' } })], undefined, 'STRICT'],
    ['portLevelMtls UNSET inherits the policy mode', [pa('foo', { selector: SEL, mode: 'DISABLE', portLevelMtls: { 8080: undefined } })], 8080, 'DISABLE'],
    [
      'portLevelMtls UNSET, policy UNSET: inherits namespace',
      [pa('foo', { mode: 'PERMISSIVE' }), pa('foo', { selector: SEL, portLevelMtls: { 8080: undefined } })],
      8080,
      'PERMISSIVE',
    ],
    ['portLevelMtls over namespace and mesh', [pa(ROOT, { mode: 'PERMISSIVE' }), pa('foo', { mode: 'PERMISSIVE' }), pa('foo', { selector: SEL, portLevelMtls: { 8080: 'STRICT' } })], 8080, 'STRICT'],
    ['tie at mesh level: the first wins', [pa(ROOT, { mode: 'DISABLE' }), pa(ROOT, { mode: 'PERMISSIVE' })], 8080, 'DISABLE'],
    ['tie at namespace level: the first wins, even if UNSET', [pa(ROOT, { mode: 'PERMISSIVE' }), pa('foo'), pa('foo', { mode: 'DISABLE' })], 8080, 'PERMISSIVE'],
    ['tie at workload level: the first wins', [pa('foo', { selector: SEL, mode: 'PERMISSIVE' }), pa('foo', { selector: { version: 'v1' }, mode: 'DISABLE' })], 8080, 'PERMISSIVE'],
  ])('%s', (_name, pas, port, want) => {
    expect(effectiveMtlsMode(pas, W, port)).toBe(want);
  });

  it('a workload in the root namespace: the mesh policy is its namespace policy', () => {
    const inRoot = { ...W, namespace: ROOT };
    expect(effectiveMtlsMode([pa(ROOT, { mode: 'PERMISSIVE' })], inRoot, 8080)).toBe('PERMISSIVE');
    expect(effectiveMtlsMode([pa(ROOT, { mode: 'PERMISSIVE' }), pa(ROOT, { selector: SEL, mode: 'DISABLE' })], inRoot, 8080)).toBe('PERMISSIVE');
  });

  it('takes another root namespace', () => {
    const pas = [pa('mesh-root', { mode: 'DISABLE' }), pa(ROOT, { mode: 'PERMISSIVE' })];
    expect(effectiveMtlsMode(pas, W, 80, 'mesh-root')).toBe('DISABLE');
    expect(effectiveMtlsMode(pas, W, 80)).toBe('PERMISSIVE');
  });
});

describe('selectorMatches', () => {
  it('needs every selector label, with its value; none selects all', () => {
    expect(selectorMatches(undefined, {})).toBe(true);
    expect(selectorMatches({ app: 'a' }, { app: 'a', v: '1' })).toBe(true);
    expect(selectorMatches({ app: 'a', v: '2' }, { app: 'a', v: '1' })).toBe(false);
    expect(selectorMatches({ app: 'a' }, {})).toBe(false);
    expect(selectorMatches({ toString: 'x' }, {})).toBe(false);
  });
});
