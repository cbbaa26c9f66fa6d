// The outbound routes split for clients that take them so (VHDS, Delta xDS only; see
// proto/node-meta.ts VHDS_FEATURE): the RouteConfiguration keeps every field but its
// virtual hosts and says `vhds`, and each virtual host is a VirtualHost resource of its
// own, named `<route configuration>/<its name>` as Envoy names them. A virtual host's name
// is its service's FQDN (or the wildcard host it serves), so the same virtual host has the
// same name, and the same encoding, in every snapshot: a route edit changes one resource.
import { pack } from '../../proto/any';
import { TypeUrl } from '../../proto/type-urls';
import type { Resource } from './served-set';

type Obj = Record<string, unknown>;

/** How a client takes its outbound routes: the whole table in one resource, or split. */
export type RouteForm = 'whole' | 'vhds';

export interface SplitRoutes {
  /** the route configurations, with `vhds` and no inline virtual hosts */
  routes: Map<string, Resource>;
  /** the virtual hosts, by resource name */
  vhosts: Map<string, Resource>;
}

export const VHDS_SOURCE = { config_source: { ads: {}, resource_api_version: 'V3' } };

export const vhdsName = (routeConfig: string, vhost: string): string => `${routeConfig}/${vhost}`;

const made = new WeakMap<Map<string, Resource>, SplitRoutes>();

/** The split form of whole route configurations, made once per map of them (a view's). */
export function splitRoutes(whole: Map<string, Resource>): SplitRoutes {
  let split = made.get(whole);
  if (split) return split;
  split = { routes: new Map(), vhosts: new Map() };
  for (const r of whole.values()) {
    const { virtual_hosts: vhosts = [], ...rest } = r.obj as Obj & { virtual_hosts?: Obj[] };
    const rc = { ...rest, vhds: VHDS_SOURCE };
    split.routes.set(r.name, { name: r.name, obj: rc, any: pack(TypeUrl.RouteConfiguration, rc) });
    for (const vh of vhosts) {
      const name = vhdsName(r.name, String(vh.name));
      const obj = { ...vh, name };
      split.vhosts.set(name, { name, obj, any: pack(TypeUrl.VirtualHost, obj) });
    }
  }
  made.set(whole, split);
  return split;
}
