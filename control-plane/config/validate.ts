// Parsed YAML documents -> MeshConfig: the document envelope, dispatch by kind, and the
// checks that need every document (duplicates, subset references).

import { emptyMeshConfig, type MeshConfig, type Source } from '../model/types';
import { DNS_LABEL, DNS_SUBDOMAIN, type Ctx } from './common';
import { destinationRule } from './destination-rule';
import { DestinationRuleIndex, serviceNamespace } from '../model/destination-rules';
import { ConfigError, FieldError } from './errors';
import { fqdn } from './hosts';
import { fields, isMapping, nonEmpty, Node, str, strMap, type Read } from './reader';
import { authorizationPolicy, peerAuthentication } from './security';
import { serviceEntry } from './service-entry';
import { virtualService } from './virtual-service';

/** One YAML document, already converted to plain JS. */
export interface RawDocument {
  file: string;
  doc: number;
  value: unknown;
}

export interface ValidateOptions {
  /** DNS domain for short host names; default cluster.local */
  domain?: string;
}

const NETWORKING = { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] };
const SECURITY = { group: 'security.istio.io', versions: ['v1', 'v1beta1'] };
const KINDS: Record<string, { group: string; versions: string[] }> = {
  VirtualService: NETWORKING,
  DestinationRule: NETWORKING,
  ServiceEntry: NETWORKING,
  PeerAuthentication: SECURITY,
  AuthorizationPolicy: SECURITY,
};

// Past this many problems the rest are noise.
const MAX_ERRORS = 20;

const dnsName =
  (re: RegExp, what: string): Read<string> =>
  (n) => {
    const s = nonEmpty(n);
    return re.test(s) && s.length <= 253 ? s : n.fail(`must be a ${what} (lower-case letters, digits, "-"), got ${JSON.stringify(s)}`);
  };

/** "VirtualService default/reviews", as far as the raw document tells. */
function label(value: unknown): string | undefined {
  if (!isMapping(value) || typeof value.kind !== 'string') return undefined;
  const meta = isMapping(value.metadata) ? value.metadata : {};
  if (typeof meta.name !== 'string') return value.kind;
  return `${value.kind} ${typeof meta.namespace === 'string' ? meta.namespace : 'default'}/${meta.name}`;
}

/**
 * ServiceEntry hosts with dots are taken literally everywhere (so `httpbin.org` is not
 * read as service httpbin in namespace org), as long as some ServiceEntry declares them.
 */
function externalHosts(docs: RawDocument[]): Set<string> {
  const out = new Set<string>();
  for (const { value } of docs) {
    if (!isMapping(value) || value.kind !== 'ServiceEntry' || !isMapping(value.spec)) continue;
    const hosts = value.spec.hosts;
    if (!Array.isArray(hosts)) continue;
    for (const h of hosts) if (typeof h === 'string' && h.includes('.')) out.add(h.toLowerCase());
  }
  return out;
}

function addDocument(config: MeshConfig, value: unknown, source: Source, resolve: (h: string, ns: string) => string): void {
  const top = fields(new Node(value, ''), ['apiVersion', 'kind', 'metadata', 'spec']);
  const kind = top.req('kind', str);
  const api = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (!api) return top.node.at('kind').fail(`unknown kind ${JSON.stringify(kind)} (expected one of: ${Object.keys(KINDS).join(', ')})`);
  top.req('apiVersion', (n) => {
    const [group, version, ...rest] = str(n).split('/');
    if (group !== api.group || !api.versions.includes(version) || rest.length) {
      n.fail(`${JSON.stringify(n.value)} is not valid for ${kind} (expected ${api.group}/${api.versions.join(', ')})`);
    }
  });
  const meta = top.req('metadata', (n) => fields(n, ['name', 'namespace', 'annotations', 'labels']));
  const name = meta.req('name', dnsName(DNS_SUBDOMAIN, 'DNS name'));
  const namespace = meta.opt('namespace', dnsName(DNS_LABEL, 'DNS label')) ?? 'default';
  const annotations = meta.opt('annotations', strMap) ?? {};
  meta.opt('labels', strMap);

  const spec = new Node(top.has('spec') ? top.node.at('spec').value : {}, 'spec');
  const ctx: Ctx = { resolveHost: (h) => resolve(h, namespace) };
  const base = { name, namespace };
  switch (kind) {
    case 'VirtualService':
      config.virtualServices.push({ ...base, ...virtualService(spec, ctx, annotations), source });
      break;
    case 'DestinationRule':
      config.destinationRules.push({ ...base, ...destinationRule(spec, ctx), source });
      break;
    case 'ServiceEntry':
      config.serviceEntries.push({ ...base, ...serviceEntry(spec, ctx), source });
      break;
    case 'PeerAuthentication':
      config.peerAuthentications.push({ ...base, ...peerAuthentication(spec), source });
      break;
    case 'AuthorizationPolicy':
      config.authorizationPolicies.push({ ...base, ...authorizationPolicy(spec), source });
      break;
  }
}

type Located = { kind: string; name: string; namespace: string; source: Source };

const errorAt = (r: Located, field: string, detail: string): ConfigError =>
  new ConfigError({ file: r.source.file, doc: r.source.doc, label: `${r.kind} ${r.namespace}/${r.name}`, field, detail });

function crossChecks(config: MeshConfig, domain: string): ConfigError[] {
  const errors: ConfigError[] = [];
  const seen = new Map<string, Source>();
  const all: Located[] = [
    ...config.virtualServices.map((r) => ({ ...r, kind: 'VirtualService' })),
    ...config.destinationRules.map((r) => ({ ...r, kind: 'DestinationRule' })),
    ...config.serviceEntries.map((r) => ({ ...r, kind: 'ServiceEntry' })),
    ...config.peerAuthentications.map((r) => ({ ...r, kind: 'PeerAuthentication' })),
    ...config.authorizationPolicies.map((r) => ({ ...r, kind: 'AuthorizationPolicy' })),
  ];
  // Report in file order, so the second occurrence is the one blamed.
  all.sort((a, b) => (a.source.file === b.source.file ? a.source.doc - b.source.doc : a.source.file < b.source.file ? -1 : 1));
  for (const r of all) {
    const key = `${r.kind}/${r.namespace}/${r.name}`;
    const first = seen.get(key);
    if (first) errors.push(errorAt(r, 'metadata.name', `duplicate ${r.kind} ${r.namespace}/${r.name} (first defined in ${first.file} document ${first.doc})`));
    else seen.set(key, r.source);
  }

  // a subset exists where the rule that applies to the host (merged, most specific) has it
  const rules = new DestinationRuleIndex(config.destinationRules);
  const checkSubset = (vs: Located, d: { host: string; subset?: string }, field: string): void => {
    if (d.subset === undefined) return;
    const applies = rules.forHost(d.host, serviceNamespace(d.host, config, domain));
    if (applies?.subsets.some((s) => s.name === d.subset)) return;
    const elsewhere = rules.allFor(d.host).find((r) => r.subsets.some((s) => s.name === d.subset));
    const name = JSON.stringify(d.subset);
    const detail = elsewhere && applies
      ? `subset ${name} is not defined by the DestinationRule that applies to host ${d.host} (${applies.from[0].namespace}/${applies.from[0].name}, host ${applies.host}); ${elsewhere.namespace}/${elsewhere.name} (host ${elsewhere.host}) defines it but is less specific`
      : `subset ${name} is not defined by any DestinationRule for host ${d.host}`;
    errors.push(errorAt(vs, field, detail));
  };
  for (const vs of config.virtualServices) {
    const loc = { ...vs, kind: 'VirtualService' };
    vs.http.forEach((route, i) => {
      route.route.forEach((r, j) => checkSubset(loc, r.destination, `spec.http[${i}].route[${j}].destination.subset`));
      for (const m of route.mirrors) checkSubset(loc, m.destination, `spec.http[${i}].${m.field}.subset`);
    });
  }
  return errors;
}

/**
 * Validates every document (null ones, e.g. after a trailing `---`, are skipped) and
 * returns the model, or throws one ConfigError covering every problem found.
 */
export function validateDocuments(docs: RawDocument[], opts: ValidateOptions = {}): MeshConfig {
  const external = externalHosts(docs);
  const resolve = (h: string, ns: string): string => (external.has(h) ? h : fqdn(h, ns, opts.domain));
  const config = emptyMeshConfig();
  const errors: ConfigError[] = [];
  for (const d of docs) {
    if (d.value === null || d.value === undefined) continue;
    try {
      addDocument(config, d.value, { file: d.file, doc: d.doc }, resolve);
    } catch (e) {
      if (!(e instanceof FieldError)) throw e;
      errors.push(new ConfigError({ file: d.file, doc: d.doc, label: label(d.value), field: e.field, detail: e.message }));
      if (errors.length >= MAX_ERRORS) break;
    }
  }
  // References into documents that failed would only add misleading errors.
  if (errors.length === 0) errors.push(...crossChecks(config, opts.domain ?? 'cluster.local'));
  if (errors.length) throw ConfigError.aggregate(errors.slice(0, MAX_ERRORS));
  return config;
}
