// Label maps that pick workloads: a Sidecar's and a DestinationRule's workloadSelector, a
// VirtualService match's sourceLabels. Keys and values are Kubernetes labels, as Istio
// checks them (pkg/config/labels), so a selector that could never match a pod is refused.

import { mapOf, str, type Node, type Read } from './reader';

const NAME = '([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)';
const PREFIX = '([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)';
const KEY = new RegExp(`^(${PREFIX}/)?${NAME}$`);
const VALUE = new RegExp(`^${NAME}?$`);

const labelKey = (k: string, n: Node): string => {
  if (k.includes('*')) n.fail('wildcards are not supported in a selector');
  const slash = k.indexOf('/');
  const name = slash < 0 ? k : k.slice(slash + 1);
  if (!KEY.test(k) || name.length > 63 || slash > 253) n.fail(`invalid label name ${JSON.stringify(k)}`);
  return k;
};

const labelValue: Read<string> = (n) => {
  const v = str(n);
  if (v.includes('*')) n.fail('wildcards are not supported in a selector');
  if (!VALUE.test(v) || v.length > 63) n.fail(`invalid label value ${JSON.stringify(v)}`);
  return v;
};

/** A label map; undefined when empty (Istio: an empty selector selects everything). */
export const labelSelector: Read<Record<string, string> | undefined> = (n) => {
  const labels = mapOf(labelValue, labelKey)(n);
  return Object.keys(labels).length ? labels : undefined;
};
