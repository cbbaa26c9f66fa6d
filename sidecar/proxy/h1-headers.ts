// HTTP/1.1 header lines as node:http presents them (IncomingMessage's rules), for the
// responses undici reads and the requests the listener reads (h1-parse.ts): names
// lower-cased, set-cookie a list, cookie joined with "; ", the fields that may appear once
// keep their first value, any other repeat joined with ", ".
import type { IncomingHttpHeaders } from 'node:http';

const FIRST_ONLY = new Set([
  'content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
  'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag',
  'last-modified', 'server', 'age', 'expires',
]);

/** Adds one header line (its name lower-cased) to `out` by those rules. */
export function addHeaderLine(out: IncomingHttpHeaders, name: string, value: string): void {
  const h = out as Record<string, string | string[] | undefined>;
  const cur = h[name];
  if (cur === undefined) h[name] = name === 'set-cookie' ? [value] : value;
  else if (name === 'set-cookie') (cur as string[]).push(value);
  else if (!FIRST_ONLY.has(name)) h[name] = `${cur as string}${name === 'cookie' ? '; ' : ', '}${value}`;
}

/** `raw` alternates names and values, as undici hands them over. */
export function responseHeaders(raw: readonly (Buffer | string)[]): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (let i = 0; i + 1 < raw.length; i += 2) addHeaderLine(out, raw[i].toString('latin1').toLowerCase(), raw[i + 1].toString('latin1'));
  return out;
}
