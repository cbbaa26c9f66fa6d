// Sidecar (networking v1): which services a workload's sidecar is sent. Istio's rules
// (pkg/config/validation ValidateSidecar) where Tandem honours a field; a refusal naming
// the field where Tandem has nothing to honour it with.

import type { EgressHost, Sidecar } from '../model/types';
import { DNS_LABEL } from './common';
import { fields, list, oneOf, str, type Node, type Read } from './reader';
import { labelSelector } from './selectors';

const NOT_SUPPORTED = 'not supported by Tandem';

// `*`, or a name with at least one dot, optionally `*.` in front (Istio refuses short names here)
const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS_NAME = new RegExp(`^(\\*\\.)?${LABEL}(\\.${LABEL})+$`);

/** `namespace/dnsName`: namespace `*`, `.` or a name, `~` in front to exclude; dnsName `*`, `*.suffix` or a name with a dot. */
const egressHost: Read<EgressHost> = (n) => {
  const s = str(n).toLowerCase();
  const slash = s.indexOf('/');
  if (slash < 0 || s.indexOf('/', slash + 1) >= 0) n.fail(`${JSON.stringify(s)}: a host must be of the form namespace/dnsName, e.g. "./*" or "prod/reviews.prod.svc.cluster.local"`);
  const exclude = s.startsWith('~');
  let namespace = s.slice(exclude ? 1 : 0, slash);
  const host = s.slice(slash + 1);
  // Istio: a bare `~` is the wildcard namespace, so `~/name` excludes name everywhere
  if (exclude && namespace === '') namespace = '*';
  if (namespace === '' || host === '') n.fail(`${JSON.stringify(s)}: neither the namespace nor the dnsName may be empty`);
  if (namespace !== '*' && namespace !== '.' && !(DNS_LABEL.test(namespace) && namespace.length <= 63)) n.fail(`${JSON.stringify(s)}: invalid namespace ${JSON.stringify(namespace)} (a name, "*", "." or "~")`);
  if (host !== '*') {
    if (host.includes('*') && !host.startsWith('*.')) n.fail(`${JSON.stringify(s)}: partial wildcard ${JSON.stringify(host)} is not allowed (only "*" or "*.suffix")`);
    if (!host.includes('.')) n.fail(`${JSON.stringify(s)}: short names are not allowed (as in Istio): write "*" or a fully qualified name such as ${host}.<namespace>.svc.cluster.local`);
    if (!DNS_NAME.test(host) || host.length > 253) n.fail(`${JSON.stringify(s)}: invalid dnsName ${JSON.stringify(host)}`);
  }
  return { namespace, host, exclude };
};

// Tandem's sidecar has one outbound listener, the --outbound address the application sends
// to; Istio's per-port egress listeners would each be a listener of their own.
const egressListener: Read<EgressHost[]> = (n) => {
  const f = fields(n, ['port', 'bind', 'captureMode', 'hosts']);
  if (f.has('port')) n.at('port').fail(`${NOT_SUPPORTED}: the sidecar has one outbound listener (its --outbound address), so an egress listener cannot have a port of its own; leave port out`);
  if (f.has('bind')) n.at('bind').fail(`${NOT_SUPPORTED}: the sidecar's outbound address is its --outbound flag`);
  // Tandem never captures traffic: the application sends to the outbound port itself (NONE)
  if (f.opt('captureMode', oneOf('DEFAULT', 'IPTABLES', 'NONE')) === 'IPTABLES') {
    n.at('captureMode').fail(`${NOT_SUPPORTED}: Tandem does not capture traffic; the application sends to the sidecar's outbound port (captureMode NONE)`);
  }
  return f.req('hosts', list(egressHost, { nonEmpty: true }));
};

const outboundTrafficPolicy: Read<void> = (n) => {
  const f = fields(n, ['mode', 'egressProxy']);
  if (f.opt('mode', oneOf('REGISTRY_ONLY', 'ALLOW_ANY')) === 'ALLOW_ANY') {
    n.at('mode').fail(`${NOT_SUPPORTED}: a host the mesh does not know gets 404 NR (REGISTRY_ONLY); declare an outside host with a ServiceEntry`);
  }
  if (f.has('egressProxy')) n.at('egressProxy').fail(`${NOT_SUPPORTED} (in Istio it needs mode ALLOW_ANY)`);
};

export function sidecar(spec: Node): Omit<Sidecar, 'name' | 'namespace' | 'source'> {
  const f = fields(spec, ['workloadSelector', 'ingress', 'egress', 'inboundConnectionPool', 'outboundTrafficPolicy']);
  const selector = f.opt('workloadSelector', (n) => fields(n, ['labels']).opt('labels', labelSelector));
  const ingress = f.opt('ingress', list((n) => n));
  if (ingress?.length) {
    spec.at('ingress').fail(`${NOT_SUPPORTED}: a sidecar's inbound port and its application's address are its --inbound and --app flags`);
  }
  if (f.has('inboundConnectionPool')) {
    spec.at('inboundConnectionPool').fail(`${NOT_SUPPORTED}: connection limits apply on the calling side, with a DestinationRule's trafficPolicy.connectionPool`);
  }
  f.opt('outboundTrafficPolicy', outboundTrafficPolicy);
  const egress = f.opt('egress', list(egressListener));
  // Istio: the listener without a port is the catch-all and there is only one; here it is the only listener
  if (egress && egress.length > 1) spec.at('egress').at(1).fail('only one egress listener (the one without a port) is supported: put every host in it');
  if (!egress?.length && !f.has('outboundTrafficPolicy')) spec.fail('empty Sidecar: give egress hosts (or an outboundTrafficPolicy)');
  return {
    ...(selector ? { workloadSelector: selector } : {}),
    egressHosts: egress?.[0] ?? [{ namespace: '*', host: '*', exclude: false }],
  };
}
