// "What to serve": an immutable, consistent set of xDS resources computed from one
// config and one set of registered workloads. Proxyless listeners are made on demand
// for whatever service name a client dials, and cached for the snapshot's life.
import { createHash } from 'node:crypto';
import type { MeshConfig, VirtualService } from '../model/types';
import type { Workload } from '../model/workload';
import { collectServices, resolveService, type Service } from '../model/services';
import { clusterPolicy, DestinationRuleIndex, serviceNamespace } from '../model/destination-rules';
import { pack, type AnyMessage } from '../../proto/any';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import { INBOUND_LISTENER, OUTBOUND_LISTENER, OUTBOUND_ROUTE } from './names';
import { defaultRoute, destinationPort, translateHttpRoute, type PolicyOf } from './translate-route';
import { inboundListener, inboundKey } from './translate-inbound';
import { clusterSpecs, translateCluster, translateEndpoints } from './translate-cluster';

type Obj = Record<string, unknown>;

export interface Resource {
  name: string;
  any: AnyMessage;
  /** the plain object, for /debug views */
  obj: Obj;
}

export interface ServedSet {
  version: string;
  resources: Resource[];
}

// The fault filter is empty at the listener; routes switch it on through
// typed_per_filter_config. The router comes last, as Envoy and grpc-js-xds require.
const ROUTER_FILTERS = () => [
  { name: 'envoy.filters.http.fault', typed_config: pack(TypeUrl.HTTPFault, {}) },
  { name: 'envoy.filters.http.router', typed_config: pack(TypeUrl.Router, {}) },
];

function hcm(statPrefix: string, routeName: string): AnyMessage {
  return pack(TypeUrl.HttpConnectionManager, {
    stat_prefix: statPrefix,
    rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: routeName },
    http_filters: ROUTER_FILTERS(),
    strip_any_host_port: true,
  });
}

export interface SnapshotOptions {
  /** DNS domain of short service names */
  domain: string;
  /** SPIFFE trust domain of workload identities */
  trustDomain: string;
}

export class Snapshot {
  readonly services: Map<string, Service>;
  private readonly fixed: Record<XdsTypeUrl, Map<string, Resource>>;
  private readonly vsByHost = new Map<string, VirtualService>();
  private readonly policyOf: PolicyOf;

  constructor(
    readonly generation: number,
    readonly config: MeshConfig,
    readonly workloads: Workload[],
    readonly opts: SnapshotOptions,
  ) {
    const domain = opts.domain;
    this.services = collectServices(config, workloads, domain);
    const rules = new DestinationRuleIndex(config.destinationRules);
    const ruleFor = (host: string) => rules.forHost(host, serviceNamespace(host, config, domain));
    // the policy of the cluster a destination names, so a route hashes as its cluster balances
    this.policyOf = (d) => clusterPolicy(ruleFor(d.host), destinationPort(d, this.services), d.subset);
    for (const vs of config.virtualServices) for (const h of vs.hosts) if (!this.vsByHost.has(h)) this.vsByHost.set(h, vs);
    const referenced = new Map<string, Set<number>>();
    const reference = (d: { host: string; port?: number }) => {
      const ports = referenced.get(d.host) ?? new Set<number>();
      ports.add(destinationPort(d, this.services));
      referenced.set(d.host, ports);
    };
    for (const vs of config.virtualServices) {
      for (const r of vs.http) {
        for (const d of r.route) reference(d.destination);
        for (const m of r.mirrors) reference(m.destination);
      }
    }
    const specs = clusterSpecs(config, this.services, referenced, ruleFor);
    this.fixed = {
      [TypeUrl.Cluster]: toMap(specs.map((c) => res(TypeUrl.Cluster, c.name, translateCluster(c)))),
      [TypeUrl.ClusterLoadAssignment]: toMap(
        specs.map((c) => res(TypeUrl.ClusterLoadAssignment, c.name, translateEndpoints(c, config, workloads, domain))),
      ),
      [TypeUrl.Listener]: toMap([
        res(TypeUrl.Listener, OUTBOUND_LISTENER, {
          name: OUTBOUND_LISTENER,
          address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
          filter_chains: [
            { filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm('outbound', OUTBOUND_ROUTE) }] },
          ],
        }),
      ]),
      [TypeUrl.RouteConfiguration]: toMap([
        res(TypeUrl.RouteConfiguration, OUTBOUND_ROUTE, {
          name: OUTBOUND_ROUTE,
          // sorted: the version must not depend on the order sidecars registered in
          virtual_hosts: [...this.services.values()].sort((a, b) => (a.fqdn < b.fqdn ? -1 : 1)).map((s) => this.virtualHost(s, s.aliases)),
        }),
      ]),
    };
  }

  private virtualHost(s: Service, domains: string[]): Obj {
    const vs = this.vsByHost.get(s.fqdn);
    const routes = vs ? vs.http.flatMap((r, i) => translateHttpRoute(vs, r, i, this.services, this.policyOf)) : [defaultRoute(s)];
    return { name: s.fqdn, domains, routes };
  }

  /**
   * The resources of one type a subscriber gets: every resource for a wildcard
   * subscription (names null), else the named ones that exist.
   */
  served(type: XdsTypeUrl, names: string[] | null, workload?: Workload): ServedSet {
    const fixed = this.fixed[type];
    let list: Resource[];
    if (names === null) list = [...fixed.values()];
    else list = names.filter((n) => n !== INBOUND_LISTENER).map((n) => fixed.get(n) ?? this.onDemand(type, n)).filter((r): r is Resource => !!r);
    // a sidecar's own inbound listener: its mTLS mode and authorization policies
    if (type === TypeUrl.Listener && workload && (names === null || names.includes(INBOUND_LISTENER))) list.push(this.inbound(workload));
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { version: versionOf(list), resources: list };
  }

  // workloads alike in what policy can select (namespace, labels, port) share one listener
  private readonly inboundCache = new Map<string, Resource>();

  private inbound(w: Workload): Resource {
    const key = inboundKey(w);
    let r = this.inboundCache.get(key);
    if (!r) {
      r = res(TypeUrl.Listener, INBOUND_LISTENER, inboundListener(w, this.config, this.opts.trustDomain));
      this.inboundCache.set(key, r);
    }
    return r;
  }

  private readonly demandCache = new Map<string, Resource | null>();

  // A proxyless gRPC client dials xds:///reviews (or an FQDN, optionally :port) and asks
  // for a Listener of exactly that name, then a RouteConfiguration we name the same.
  private onDemand(type: XdsTypeUrl, name: string): Resource | undefined {
    if (type !== TypeUrl.Listener && type !== TypeUrl.RouteConfiguration) return undefined;
    const key = `${type} ${name}`;
    if (!this.demandCache.has(key)) {
      const found = resolveService(this.services, name);
      let r: Resource | null = null;
      if (found && type === TypeUrl.Listener) {
        r = res(TypeUrl.Listener, name, { name, api_listener: { api_listener: hcm(name, name) } });
      } else if (found) {
        r = res(TypeUrl.RouteConfiguration, name, { name, virtual_hosts: [this.virtualHost(found.service, [name])] });
      }
      this.demandCache.set(key, r);
    }
    return this.demandCache.get(key) ?? undefined;
  }
}

function res(type: XdsTypeUrl, name: string, obj: Obj): Resource {
  return { name, obj, any: pack(type, obj) };
}

function toMap(list: Resource[]): Map<string, Resource> {
  return new Map(list.map((r) => [r.name, r]));
}

// A version names content: the same resources always carry the same version, so a
// reconnecting client that already holds them is not sent them again.
function versionOf(list: Resource[]): string {
  const h = createHash('sha256');
  for (const r of list) {
    h.update(r.name).update('\0').update(r.any.value).update('\0');
  }
  return h.digest('hex').slice(0, 12);
}
