// The sidecar's checked view of an Envoy HTTP RBAC filter (envoy.extensions.filters.http.rbac.v3):
// what decode-rbac.ts produces and runtime/authz.ts evaluates. Regexes are compiled and
// CIDRs parsed once, here, never per request.

import type { Re2 } from '../../common/re2';

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

/** Envoy's StringMatcher; with ignoreCase the value is stored lower-cased. */
export type StringMatch =
  | { kind: 'exact' | 'prefix' | 'suffix' | 'contains'; value: string; ignoreCase: boolean }
  | { kind: 'regex'; source: string; re: Re2 };

/** Envoy's HeaderMatcher; `name` lower-cased (':method', ':path', ':authority' included). */
export interface HeaderMatch {
  name: string;
  match:
    | StringMatch
    | { kind: 'present'; present: boolean }
    /** [start, end), as Envoy's Int64Range */
    | { kind: 'range'; start: number; end: number };
  invert: boolean;
  treatMissingAsEmpty: boolean;
}

/** An address: IPv4 as one 32-bit word, IPv6 as four. */
export interface IpAddress {
  family: 4 | 6;
  words: readonly number[];
}

export interface Cidr extends IpAddress {
  prefixLen: number;
  /** as written, for messages */
  text: string;
}

export type PermissionModel =
  | { kind: 'any' }
  | { kind: 'and' | 'or'; rules: PermissionModel[] }
  | { kind: 'not'; rule: PermissionModel }
  | { kind: 'header'; header: HeaderMatch }
  /** the path without its query */
  | { kind: 'urlPath'; match: StringMatch }
  | { kind: 'destinationIp'; cidr: Cidr }
  | { kind: 'destinationPort'; port: number }
  /** [start, end) */
  | { kind: 'destinationPortRange'; start: number; end: number }
  | { kind: 'sni'; match: StringMatch };

export type PrincipalModel =
  | { kind: 'any' }
  | { kind: 'and' | 'or'; ids: PrincipalModel[] }
  | { kind: 'not'; id: PrincipalModel }
  /** the verified peer certificate's URI SAN; without `match`, any verified peer */
  | { kind: 'authenticated'; match?: StringMatch }
  /** the peer address of the connection */
  | { kind: 'directRemoteIp'; cidr: Cidr }
  /** the original client address (x-forwarded-for as the listener trusts it) */
  | { kind: 'remoteIp'; cidr: Cidr }
  | { kind: 'header'; header: HeaderMatch }
  | { kind: 'urlPath'; match: StringMatch };

/** Matches when any permission and any principal match. */
export interface PolicyModel {
  name: string;
  permissions: PermissionModel[];
  principals: PrincipalModel[];
}

export interface RbacRulesModel {
  action: RbacAction;
  /** sorted by name, the order of Envoy's map, so the reported policy is Envoy's */
  policies: PolicyModel[];
}

export interface RbacFilterModel {
  /** absent: the filter enforces nothing (as Envoy) */
  rules?: RbacRulesModel;
  /** checked like rules, never enforced (Envoy only records what they would do) */
  shadowRules?: RbacRulesModel;
}

const V4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

function v4Word(s: string): number | undefined {
  const m = V4.exec(s);
  return m ? ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0 : undefined;
}

function v6Hextets(s: string): number[] | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string, last: boolean): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const groups = part.split(':');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (last && i === groups.length - 1 && g.includes('.')) {
        const w = v4Word(g);
        if (w === undefined) return undefined;
        out.push(w >>> 16, w & 0xffff);
      } else if (HEXTET.test(g)) out.push(parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  const head = parse(halves[0], halves.length === 1);
  const tail = halves.length === 2 ? parse(halves[1], true) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  return [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
}

const words6 = (h: number[]): number[] => [0, 2, 4, 6].map((i) => ((h[i] << 16) | h[i + 1]) >>> 0);

function parseAddress(text: string, foldMapped: boolean): IpAddress | undefined {
  const v4 = v4Word(text);
  if (v4 !== undefined) return { family: 4, words: [v4] };
  const zone = text.indexOf('%');
  const h = v6Hextets(zone < 0 ? text : text.slice(0, zone));
  if (!h) return undefined;
  if (foldMapped && h[0] === 0 && h[1] === 0 && h[2] === 0 && h[3] === 0 && h[4] === 0 && h[5] === 0xffff) {
    return { family: 4, words: [((h[6] << 16) | h[7]) >>> 0] };
  }
  return { family: 6, words: words6(h) };
}

/**
 * Parses a request's IP address. An IPv4-mapped IPv6 address (how Node reports IPv4
 * peers of a dual-stack socket) is read as the IPv4 address it carries; a zone is dropped.
 */
export const parseIp = (text: string): IpAddress | undefined => parseAddress(text, true);

const mask = (bits: number): number => (bits >= 32 ? 0xffffffff : bits <= 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);

/** A CIDR from an address (taken as written, mapped or not) and a prefix length; undefined if either is bad. */
export function makeCidr(address: string, prefixLen: number): Cidr | undefined {
  const ip = address.includes('%') ? undefined : parseAddress(address, false);
  if (!ip || !Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > (ip.family === 4 ? 32 : 128)) return undefined;
  const words = ip.words.map((w, i) => (w & mask(prefixLen - 32 * i)) >>> 0);
  return { family: ip.family, words, prefixLen, text: `${address}/${prefixLen}` };
}

export function cidrContains(c: Cidr, ip: IpAddress): boolean {
  if (c.family !== ip.family) return false;
  for (let i = 0, bits = c.prefixLen; bits > 0; i++, bits -= 32) {
    if (((ip.words[i] & mask(bits)) >>> 0) !== c.words[i]) return false;
  }
  return true;
}
