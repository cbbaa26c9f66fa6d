// ServiceEntry: services the mesh reaches directly (outside it, or not registered by a
// sidecar), with Istio's resolution modes. Tandem's outbound port carries HTTP, so an
// entry must have a port HTTP can use; TCP and TLS passthrough are refused.

import { isIP } from 'node:net';
import type { Resolution, ServiceEntry, ServicePort, WorkloadEntry } from '../model/types';
import { HTTP_PROTOCOLS } from '../model/services';
import { DNS_LABEL, DNS_SUBDOMAIN, host, port, type Ctx } from './common';
import { defined, fields, int, list, mapOf, nonEmpty, Node, oneOf, str, strMap, type Read } from './reader';

/** Istio's protocol names (protocol.Parse), upper-cased. */
const PROTOCOLS = ['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTPS', 'TLS', 'TCP', 'MONGO', 'REDIS', 'MYSQL', 'UDP'] as const;

const protocol: Read<string> = (n) => oneOf(...PROTOCOLS)(new Node(str(n).toUpperCase(), n.path));

/**
 * Istio's port naming convention ("http-web", "grpc") names the protocol when none is
 * given. Otherwise Istio sniffs the protocol; what reaches Tandem's outbound port is HTTP.
 */
const protocolFromName = (name: string): string =>
  PROTOCOLS.find((p) => name.toUpperCase() === p || name.toUpperCase().startsWith(`${p}-`)) ?? 'HTTP';

const servicePort: Read<ServicePort> = (n) => {
  const f = fields(n, ['number', 'name', 'protocol', 'targetPort']);
  const number = f.req('number', port);
  const name = f.req('name', (x) => {
    const s = nonEmpty(x);
    return DNS_LABEL.test(s) ? s : x.fail(`must be a DNS label such as http-web, got ${JSON.stringify(s)}`);
  });
  return defined({ number, name, protocol: f.opt('protocol', protocol) ?? protocolFromName(name), targetPort: f.opt('targetPort', port) });
};

/**
 * A VIP. Tandem has no destination-IP capture: the application names the service in
 * the Host header, so a single address is one more name for the entry; a range names none.
 */
const address: Read<string> = (n) => {
  const s = nonEmpty(n);
  if (isIP(s)) return s;
  const m = /^(.+)\/(\d{1,3})$/.exec(s);
  const family = m ? isIP(m[1]) : 0;
  if (!m || !family || Number(m[2]) > (family === 4 ? 32 : 128)) return n.fail(`must be an IP address or a CIDR range, got ${JSON.stringify(s)}`);
  if (Number(m[2]) === (family === 4 ? 32 : 128)) return m[1];
  return n.fail(`the CIDR range ${s} is not supported by Tandem: ranges select traffic by destination IP, which Tandem does not capture (the Host header names the service); list single addresses`);
};

const endpointAddress =
  (resolution: Resolution): Read<string> =>
  (n) => {
    const s = nonEmpty(n);
    if (s.startsWith('unix://')) return n.fail('Unix domain socket endpoints are not supported by Tandem');
    if (isIP(s)) return s;
    if (resolution === 'STATIC') return n.fail(`must be an IP address (resolution is STATIC; use DNS for a host name), got ${JSON.stringify(s)}`);
    const h = s.toLowerCase();
    return DNS_SUBDOMAIN.test(h) && h.length <= 253 ? h : n.fail(`must be an IP address or a fully qualified host name, got ${JSON.stringify(s)}`);
  };

const endpoint =
  (portNames: Set<string>, resolution: Resolution): Read<WorkloadEntry> =>
  (n) => {
    const f = fields(n, ['address', 'ports', 'labels', 'weight', 'network', 'locality', 'serviceAccount']);
    if (f.has('network')) n.at('network').fail('multi-network endpoints (reached through a network gateway) are not supported by Tandem: the mesh is one network');
    if (f.has('serviceAccount')) {
      n.at('serviceAccount').fail('endpoints with a sidecar are not supported by Tandem in a ServiceEntry: a workload with a Tandem sidecar registers itself (tandem sidecar --service)');
    }
    const weight = f.opt('weight', int(0, 2 ** 32 - 1));
    return defined({
      address: f.req('address', endpointAddress(resolution)),
      ports: f.opt(
        'ports',
        mapOf(port, (name, p) => (portNames.has(name) ? name : p.fail(`no port named ${JSON.stringify(name)} in spec.ports`))),
      ),
      labels: f.opt('labels', strMap) ?? {},
      // as Istio: 0 is unset, an equal share
      weight: weight ? weight : undefined,
      locality: f.opt('locality', nonEmpty),
    });
  };

function unique(items: unknown[], at: (i: number) => Node, what: string): void {
  items.forEach((v, i) => {
    if (items.indexOf(v) !== i) at(i).fail(`duplicate ${what} ${JSON.stringify(v)}`);
  });
}

const RESOLUTIONS = ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS'] as const;

export function serviceEntry(spec: Node, ctx: Ctx): Omit<ServiceEntry, 'name' | 'namespace' | 'source'> {
  const f = fields(spec, ['hosts', 'addresses', 'ports', 'location', 'resolution', 'endpoints', 'workloadSelector', 'exportTo', 'subjectAltNames']);
  f.opt('exportTo', list(str)); // everything is visible mesh-wide in Tandem
  if (f.has('workloadSelector')) {
    spec.at('workloadSelector').fail('selecting WorkloadEntries and pods is not supported by Tandem: a workload with a Tandem sidecar registers itself; list endpoints instead');
  }
  const hosts = f.req('hosts', list(host(ctx, { wildcard: true }), { nonEmpty: true }));
  hosts.forEach((h, i) => {
    if (h === '*') spec.at('hosts').at(i).fail('must not be "*"');
  });
  const addresses = f.opt('addresses', list(address)) ?? [];
  const ports = f.req('ports', list(servicePort, { nonEmpty: true }));
  unique(ports.map((p) => p.number), (i) => spec.at('ports').at(i).at('number'), 'port');
  unique(ports.map((p) => p.name), (i) => spec.at('ports').at(i).at('name'), 'port name');
  if (!ports.some((p) => HTTP_PROTOCOLS.has(p.protocol))) {
    spec
      .at('ports')
      .at(0)
      .at('protocol')
      .fail(
        `${ports.map((p) => p.protocol).join(', ')} without an HTTP port means TCP or TLS passthrough, which is not supported by Tandem (its outbound port carries HTTP); ` +
          'to reach an HTTPS server, declare an HTTP port and originate TLS with a DestinationRule tls.mode SIMPLE',
      );
  }
  const given = f.opt('resolution', (n): Resolution => {
    const r = oneOf(...RESOLUTIONS)(n);
    return r === 'DYNAMIC_DNS' ? n.fail('DYNAMIC_DNS (resolving each request\'s Host for a wildcard entry) is not supported by Tandem') : r;
  });
  // Istio's default is NONE, which takes no endpoints; an entry that lists endpoints and
  // names no resolution is read as STATIC (Tandem's reading before it had NONE).
  const raw = spec.at('endpoints').value;
  const resolution: Resolution = given ?? (Array.isArray(raw) && raw.length ? 'STATIC' : 'NONE');
  const endpoints = f.opt('endpoints', list(endpoint(new Set(ports.map((p) => p.name)), resolution))) ?? [];
  if (resolution === 'NONE' && endpoints.length) spec.at('endpoints').fail('resolution NONE (the destination the application addressed) takes no endpoints; use STATIC or DNS');
  if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) spec.at('endpoints').fail('resolution DNS_ROUND_ROBIN takes at most one endpoint');
  if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && endpoints.length === 0) {
    hosts.forEach((h, i) => {
      if (h.startsWith('*')) spec.at('hosts').at(i).fail(`resolution ${resolution} without endpoints resolves the hosts themselves, and a wildcard cannot be resolved`);
    });
  }
  // as Istio: with several hosts only HTTP (by Host) and TLS (by SNI) tell them apart
  if (resolution !== 'NONE' && hosts.length > 1) {
    const i = ports.findIndex((p) => !HTTP_PROTOCOLS.has(p.protocol) && p.protocol !== 'HTTPS' && p.protocol !== 'TLS');
    if (i >= 0) spec.at('ports').at(i).at('protocol').fail(`${ports[i].protocol} cannot tell several hosts apart; give each host its own ServiceEntry`);
  }
  return defined({
    hosts,
    addresses,
    ports,
    endpoints,
    resolution,
    location: f.opt('location', oneOf('MESH_EXTERNAL', 'MESH_INTERNAL')) ?? 'MESH_EXTERNAL',
    subjectAltNames: f.opt('subjectAltNames', list(nonEmpty)),
  });
}
