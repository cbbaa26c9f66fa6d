// ServiceEntry: services outside the mesh at static addresses.

import { isIP } from 'node:net';
import type { ServiceEntry, ServicePort, WorkloadEntry } from '../model/types';
import { DNS_LABEL, host, port, type Ctx } from './common';
import { defined, fields, list, mapOf, nonEmpty, Node, oneOf, str, strMap, type Read } from './reader';

const PROTOCOLS = ['HTTP', 'HTTP2', 'GRPC', 'HTTPS', 'TCP', 'TLS'] as const;

const protocol: Read<string> = (n) => oneOf(...PROTOCOLS)(new Node(str(n).toUpperCase(), n.path));

/** Istio's port naming convention ("http-web", "grpc") picks the protocol when none is given. */
const protocolFromName = (name: string): string =>
  PROTOCOLS.find((p) => name.toUpperCase() === p || name.toUpperCase().startsWith(`${p}-`)) ?? 'TCP';

const servicePort: Read<ServicePort> = (n) => {
  const f = fields(n, ['number', 'name', 'protocol']);
  const number = f.req('number', port);
  const name = f.req('name', (x) => {
    const s = nonEmpty(x);
    return DNS_LABEL.test(s) ? s : x.fail(`must be a DNS label such as http-web, got ${JSON.stringify(s)}`);
  });
  return { number, name, protocol: f.opt('protocol', protocol) ?? protocolFromName(name) };
};

// STATIC resolution means the address is dialled as is, so it must be an IP.
const ipAddress: Read<string> = (n) => {
  const s = nonEmpty(n);
  return isIP(s) ? s : n.fail(`must be an IP address (resolution is STATIC), got ${JSON.stringify(s)}`);
};

const endpoint =
  (portNames: Set<string>): Read<WorkloadEntry> =>
  (n) => {
    const f = fields(n, ['address', 'ports', 'labels']);
    return defined({
      address: f.req('address', ipAddress),
      ports: f.opt(
        'ports',
        mapOf(port, (name, p) => (portNames.has(name) ? name : p.fail(`no port named ${JSON.stringify(name)} in spec.ports`))),
      ),
      labels: f.opt('labels', strMap) ?? {},
    });
  };

function unique(items: unknown[], at: (i: number) => Node, what: string): void {
  items.forEach((v, i) => {
    if (items.indexOf(v) !== i) at(i).fail(`duplicate ${what} ${JSON.stringify(v)}`);
  });
}

export function serviceEntry(spec: Node, ctx: Ctx): Omit<ServiceEntry, 'name' | 'namespace' | 'source'> {
  const f = fields(spec, ['hosts', 'ports', 'endpoints', 'resolution', 'location', 'exportTo']);
  f.opt('exportTo', list(str)); // everything is visible mesh-wide in Tandem
  const hosts = f.req('hosts', list(host(ctx, { wildcard: true }), { nonEmpty: true }));
  hosts.forEach((h, i) => {
    if (h === '*') spec.at('hosts').at(i).fail('must not be "*"');
  });
  const ports = f.req('ports', list(servicePort, { nonEmpty: true }));
  unique(ports.map((p) => p.number), (i) => spec.at('ports').at(i).at('number'), 'port');
  unique(ports.map((p) => p.name), (i) => spec.at('ports').at(i).at('name'), 'port name');
  // location only steers Istio's telemetry and mTLS defaults; ServiceEntries here are plaintext.
  f.opt('location', oneOf('MESH_EXTERNAL', 'MESH_INTERNAL'));
  return {
    hosts,
    ports,
    endpoints: f.opt('endpoints', list(endpoint(new Set(ports.map((p) => p.name))))) ?? [],
    resolution: f.opt('resolution', oneOf('STATIC')) ?? 'STATIC',
  };
}
