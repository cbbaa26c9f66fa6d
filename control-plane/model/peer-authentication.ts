// Which PeerAuthentication decides a workload's mTLS mode, the way Istio composes them
// (pilot/pkg/model/authentication.go, ComposePeerAuthentication).

import type { MtlsMode, PeerAuthentication } from './types';

/** Istio's default root namespace: policies here without a selector are mesh-wide. */
export const MESH_ROOT_NAMESPACE = 'istio-system';

export interface WorkloadRef {
  namespace: string;
  labels: Record<string, string>;
}

/** A selector matches when every one of its labels is on the workload; no selector matches all. */
export function selectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const k of Object.keys(selector)) if (labels[k] !== selector[k]) return false;
  return true;
}

/**
 * The mTLS mode of workload `w` on `port` (undefined: the workload as a whole).
 *
 * Precedence, as in Istio: the workload's own policy (a selector that matches, in the
 * workload's namespace; its portLevelMtls for `port` first, then its mode) over the
 * namespace-wide policy (no selector) over the mesh-wide one (no selector, root
 * namespace) over STRICT. UNSET (an absent mode) inherits from the level above; an UNSET
 * port inherits the policy's resolved mode. Istio ignores selector policies in the root
 * namespace, and so does this.
 *
 * Where several policies tie at one level Istio takes the oldest (creationTimestamp);
 * Tandem has no timestamps, so the first in config order (files by name, documents in
 * file order) wins.
 */
export function effectiveMtlsMode(
  pas: readonly PeerAuthentication[],
  w: WorkloadRef,
  port: number | undefined,
  rootNamespace: string = MESH_ROOT_NAMESPACE,
): MtlsMode {
  let mesh: PeerAuthentication | undefined;
  let namespace: PeerAuthentication | undefined;
  let workload: PeerAuthentication | undefined;
  for (const pa of pas) {
    if (!pa.selector) {
      if (pa.namespace === rootNamespace) mesh ??= pa;
      else if (pa.namespace === w.namespace) namespace ??= pa;
    } else if (pa.namespace === w.namespace && pa.namespace !== rootNamespace && selectorMatches(pa.selector, w.labels)) {
      workload ??= pa;
    }
  }
  let mode: MtlsMode = mesh?.mode ?? 'STRICT';
  mode = namespace?.mode ?? mode;
  mode = workload?.mode ?? mode;
  const perPort = workload?.portLevelMtls;
  if (perPort && port !== undefined && Object.hasOwn(perPort, port)) mode = perPort[port] ?? mode;
  return mode;
}
