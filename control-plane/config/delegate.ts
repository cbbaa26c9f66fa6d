// Istio's VirtualService delegation: a route of a root VirtualService names a delegate (a
// VirtualService without hosts) instead of destinations, and the delegate's routes take its
// place, each under the root route's conditions (Istio's MergeHTTPRoutes). One level only:
// a delegate's routes cannot delegate (virtual-service.ts refuses that while reading).

import type { HTTPMatchRequest, HTTPRoute, MeshConfig, PresenceMatch, VirtualService } from '../model/types';
import { ConfigError } from './errors';
import { defined } from './reader';

/** The match fields sourceLabels and sourceNamespace may add; merged and compared as Istio does. */
type Scoped = HTTPMatchRequest & { sourceLabels?: Record<string, string>; sourceNamespace?: string };

const MAP_FIELDS = ['headers', 'withoutHeaders', 'queryParams', 'sourceLabels'] as const;
const STRING_FIELDS = ['uri', 'scheme', 'method', 'authority'] as const;
const KEYED_FIELDS = ['headers', 'withoutHeaders', 'queryParams'] as const;

const errorAt = (vs: VirtualService, field: string, detail: string): ConfigError =>
  new ConfigError({ file: vs.source.file, doc: vs.source.doc, label: `VirtualService ${vs.namespace}/${vs.name}`, field, detail });

/**
 * Replaces every delegating route by the delegate's routes, merged. Returns the problems: a
 * delegate that does not exist or has hosts, and a delegate route whose every match falls
 * outside the root's (Istio drops such a route with a warning; Tandem refuses it).
 */
export function resolveDelegates(config: MeshConfig): ConfigError[] {
  const errors: ConfigError[] = [];
  const byName = new Map(config.virtualServices.map((vs) => [`${vs.namespace}/${vs.name}`, vs]));
  config.virtualServices = config.virtualServices.map((vs) => {
    if (!vs.http.some((r) => r.delegate)) return vs;
    const http = vs.http.flatMap((root, i) => {
      if (!root.delegate) return [root];
      const ref = `${root.delegate.namespace ?? vs.namespace}/${root.delegate.name}`;
      const target = byName.get(ref);
      if (!target) {
        errors.push(errorAt(vs, `spec.http[${i}].delegate`, `no VirtualService ${ref} to delegate to`));
        return [];
      }
      if (target.hosts.length) {
        errors.push(errorAt(vs, `spec.http[${i}].delegate`, `VirtualService ${ref} has hosts, so it is no delegate (a delegate VirtualService has none)`));
        return [];
      }
      return target.http.flatMap((leaf, j) => {
        const merged = mergeRoute(root, leaf);
        if (typeof merged === 'number') {
          errors.push(errorAt(target, `spec.http[${j}].match[${merged}]`, `is not within any match of the route that delegates to it (VirtualService ${vs.namespace}/${vs.name} spec.http[${i}]); Istio would ignore this route`));
          return [];
        }
        return [merged];
      });
    });
    return { ...vs, http };
  });
  return errors;
}

const joinNames = (root: string | undefined, leaf: string | undefined): string | undefined =>
  leaf === undefined ? root : root === undefined ? leaf : `${root}-${leaf}`;

/** The delegate's route under the root's conditions, or the index of a delegate match that cannot be. */
function mergeRoute(root: HTTPRoute, leaf: HTTPRoute): HTTPRoute | number {
  const match = mergeMatches(root.match, leaf.match);
  if (typeof match === 'number') return match;
  // what the delegate leaves unset, the root's route gives (timeout, retries, fault, headers, ...)
  const out: HTTPRoute = { ...root, ...defined({ ...leaf }), match, mirrors: leaf.mirrors.length ? leaf.mirrors : root.mirrors };
  delete out.delegate;
  const name = joinNames(root.name, leaf.name);
  if (name === undefined) delete out.name;
  else out.name = name;
  return out;
}

/** Each delegate match, merged with every root match it fits within; a match fitting none is a conflict. */
function mergeMatches(root: HTTPMatchRequest[], leaf: HTTPMatchRequest[]): HTTPMatchRequest[] | number {
  if (root.length === 0) return leaf;
  if (leaf.length === 0) return root;
  const out: HTTPMatchRequest[] = [];
  for (const [k, l] of leaf.entries()) {
    const fits = root.filter((r) => !conflicts(r, l));
    if (fits.length === 0) return k;
    out.push(...fits.map((r) => mergeMatch(r, l)));
  }
  return out;
}

function mergeMatch(root: Scoped, leaf: Scoped): HTTPMatchRequest {
  const out: Scoped = { ...root, ...defined({ ...leaf }) };
  for (const k of MAP_FIELDS) {
    if (root[k] || leaf[k]) out[k] = { ...root[k], ...leaf[k] } as never;
  }
  const name = joinNames(root.name, leaf.name);
  if (name === undefined) delete out.name;
  else out.name = name;
  return out;
}

/** Istio's hasConflict: the delegate's match must ask for no less than the root's. */
function conflicts(root: Scoped, leaf: Scoped): boolean {
  if (STRING_FIELDS.some((k) => stringConflict(root[k], leaf[k]))) return true;
  for (const k of KEYED_FIELDS) {
    for (const [name, m] of Object.entries(leaf[k] ?? {})) if (stringConflict(root[k]?.[name], m)) return true;
  }
  if (!!root.ignoreUriCase !== !!leaf.ignoreUriCase) return true;
  if (root.port !== undefined && leaf.port !== undefined && root.port !== leaf.port) return true;
  if (root.sourceNamespace !== undefined && leaf.sourceNamespace !== root.sourceNamespace) return true;
  for (const [k, v] of Object.entries(leaf.sourceLabels ?? {})) {
    if (root.sourceLabels?.[k] !== undefined && root.sourceLabels[k] !== v) return true;
  }
  return false;
}

/**
 * Whether the leaf's condition may match what the root's does not. Regexes cannot be
 * compared, so either side having one is a conflict, as in Istio; "present" contains all.
 */
function stringConflict(root: PresenceMatch | undefined, leaf: PresenceMatch | undefined): boolean {
  if (!root || !leaf || 'present' in root) return false;
  if ('present' in leaf || 'regex' in root || 'regex' in leaf) return true;
  if ('exact' in root) return !('exact' in leaf && leaf.exact === root.exact);
  const value = 'exact' in leaf ? leaf.exact : leaf.prefix;
  return !value.startsWith(root.prefix);
}
