// Typed readers over parsed YAML. Every value carries its field path, so any failure
// names exactly where it happened (spec.http[0].route[1].weight). A document read with
// an Issues collector reports every bad field, not only the first (see attempt).

import { parseDuration } from '../../common/duration';
import { FieldError } from './errors';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function keyPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (IDENT.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

export type Mapping = Record<string, unknown>;

export const isMapping = (v: unknown): v is Mapping =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The problems found in one document so far. */
export class Issues {
  readonly found: FieldError[] = [];

  get count(): number {
    return this.found.length;
  }
}

export class Node {
  constructor(
    readonly value: unknown,
    readonly path: string,
    /** where problems go instead of stopping the read; without it the first one throws */
    readonly issues?: Issues,
  ) {}

  at(key: string | number): Node {
    const v = this.value as Record<string | number, unknown>;
    const own = isMapping(v) || Array.isArray(v) ? Object.hasOwn(v, key) : false;
    return new Node(own ? v[key] : undefined, keyPath(this.path, key), this.issues);
  }

  fail(message: string): never {
    throw new FieldError(this.path || undefined, message);
  }
}

export type Read<T> = (n: Node) => T;

/**
 * Reads `n`, recording a failure in its document's Issues and carrying on with the
 * fields next to it. A part in which something was recorded reads as undefined (whatever
 * T says: the document is refused, so no model is built from it), and anything its reader
 * then throws is a consequence of what was recorded, not a problem of its own. (So a
 * reader that needs a failed part's value stops there, and fields it would have read
 * after it go unchecked until the first problem is fixed.)
 */
export function attempt<T>(n: Node, read: Read<T>): T {
  const issues = n.issues;
  if (!issues) return read(n);
  const before = issues.count;
  let value: T;
  try {
    value = read(n);
  } catch (e) {
    if (issues.count > before) return undefined as T;
    if (!(e instanceof FieldError)) throw e;
    issues.found.push(e);
    return undefined as T;
  }
  return issues.count > before ? (undefined as T) : value;
}

const describe = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'a list' : isMapping(v) ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`;

/** A mapping whose keys must all be in `allowed`. Null values count as absent. */
export class Fields {
  constructor(
    readonly node: Node,
    allowed: readonly string[],
  ) {
    if (!isMapping(node.value)) node.fail(`must be a mapping, got ${describe(node.value)}`);
    for (const k of Object.keys(node.value)) {
      if (!allowed.includes(k)) attempt(node.at(k), (u) => u.fail(`unknown field (expected one of: ${allowed.join(', ')})`));
    }
  }

  has(key: string): boolean {
    const v = this.node.at(key).value;
    return v !== undefined && v !== null;
  }

  opt<T>(key: string, read: Read<T>): T | undefined {
    return this.has(key) ? attempt(this.node.at(key), read) : undefined;
  }

  req<T>(key: string, read: Read<T>): T {
    return attempt(this.node.at(key), (n) => (this.has(key) ? read(n) : n.fail('is required')));
  }
}

export const fields = (n: Node, allowed: readonly string[]): Fields => new Fields(n, allowed);

export const str: Read<string> = (n) =>
  typeof n.value === 'string' ? n.value : n.fail(`must be a string, got ${describe(n.value)}`);

export const nonEmpty: Read<string> = (n) => str(n) || n.fail('must not be empty');

export const bool: Read<boolean> = (n) =>
  typeof n.value === 'boolean' ? n.value : n.fail(`must be true or false, got ${describe(n.value)}`);

const range = (min: number, max: number): string =>
  max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`;

export const int =
  (min = 0, max = Number.MAX_SAFE_INTEGER): Read<number> =>
  (n) => {
    const v = n.value;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return n.fail(`must be an integer ${range(min, max)}, got ${describe(v)}`);
    }
    return v;
  };

export const num =
  (min: number, max: number): Read<number> =>
  (n) => {
    const v = n.value;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      return n.fail(`must be a number ${range(min, max)}, got ${describe(v)}`);
    }
    return v;
  };

export const oneOf =
  <T extends string>(...values: T[]): Read<T> =>
  (n) => {
    const v = str(n);
    return (values as string[]).includes(v) ? (v as T) : n.fail(`must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  };

export const list =
  <T>(item: Read<T>, opts: { nonEmpty?: boolean } = {}): Read<T[]> =>
  (n) => {
    if (!Array.isArray(n.value)) return n.fail(`must be a list, got ${describe(n.value)}`);
    if (opts.nonEmpty && n.value.length === 0) n.fail('must not be empty');
    return n.value.map((_, i) => attempt(n.at(i), item));
  };

/** A mapping of string to T; keys go through `key` (which may normalise or reject them). */
export const mapOf =
  <T>(value: Read<T>, key: (k: string, n: Node) => string = (k) => k): Read<Record<string, T>> =>
  (n) => {
    if (!isMapping(n.value)) return n.fail(`must be a mapping, got ${describe(n.value)}`);
    const out: [string, T][] = [];
    const seen = new Set<string>();
    for (const k of Object.keys(n.value)) {
      attempt(n.at(k), (child) => {
        const name = key(k, child);
        if (seen.has(name)) child.fail(`duplicate key ${JSON.stringify(name)}`);
        seen.add(name);
        out.push([name, value(child)]);
      });
    }
    // fromEntries defines own properties, so a "__proto__" key stays plain data.
    return Object.fromEntries(out);
  };

export const strMap: Read<Record<string, string>> = mapOf(str);

export const duration =
  (opts: { positive?: boolean } = {}): Read<number> =>
  (n) => {
    if (typeof n.value !== 'string') return n.fail(`must be a duration such as "10s", got ${describe(n.value)}`);
    let ms: number;
    try {
      ms = parseDuration(n.value);
    } catch (e) {
      return n.fail((e as Error).message);
    }
    if (opts.positive && ms <= 0) n.fail('must be a positive duration');
    return ms;
  };

/** Drops undefined properties so model objects compare and print cleanly. */
export function defined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
