// Documents that are not Tandem's own kinds. Files written for a Kubernetes cluster mix
// mesh config with the cluster's objects (bookinfo.yaml has Services, Deployments and
// ServiceAccounts next to nothing else): those are skipped, since a Tandem sidecar
// announces its own workload. Kinds that would change how traffic flows if Tandem
// honoured them (Istio's Gateway, EnvoyFilter, ..., the Gateway API, Ingress) are refused,
// saying so, rather than skipped: skipping them would silently ignore a routing decision.

import { isMapping } from './reader';

export interface SkippedDocument {
  file: string;
  doc: number;
  /** items[i] when the object came from a `kind: List` */
  path?: string;
  apiVersion: string;
  kind: string;
  name?: string;
  namespace?: string;
}

export const NOT_SUPPORTED = 'not supported by Tandem';

const VIA_SIDECAR = 'a workload joins the mesh by running a Tandem sidecar, which registers its endpoint; endpoints outside the mesh go in a ServiceEntry';

// Istio kinds Tandem does not implement, and what to do instead.
const ISTIO_KINDS: Record<string, string> = {
  Gateway: 'Tandem has no gateways; mesh routes are VirtualServices without `gateways` (or with `gateways: [mesh]`)',
  EnvoyFilter: "Tandem's sidecar is not Envoy, so there is no Envoy configuration to patch",
  WorkloadEntry: VIA_SIDECAR,
  WorkloadGroup: VIA_SIDECAR,
  RequestAuthentication: 'Tandem does not validate end-user JWTs (so requestPrincipals in an AuthorizationPolicy match no request)',
  ProxyConfig: 'sidecars take their settings from their flags',
  Telemetry: 'metrics, access logs and traces are always on, configured by sidecar flags and OTEL_* variables',
  WasmPlugin: 'the sidecar runs no Wasm extensions',
  IstioOperator: 'this is installation config; Tandem is configured by its command-line flags',
};

// Istio groups that only ever held kinds Tandem does not implement.
const ISTIO_GROUPS: Record<string, string> = {
  'authentication.istio.io': 'authentication.istio.io was removed in Istio 1.6; use a PeerAuthentication',
  'config.istio.io': "Mixer's config.istio.io was removed in Istio 1.8",
  'rbac.istio.io': 'rbac.istio.io was removed in Istio 1.6; use an AuthorizationPolicy',
};

const GATEWAY_API = ['gateway.networking.k8s.io', 'gateway.networking.x-k8s.io'];

// Kubernetes' own API groups (the core group is "").
const KUBERNETES_GROUPS = ['', 'apps', 'batch', 'autoscaling', 'policy', 'extensions'];

/** "networking.istio.io/v1" -> ["networking.istio.io", "v1"]; "v1" -> ["", "v1"]. */
export function splitApiVersion(apiVersion: string): [group: string, version: string] {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 ? ['', apiVersion] : [apiVersion.slice(0, slash), apiVersion.slice(slash + 1)];
}

/** Why a kind that Tandem knows of is refused, or undefined when it is not one of those. */
export function unsupportedKind(group: string, kind: string): string | undefined {
  if (Object.hasOwn(ISTIO_GROUPS, group)) return `${kind} (${group}) is ${NOT_SUPPORTED}: ${ISTIO_GROUPS[group]}`;
  if (group.endsWith('.istio.io') && Object.hasOwn(ISTIO_KINDS, kind)) return `${kind} is ${NOT_SUPPORTED}: ${ISTIO_KINDS[kind]}`;
  if (GATEWAY_API.includes(group)) {
    return `the Kubernetes Gateway API (${kind}) is ${NOT_SUPPORTED}: write mesh routes as VirtualServices`;
  }
  if (kind === 'Ingress' && (group === 'networking.k8s.io' || group === 'extensions')) {
    return `Ingress is ${NOT_SUPPORTED}: Tandem has no gateways`;
  }
  return undefined;
}

/** A Kubernetes built-in object (Service, Deployment, ServiceAccount, ...): not mesh config. */
export const kubernetesKind = (group: string, kind: string): boolean =>
  kind !== '' && (KUBERNETES_GROUPS.includes(group) || group.endsWith('.k8s.io'));

/** `kind: List` (or a typed list such as VirtualServiceList), as `kubectl get -o yaml` prints several objects. */
export const isList = (kind: string): boolean => kind === 'List' || /^[A-Z][A-Za-z0-9]*List$/.test(kind);

/**
 * The items of a list document, or undefined if `value` is not one. Items of a typed list
 * (VirtualServiceList) may leave out their kind and apiVersion, as the API server's
 * responses do; they take the list's.
 */
export function listItems(value: unknown): { items: unknown[] } | { error: string } | undefined {
  if (!isMapping(value) || typeof value.kind !== 'string' || !isList(value.kind)) return undefined;
  const items = value.items ?? [];
  if (!Array.isArray(items)) return { error: 'must be a list' };
  if (value.kind === 'List') return { items };
  const kind = value.kind.slice(0, -'List'.length);
  return { items: items.map((it) => (isMapping(it) ? { apiVersion: value.apiVersion, kind, ...it } : it)) };
}
