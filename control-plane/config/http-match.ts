// Istio's HTTPMatchRequest (a VirtualService http route's `match[]` entry), read with
// Istio's validation rules: what a request must look like for the route to apply.

import type { HTTPMatchRequest, PresenceMatch, StringMatch } from '../model/types';
import { DNS_LABEL, headerName, port, regex } from './common';
import { bool, defined, fields, isMapping, list, mapOf, str, type Node, type Read } from './reader';
import { labelSelector } from './selectors';

const KINDS = ['exact', 'prefix', 'regex'] as const;

// Istio lets a match name these pseudo-headers; the sidecar answers them for HTTP/1.1 too.
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);

/**
 * A StringMatch with at most one kind; none at all (`{}`) is undefined, the caller decides
 * what it means. Envoy takes an empty prefix for the path only.
 */
function oneMatch(n: Node, emptyPrefix = false): StringMatch | undefined {
  const f = fields(n, KINDS);
  const given = KINDS.filter((k) => f.has(k));
  if (given.length > 1) n.fail(`must have at most one of exact, prefix, regex, got ${given.join(' and ')}`);
  if (f.has('exact')) return { exact: f.req('exact', str) };
  if (f.has('prefix')) {
    const p = f.req('prefix', str);
    if (p === '' && !emptyPrefix) n.at('prefix').fail('must not be empty (use {} to match any value)');
    return { prefix: p };
  }
  if (f.has('regex')) {
    if (n.at('regex').value === '') n.at('regex').fail('must not be empty');
    return { regex: f.req('regex', regex) };
  }
  return undefined;
}

/** headers, queryParams, method, authority, scheme: `{}` means the value is present. */
const presence: Read<PresenceMatch> = (n) => oneMatch(n) ?? { present: true };

/** withoutHeaders: the regex "*" is also Istio's spelling of "present" (it is no RE2). */
const absence: Read<PresenceMatch> = (n) => (isMapping(n.value) && n.value.regex === '*' && Object.keys(n.value).length === 1 ? { present: true } : presence(n));

const matchHeaderName = (name: string, n: Node): string => {
  const lower = name.toLowerCase();
  if (PSEUDO_HEADERS.has(lower)) return lower;
  if (name.startsWith('@request.auth.claims')) n.fail('JWT claim routing is not supported by Tandem (Istio allows it on gateways only)');
  return headerName(name, n);
};

/** '' is proto3's unset, as Istio reads it */
const namespaceName: Read<string | undefined> = (n) => {
  const s = str(n);
  if (s === '') return undefined;
  return DNS_LABEL.test(s) && s.length <= 63 ? s : n.fail(`must be a namespace name, got ${JSON.stringify(s)}`);
};

const gateway: Read<string> = (g) =>
  str(g) === 'mesh' ? 'mesh' : g.fail(`gateway ${JSON.stringify(g.value)} is not supported by Tandem (it has no gateways; only "mesh")`);

export const matchRequest: Read<HTTPMatchRequest> = (n) => {
  const f = fields(n, [
    'name', 'uri', 'scheme', 'method', 'authority', 'headers', 'port', 'queryParams', 'ignoreUriCase', 'withoutHeaders',
    'sourceLabels', 'sourceNamespace', 'gateways', 'statPrefix',
  ]);
  if (f.has('statPrefix')) n.at('statPrefix').fail('not supported by Tandem (it keeps no per-route statistics)');
  // a match bound to gateways applies to sidecars only when "mesh" is among them; Tandem has only "mesh"
  f.opt('gateways', list(gateway));
  return defined({
    name: f.opt('name', str),
    // an empty uri match ({}) matches every path, as in Istio
    uri: f.opt('uri', (u) => oneMatch(u, true)),
    ignoreUriCase: f.opt('ignoreUriCase', bool) || undefined,
    headers: f.opt('headers', mapOf(presence, matchHeaderName)),
    withoutHeaders: f.opt('withoutHeaders', mapOf(absence, matchHeaderName)),
    method: f.opt('method', presence),
    authority: f.opt('authority', presence),
    scheme: f.opt('scheme', presence),
    queryParams: f.opt('queryParams', mapOf(presence)),
    port: f.opt('port', port),
    // who calls: decided per sidecar when its routes are made (xds/scope.ts)
    sourceLabels: f.opt('sourceLabels', labelSelector),
    sourceNamespace: f.opt('sourceNamespace', namespaceName),
  });
};
