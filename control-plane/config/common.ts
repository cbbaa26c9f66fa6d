// Shapes shared by several kinds: hosts, string matches, header operations, selectors.

import { compileRe2 } from '../../common/re2';
import type { Destination, HeaderOperations, Headers, StringMatch } from '../model/types';
import { defined, fields, int, list, mapOf, nonEmpty, num, str, strMap, type Node, type Read } from './reader';

/** What a kind validator needs to know about the resource it is reading. */
export interface Ctx {
  /** lower-cased host -> the mesh's name for it (see validate.ts) */
  resolveHost(host: string): string;
}

const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const HOST = new RegExp(`^(\\*|(\\*\\.)?${LABEL}(\\.${LABEL})*)$`);
export const DNS_LABEL = new RegExp(`^${LABEL}$`);
export const DNS_SUBDOMAIN = new RegExp(`^${LABEL}(\\.${LABEL})*$`);

export const host =
  (ctx: Ctx, opts: { wildcard?: boolean } = {}): Read<string> =>
  (n) => {
    const h = str(n).toLowerCase();
    if (h.length > 253 || !HOST.test(h)) n.fail(`invalid host ${JSON.stringify(h)}`);
    if (!opts.wildcard && h.includes('*')) n.fail(`must be a service name, not the wildcard ${JSON.stringify(h)}`);
    return ctx.resolveHost(h);
  };

// RFC 7230 token; header names are compared lower-cased (HTTP/2 sends them so).
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const headerName = (name: string, n: Node): string =>
  TOKEN.test(name) ? name.toLowerCase() : n.fail(`invalid header name ${JSON.stringify(name)}`);

export const cookieName = (name: string, n: Node): string =>
  TOKEN.test(name) ? name : n.fail(`invalid cookie name ${JSON.stringify(name)}`);

// Istio's own bound on a regex's length (Go cannot measure RE2's program size; the
// sidecar's compileRe2 also caps that, as Envoy does).
const MAX_REGEX_LENGTH = 1024;

/** A regex as Istio accepts it and the sidecar runs it: RE2, non-empty, at most 1024 characters. */
export const regex: Read<string> = (n) => {
  const s = str(n);
  if (s === '') n.fail('must not be empty');
  if (s.length > MAX_REGEX_LENGTH) n.fail(`is ${s.length} characters long; Istio allows at most ${MAX_REGEX_LENGTH}`);
  try {
    compileRe2(s);
  } catch (e) {
    n.fail((e as Error).message);
  }
  return s;
};

const MATCH_KINDS = ['exact', 'prefix', 'regex'] as const;

export const stringMatch: Read<StringMatch> = (n) => {
  const f = fields(n, MATCH_KINDS);
  if (MATCH_KINDS.filter((k) => f.has(k)).length !== 1) n.fail('must have exactly one of exact, prefix, regex');
  if (f.has('exact')) return { exact: f.req('exact', str) };
  if (f.has('prefix')) return { prefix: f.req('prefix', str) };
  return { regex: f.req('regex', regex) };
};

const headerOperations: Read<HeaderOperations> = (n) => {
  const f = fields(n, ['set', 'add', 'remove']);
  return defined({
    set: f.opt('set', mapOf(str, headerName)),
    add: f.opt('add', mapOf(str, headerName)),
    remove: f.opt('remove', list((item) => headerName(nonEmpty(item), item))),
  });
};

export const headers: Read<Headers> = (n) => {
  const f = fields(n, ['request', 'response']);
  return defined({ request: f.opt('request', headerOperations), response: f.opt('response', headerOperations) });
};

export const port: Read<number> = int(1, 65535);

export const destination =
  (ctx: Ctx): Read<Destination> =>
  (n) => {
    const f = fields(n, ['host', 'subset', 'port']);
    return defined({
      host: f.req('host', host(ctx)),
      subset: f.opt('subset', nonEmpty),
      port: f.opt('port', (p) => fields(p, ['number']).req('number', port)),
    });
  };

/** Istio's WorkloadSelector; an empty one selects everything, the same as none. */
export const selector: Read<Record<string, string> | undefined> = (n) => {
  const labels = fields(n, ['matchLabels']).opt('matchLabels', strMap);
  return labels && Object.keys(labels).length > 0 ? labels : undefined;
};

/** Istio's Percent message: {value: 0..100}. */
export const percent: Read<number> = (n) => fields(n, ['value']).req('value', num(0, 100));
