// The hash a ring-hash or Maglev cluster places a request by, from the route's hash
// policies (Envoy's semantics: each policy that yields a value mixes it in; a terminal
// one that yields stops there). A cookie policy with a ttl makes the cookie when the
// request has none, and the response sets it, so the client sticks from then on.
import { randomBytes } from 'node:crypto';
import type { HashPolicyModel } from '../../proto/decode/model';
import { hash32 } from './hash-ring';

export interface HashInput {
  header(name: string): string | undefined;
  path: string;
  clientIp: string;
}

export interface RequestHash {
  hash?: number;
  /** a Set-Cookie value to send back, for a cookie the proxy made */
  setCookie?: string;
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

function queryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(path.slice(q + 1)).get(name) ?? undefined;
}

export function requestHash(policies: HashPolicyModel[], r: HashInput): RequestHash {
  let hash: number | undefined;
  let setCookie: string | undefined;
  for (const p of policies) {
    let v: string | undefined;
    if (p.kind === 'header') v = r.header(p.name);
    else if (p.kind === 'sourceIp') v = r.clientIp || undefined;
    else if (p.kind === 'query') v = queryValue(r.path, p.name);
    else {
      v = cookieValue(r.header('cookie'), p.name);
      if (v === undefined && p.ttlMs !== undefined) {
        v = randomBytes(8).toString('hex');
        // a zero ttl is a session cookie, as in Envoy
        const age = p.ttlMs > 0 ? `; Max-Age=${Math.max(1, Math.round(p.ttlMs / 1000))}` : '';
        // the attributes the route adds (SameSite, Secure, ...), as Envoy writes them: name, or name=value
        const attrs = (p.attributes ?? []).map((a) => (a.value ? `; ${a.name}=${a.value}` : `; ${a.name}`)).join('');
        setCookie = `${p.name}="${v}"${age}${p.path ? `; Path=${p.path}` : ''}; HttpOnly${attrs}`;
      }
    }
    if (v === undefined) continue;
    const h = hash32(v);
    // Envoy mixes successive hashes by rotating the previous one
    hash = hash === undefined ? h : (((hash << 1) | (hash >>> 31)) ^ h) >>> 0;
    if (p.terminal) break;
  }
  return { hash, setCookie };
}
