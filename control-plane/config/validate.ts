// Parsed YAML documents -> MeshConfig: the document envelope, dispatch by kind, and the
// checks that need every document (duplicates, subset references).

import { emptyMeshConfig, type MeshConfig, type Source } from '../model/types';
import { DNS_LABEL, DNS_SUBDOMAIN, type Ctx } from './common';
import { resolveDelegates } from './delegate';
import { destinationRule } from './destination-rule';
import { DestinationRuleIndex, serviceNamespace } from '../model/destination-rules';
import { ConfigError, FieldError } from './errors';
import { fqdn } from './hosts';
import { isList, kubernetesKind, listItems, NOT_SUPPORTED, splitApiVersion, unsupportedKind, type SkippedDocument } from './kubernetes';
import { attempt, fields, Issues, isMapping, keyPath, nonEmpty, Node, str, strMap, type Read } from './reader';
import { authorizationPolicy, peerAuthentication } from './security';
import { serviceEntry } from './service-entry';
import { sidecar } from './sidecar';
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
  /** told of each Kubernetes object (Service, Deployment, ...) that is not mesh config */
  onSkipped?: (s: SkippedDocument) => void;
}

const NETWORKING = { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] };
const SECURITY = { group: 'security.istio.io', versions: ['v1', 'v1beta1'] };
const KINDS: Record<string, { group: string; versions: string[] }> = {
  VirtualService: NETWORKING,
  DestinationRule: NETWORKING,
  ServiceEntry: NETWORKING,
  Sidecar: NETWORKING,
  PeerAuthentication: SECURITY,
  AuthorizationPolicy: SECURITY,
};

// Past this many problems the rest are noise.
const MAX_ERRORS = 20;

// What `kubectl get -o yaml` adds to metadata; it says nothing about the mesh.
const KUBERNETES_METADATA = [
  'resourceVersion', 'uid', 'generation', 'creationTimestamp', 'managedFields', 'selfLink', 'finalizers',
  'ownerReferences', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generateName',
];

// Istio's switch for an AuthorizationPolicy that only logs what it would decide.
const DRY_RUN_ANNOTATION = 'istio.io/dry-run';

// Kubernetes' own limits: a name is a DNS-1123 subdomain of at most 253 characters, a
// namespace a DNS-1123 label of at most 63.
const dnsName =
  (re: RegExp, what: string, max: number): Read<string> =>
  (n) => {
    const s = nonEmpty(n);
    if (!re.test(s)) n.fail(`must be a ${what} (lower-case letters, digits, "-"), got ${JSON.stringify(s)}`);
    return s.length <= max ? s : n.fail(`must be a ${what} of at most ${max} characters, got ${s.length}`);
  };

/** "VirtualService default/reviews", as far as the raw document tells. */
function label(value: unknown): string | undefined {
  if (!isMapping(value) || typeof value.kind !== 'string') return undefined;
  const meta = isMapping(value.metadata) ? value.metadata : {};
  if (typeof meta.name !== 'string') return value.kind;
  return `${value.kind} ${typeof meta.namespace === 'string' ? meta.namespace : 'default'}/${meta.name}`;
}

/** One resource: a document, or an item of a `kind: List` document (path `items[i]`). */
interface Entry {
  source: Source;
  /** "" for a whole document, else "items[i]" */
  path: string;
  value: unknown;
}

/**
 * ServiceEntry hosts with dots are taken literally everywhere (so `httpbin.org` is not
 * read as service httpbin in namespace org), as long as some ServiceEntry declares them.
 */
function externalHosts(entries: Entry[]): Set<string> {
  const out = new Set<string>();
  for (const { value } of entries) {
    if (!isMapping(value) || value.kind !== 'ServiceEntry' || !isMapping(value.spec)) continue;
    const hosts = value.spec.hosts;
    if (!Array.isArray(hosts)) continue;
    for (const h of hosts) if (typeof h === 'string' && h.includes('.')) out.add(h.toLowerCase());
  }
  return out;
}

/** Adds one resource to `config`, or throws DocumentIssues listing all its problems. */
function addDocument(config: MeshConfig, entry: Entry, resolve: (h: string, ns: string) => string, onSkipped: ValidateOptions['onSkipped']): void {
  const issues = new Issues();
  attempt(new Node(entry.value, entry.path, issues), (root) => addResource(config, root, entry, resolve, onSkipped));
  if (issues.count) throw new DocumentIssues(issues.found);
}

/** Every problem of one document. */
class DocumentIssues extends Error {
  constructor(readonly found: FieldError[]) {
    super(found.map((e) => e.message).join('; '));
  }
}

function addResource(
  config: MeshConfig,
  root: Node,
  entry: Entry,
  resolve: (h: string, ns: string) => string,
  onSkipped: ValidateOptions['onSkipped'],
): void {
  const raw = isMapping(root.value) ? root.value : {};
  // Kinds that are not Tandem's are decided before their fields, which are not ours to check.
  if (typeof raw.kind === 'string' && typeof raw.apiVersion === 'string') {
    const kind = raw.kind;
    const [group] = splitApiVersion(raw.apiVersion);
    if (isList(kind)) return root.at('kind').fail('a List cannot hold another List');
    if (!(Object.hasOwn(KINDS, kind) && KINDS[kind].group === group)) {
      const refusal = unsupportedKind(group, kind);
      if (refusal) return root.at('kind').fail(refusal);
      if (kubernetesKind(group, kind)) {
        const meta = isMapping(raw.metadata) ? raw.metadata : {};
        onSkipped?.({
          ...entry.source,
          path: entry.path || undefined,
          apiVersion: raw.apiVersion,
          kind,
          name: typeof meta.name === 'string' ? meta.name : undefined,
          namespace: typeof meta.namespace === 'string' ? meta.namespace : undefined,
        });
        return;
      }
    }
  }
  // status: what the cluster reports about the object, never an instruction
  const top = fields(root, ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  const kind = top.req('kind', str);
  if (kind === undefined) return;
  const api = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (!api) return root.at('kind').fail(`unknown kind ${JSON.stringify(kind)} (expected one of: ${Object.keys(KINDS).join(', ')})`);
  top.req('apiVersion', (n) => {
    const [group, version] = splitApiVersion(str(n));
    if (group !== api.group || !api.versions.includes(version)) {
      n.fail(`${JSON.stringify(n.value)} is not valid for ${kind} (expected ${api.group}/${api.versions.join(', ')})`);
    }
  });
  const meta = top.req('metadata', (n) => fields(n, ['name', 'namespace', 'annotations', 'labels', ...KUBERNETES_METADATA]));
  if (!meta) return;
  const name = meta.req('name', dnsName(DNS_SUBDOMAIN, 'DNS name', 253));
  const namespace = meta.opt('namespace', dnsName(DNS_LABEL, 'DNS label', 63)) ?? 'default';
  const annotations = meta.opt('annotations', strMap) ?? {};
  meta.opt('labels', strMap);
  if (kind === 'AuthorizationPolicy' && annotations[DRY_RUN_ANNOTATION] === 'true') {
    meta.opt('annotations', (a) =>
      a.at(DRY_RUN_ANNOTATION).fail(`dry-run policies are ${NOT_SUPPORTED}: Tandem would enforce this policy (remove the annotation to enforce it, or the policy to drop it)`),
    );
  }

  const specNode = root.at('spec');
  const spec = new Node(top.has('spec') ? specNode.value : {}, specNode.path, root.issues);
  const ctx: Ctx = { resolveHost: (h) => resolve(h, namespace) };
  const base = { name, namespace, source: entry.source };
  attempt(spec, (sp) => {
    switch (kind) {
      case 'VirtualService':
        return config.virtualServices.push({ ...base, ...virtualService(sp, ctx, annotations) });
      case 'DestinationRule':
        return config.destinationRules.push({ ...base, ...destinationRule(sp, ctx) });
      case 'ServiceEntry':
        return config.serviceEntries.push({ ...base, ...serviceEntry(sp, ctx) });
      case 'PeerAuthentication':
        return config.peerAuthentications.push({ ...base, ...peerAuthentication(sp) });
      case 'AuthorizationPolicy':
        return config.authorizationPolicies.push({ ...base, ...authorizationPolicy(sp) });
      case 'Sidecar':
        return config.sidecars.push({ ...base, ...sidecar(sp) });
    }
  });
}

type Located = { kind: string; name: string; namespace: string; source: Source };

// Resources from a `kind: List` name their item in errors (items[3].spec...).
const itemPaths = new WeakMap<Source, string>();

const errorAt = (r: Located, field: string, detail: string): ConfigError =>
  new ConfigError({
    file: r.source.file,
    doc: r.source.doc,
    label: `${r.kind} ${r.namespace}/${r.name}`,
    field: itemPaths.has(r.source) ? `${itemPaths.get(r.source)}.${field}` : field,
    detail,
  });

function crossChecks(config: MeshConfig, domain: string): ConfigError[] {
  const errors: ConfigError[] = [];
  const seen = new Map<string, Source>();
  const all: Located[] = [
    ...config.virtualServices.map((r) => ({ ...r, kind: 'VirtualService' })),
    ...config.destinationRules.map((r) => ({ ...r, kind: 'DestinationRule' })),
    ...config.serviceEntries.map((r) => ({ ...r, kind: 'ServiceEntry' })),
    ...config.peerAuthentications.map((r) => ({ ...r, kind: 'PeerAuthentication' })),
    ...config.authorizationPolicies.map((r) => ({ ...r, kind: 'AuthorizationPolicy' })),
    ...config.sidecars.map((r) => ({ ...r, kind: 'Sidecar' })),
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
  const errors: ConfigError[] = [];
  const entries: Entry[] = [];
  for (const d of docs) {
    if (d.value === null || d.value === undefined) continue;
    const list = listItems(d.value);
    if (!list) {
      entries.push({ source: { file: d.file, doc: d.doc }, path: '', value: d.value });
      continue;
    }
    if ('error' in list) {
      errors.push(new ConfigError({ file: d.file, doc: d.doc, label: label(d.value), field: 'items', detail: list.error }));
      continue;
    }
    list.items.forEach((value, i) => {
      // Each item is its own resource; a fresh Source keeps its items[i] path apart.
      const itemSource: Source = { file: d.file, doc: d.doc };
      itemPaths.set(itemSource, keyPath('items', i));
      entries.push({ source: itemSource, path: keyPath('items', i), value });
    });
  }
  const external = externalHosts(entries);
  const resolve = (h: string, ns: string): string => (external.has(h) ? h : fqdn(h, ns, opts.domain));
  const config = emptyMeshConfig();
  for (const e of entries) {
    if (errors.length >= MAX_ERRORS) break;
    const at = (field: string | undefined, detail: string): ConfigError =>
      new ConfigError({ file: e.source.file, doc: e.source.doc, label: label(e.value), field, detail });
    try {
      addDocument(config, e, resolve, opts.onSkipped);
    } catch (err) {
      if (!(err instanceof DocumentIssues)) throw err;
      errors.push(...err.found.map((f) => at(f.field, f.message)));
    }
  }
  // References into documents that failed would only add misleading errors.
  if (errors.length === 0) errors.push(...crossChecks(config, opts.domain ?? 'cluster.local'));
  // after the checks, which then name the field where each route was written
  if (errors.length === 0) errors.push(...resolveDelegates(config));
  if (errors.length) throw ConfigError.aggregate(errors.slice(0, MAX_ERRORS));
  return config;
}
