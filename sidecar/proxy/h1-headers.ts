// An HTTP/1.1 response's raw header lines as node:http presents them (IncomingMessage's
// rules): names lower-cased, set-cookie a list, cookie joined with "; ", the fields that may
// appear once keep their first value, any other repeat joined with ", ".
import type { IncomingHttpHeaders } from 'node:http';

const FIRST_ONLY = new Set([
  'content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
  'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag',
  'last-modified', 'server', 'age', 'expires',
]);

/** `raw` alternates names and values, as undici hands them over. */
export function responseHeaders(raw: readonly (Buffer | string)[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toString('latin1').toLowerCase();
    const value = raw[i + 1].toString('latin1');
    const cur = out[name];
    if (cur === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (cur as string[]).push(value);
    else if (FIRST_ONLY.has(name)) continue;
    else out[name] = `${cur}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return out as IncomingHttpHeaders;
}
