// PeerAuthentication and AuthorizationPolicy.

import type { AuthorizationPolicy, AuthorizationRule, MtlsMode, PeerAuthentication } from '../model/types';
import { selector } from './common';
import { defined, fields, list, nonEmpty, oneOf, type Node, type Read } from './reader';

export function peerAuthentication(spec: Node): Omit<PeerAuthentication, 'name' | 'namespace' | 'source'> {
  const f = fields(spec, ['selector', 'mtls']);
  const mode = f.opt('mtls', (m) =>
    fields(m, ['mode']).opt('mode', (x) => {
      const v = oneOf('STRICT', 'PERMISSIVE', 'UNSET', 'DISABLE')(x);
      if (v === 'DISABLE') x.fail('DISABLE is not supported: traffic between sidecars is always mTLS (use PERMISSIVE to also accept plaintext)');
      return v;
    }),
  );
  return defined({
    selector: f.opt('selector', selector),
    // Tandem's default is STRICT, so UNSET (inherit) lands there too.
    mode: (mode === undefined || mode === 'UNSET' ? 'STRICT' : mode) as MtlsMode,
  });
}

/** Istio's match values: exact, "*", "prefix*" or "*suffix". */
const pattern: Read<string> = (n) => {
  const s = nonEmpty(n);
  const inner = s.slice(1, -1);
  if (s !== '*' && (inner.includes('*') || (s.startsWith('*') && s.endsWith('*')))) {
    n.fail(`${JSON.stringify(s)}: "*" is only allowed as a prefix or suffix`);
  }
  return s;
};

const rule: Read<AuthorizationRule> = (n) => {
  const f = fields(n, ['from', 'to']);
  return defined({
    from: f.opt(
      'from',
      list((x) =>
        fields(x, ['source']).req('source', (s) =>
          defined({ principals: fields(s, ['principals']).opt('principals', list(pattern)) }),
        ),
      ),
    ),
    to: f.opt(
      'to',
      list((x) =>
        fields(x, ['operation']).req('operation', (o) => {
          const g = fields(o, ['methods', 'paths']);
          return defined({ methods: g.opt('methods', list(nonEmpty)), paths: g.opt('paths', list(pattern)) });
        }),
      ),
    ),
  });
};

export function authorizationPolicy(spec: Node): Omit<AuthorizationPolicy, 'name' | 'namespace' | 'source'> {
  const f = fields(spec, ['selector', 'action', 'rules']);
  return defined({
    selector: f.opt('selector', selector),
    action: f.opt('action', oneOf('ALLOW', 'DENY')) ?? 'ALLOW',
    rules: f.opt('rules', list(rule)) ?? [],
  });
}
