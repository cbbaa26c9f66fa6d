// Host name normalisation, so short and fully qualified names compare equal.

/**
 * Expands a service host the way the mesh names it:
 *   reviews (ns default) -> reviews.default.svc.cluster.local
 *   reviews.prod         -> reviews.prod.svc.cluster.local
 *   reviews.prod.svc     -> reviews.prod.svc.cluster.local
 * `*`, names already under .svc.<domain> and other names of 3+ labels are kept.
 */
export function fqdn(host: string, namespace: string, domain = 'cluster.local'): string {
  const h = host.toLowerCase();
  const d = domain.toLowerCase();
  if (h === '*' || h.endsWith(`.svc.${d}`)) return h;
  const labels = h.split('.');
  if (labels.length === 1) return `${h}.${namespace.toLowerCase()}.svc.${d}`;
  if (labels.length === 2) return `${h}.svc.${d}`;
  if (labels.length === 3 && labels[2] === 'svc') return `${h}.${d}`;
  return h;
}
