// Which VirtualService routes a host, as Istio decides it for sidecars: a VirtualService
// naming the host exactly wins over any wildcard; among wildcards (`*.suffix`, `*`) the
// most specific (longest) wins. Several VirtualServices naming one host are not merged
// (Istio merges only for gateways): the first in Istio's order takes it, the oldest, ties
// broken by name then namespace. Tandem's config carries no creation times, so the tie-break
// alone orders them.
import type { VirtualService } from './types';

export const isWildcard = (host: string): boolean => host === '*' || host.startsWith('*.');

/** Whether wildcard `w` (`*` or `*.suffix`) covers the host name `h`. */
export const wildcardCovers = (w: string, h: string): boolean => w === '*' || (h.endsWith(w.slice(1)) && h.length > w.length - 1);

export class VirtualServiceIndex {
  private readonly exact = new Map<string, VirtualService>();
  /** wildcard host -> its VirtualService, most specific first */
  private readonly wildcards: [string, VirtualService][] = [];

  constructor(virtualServices: readonly VirtualService[]) {
    const ordered = [...virtualServices].sort((a, b) => compare(a.name, b.name) || compare(a.namespace, b.namespace));
    const wild = new Map<string, VirtualService>();
    for (const vs of ordered) {
      for (const h of vs.hosts) {
        const into = isWildcard(h) ? wild : this.exact;
        if (!into.has(h)) into.set(h, vs);
      }
    }
    // `*` has length 1, so it sorts last; ties cannot cover the same host unless equal
    this.wildcards = [...wild].sort((a, b) => b[0].length - a[0].length || compare(a[0], b[0]));
  }

  /** The VirtualService that routes the service `fqdn`, if any. */
  forHost(fqdn: string): VirtualService | undefined {
    return this.exact.get(fqdn) ?? this.wildcards.find(([w]) => wildcardCovers(w, fqdn))?.[1];
  }

  /**
   * Wildcard hosts that cover none of `services`, with their VirtualService: Istio gives each
   * a virtual host of its own (domain `*.example.com`), for hosts no service answers to.
   */
  unclaimedWildcards(services: Iterable<string>): [string, VirtualService][] {
    const names = [...services];
    return this.wildcards.filter(([w]) => !names.some((s) => wildcardCovers(w, s)));
  }
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
