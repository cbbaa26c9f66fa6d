// What a sidecar starts from: its bootstrap token and the trust domain of the mesh root.
import * as fs from 'node:fs';
import { X509Certificate } from 'node:crypto';

export class TokenUnreadableError extends Error {
  readonly code = 'TOKEN_UNREADABLE';
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * `--token` names a file holding the token (re-read each time, so a refreshed file is
 * picked up); a value that is itself a token (as $TANDEM_TOKEN may carry) is used as is.
 */
export function readToken(flag: string): string {
  if (!flag) throw new TokenUnreadableError('--token (or $TANDEM_TOKEN): a bootstrap token is needed; mint one with `tandem token --namespace NS --service-account SA`');
  let text: string;
  try {
    text = fs.readFileSync(flag, 'utf8').trim();
  } catch (err) {
    if (JWT_SHAPE.test(flag.trim())) return flag.trim();
    throw new TokenUnreadableError(`--token: cannot read ${flag}: ${(err as Error).message}`, { cause: err });
  }
  if (!text) throw new TokenUnreadableError(`--token: ${flag} is empty`);
  return text;
}

/** The trust domain the root was made for (`tandem certs init` writes it as O=), else cluster.local. */
export function trustDomainOf(rootPem: string): string {
  try {
    const o = /^O=(.+)$/m.exec(new X509Certificate(rootPem).subject)?.[1];
    return o && /^[a-z0-9.-]+$/.test(o) ? o : 'cluster.local';
  } catch {
    return 'cluster.local';
  }
}
