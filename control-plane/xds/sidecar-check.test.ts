import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../config/load';
import type { MeshConfig } from '../model/types';
import { SnapshotCache } from './cache';
import { UnservableConfigError } from './sidecar-check';

const OPTS = { domain: 'cluster.local', trustDomain: 'cluster.local' };

const YAML = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {regex: "/api/v[0-9]+/.*"}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`;

describe('a config is checked against the sidecar decoders at load', () => {
  it('accepts a config whose every translated resource the sidecar applies', () => {
    const cache = new SnapshotCache(OPTS);
    cache.setConfig(parseConfigText(YAML, 'mesh.yaml'));
    expect(cache.snapshot.generation).toBe(1);
  });

  it('refuses, keeping the config in force, one that would translate to what the sidecar refuses', () => {
    const cache = new SnapshotCache(OPTS);
    const good = parseConfigText(YAML, 'mesh.yaml');
    cache.setConfig(good);
    // past validation, which refuses this regex: what if the model and the sidecar disagree?
    const bad: MeshConfig = structuredClone(good);
    bad.virtualServices[0].http[0].match[0].uri = { regex: '(?=lookahead)/api' };
    let err: unknown;
    try {
      cache.setConfig(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnservableConfigError);
    const problems = (err as UnservableConfigError).problems;
    // the resource and the field the sidecar would have NACKed
    expect(problems[0].resource).toBe('outbound');
    expect(problems[0].field).toMatch(/virtual_hosts\[\d+\]\.routes\[0\]\.match\.safe_regex/);
    expect(cache.snapshot.config).toBe(good);
  });
});
