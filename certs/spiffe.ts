// SPIFFE IDs of mesh workloads: spiffe://<trust domain>/ns/<namespace>/sa/<service account>,
// the one form Istio uses. Anything else is refused rather than normalised, because the
// ID is compared byte for byte wherever it authorises something.

export interface SpiffeId {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

export class SpiffeError extends Error {
  readonly code = 'BAD_SPIFFE_ID';
  override readonly name = 'SpiffeError';
}

const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export const isTrustDomain = (s: string): boolean => s.length <= 255 && TRUST_DOMAIN.test(s);
/** Kubernetes namespace names are DNS labels. */
export const isNamespace = (s: string): boolean => s.length <= 63 && DNS_LABEL.test(s);
/** Kubernetes service account names are DNS subdomains. */
export const isServiceAccount = (s: string): boolean => s.length <= 253 && DNS_SUBDOMAIN.test(s);
/** Service names bound by tokens and certificates: the same alphabet as service accounts. */
export const isServiceName = isServiceAccount;

export function spiffeUri(id: SpiffeId): string {
  check(id, JSON.stringify(id));
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

export function parseSpiffeUri(uri: string): SpiffeId {
  const shown = JSON.stringify(String(uri).slice(0, 300));
  if (typeof uri !== 'string' || !uri.startsWith('spiffe://')) {
    throw new SpiffeError(`${shown} is not a SPIFFE ID (spiffe://<trust domain>/ns/<namespace>/sa/<account>)`);
  }
  const parts = uri.slice('spiffe://'.length).split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') {
    throw new SpiffeError(`${shown} is not of the form spiffe://<trust domain>/ns/<namespace>/sa/<account>`);
  }
  const id = { trustDomain: parts[0], namespace: parts[2], serviceAccount: parts[4] };
  check(id, shown);
  return id;
}

function check(id: SpiffeId, shown: string): void {
  if (!isTrustDomain(id.trustDomain)) throw new SpiffeError(`${shown}: bad trust domain (lower-case letters, digits, '.', '-')`);
  if (!isNamespace(id.namespace)) throw new SpiffeError(`${shown}: bad namespace (a DNS label)`);
  if (!isServiceAccount(id.serviceAccount)) throw new SpiffeError(`${shown}: bad service account (lower-case letters, digits, '.', '-')`);
}
