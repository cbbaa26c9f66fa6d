// The YAML that Istio itself publishes (bookinfo and other samples, the istio/api
// reference examples, the istio.io tasks), loaded through the control plane's own loader,
// file by file and as the task pages apply them. e2e/istio-corpus/manifest.json says what
// each file must do; KNOWN_GAPS lists what does not do it yet. No processes.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../control-plane/config/errors';
import { loadConfig, type LoadResult } from '../control-plane/config/load';
import { SnapshotCache } from '../control-plane/xds/cache';

const CORPUS = path.join(__dirname, 'istio-corpus');
const NOT_SUPPORTED = 'not supported by Tandem';

type Scope = 'in' | 'out' | 'kubernetes' | 'invalid';

interface FileEntry {
  scope: Scope;
  /** applied first, in order (in scope only) */
  with?: string[];
  why?: string;
  /** invalid: what the refusal must say (a regular expression) */
  expect?: string;
}

interface Manifest {
  files: Record<string, FileEntry>;
  groups: { name: string; files: string[] }[];
}

/**
 * What does not behave as the manifest says yet, keyed by file or group name, with a piece
 * of the error it gives today. This is the work queue: when a gap closes, its test fails
 * and says to remove the entry; when it fails differently, the test says that too.
 */
const KNOWN_GAPS: Record<string, string> = {
  // ServiceEntry resolution DNS / NONE, DNS endpoints
  // ServiceEntry addresses, targetPort, protocols
  // DestinationRule portLevelSettings, workloadSelector, tcpKeepalive, wildcard host
  // Out of scope, refused, but not (only) with "not supported by Tandem"
};

const manifest = JSON.parse(fs.readFileSync(path.join(CORPUS, 'manifest.json'), 'utf8')) as Manifest;

type Outcome = { result: LoadResult; error?: undefined } | { result?: undefined; error: ConfigError };

const tmpDirs: string[] = [];

/** Documents identified as kubectl identifies them, so a later apply can replace an earlier one. */
function resourceKey(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  if (typeof v.kind !== 'string' || typeof v.metadata?.name !== 'string') return undefined;
  return `${v.kind}/${typeof v.metadata.namespace === 'string' ? v.metadata.namespace : 'default'}/${v.metadata.name}`;
}

/**
 * A directory holding `files` as `kubectl apply -f` of each in turn would leave them: a
 * resource applied again replaces the earlier one. Files nothing replaced are copied as
 * they are, so errors quote their real text.
 */
function stage(files: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-corpus-'));
  tmpDirs.push(dir);
  const parsed = files.map((f) => parseAllDocuments(fs.readFileSync(path.join(CORPUS, f), 'utf8')));
  const last = new Map<string, string>();
  parsed.forEach((docs, i) =>
    docs.forEach((d, j) => {
      const key = resourceKey(d.toJS());
      if (key) last.set(key, `${i}/${j}`);
    }),
  );
  parsed.forEach((docs, i) => {
    const name = path.join(dir, `${String(i).padStart(2, '0')}-${path.basename(files[i])}`);
    const kept = docs.filter((d, j) => {
      const key = resourceKey(d.toJS());
      return !key || last.get(key) === `${i}/${j}`;
    });
    if (kept.length === docs.length) fs.copyFileSync(path.join(CORPUS, files[i]), name);
    else fs.writeFileSync(name, kept.map((d) => d.toString()).join('---\n'));
  });
  return dir;
}

/**
 * The control plane's whole load: validation, then translation for every kind of caller
 * and the check that the sidecar's decoders take every resource (xds/sidecar-check.ts).
 */
function load(files: string[]): Outcome {
  const target = files.length === 1 ? path.join(CORPUS, files[0]) : stage(files);
  let result: LoadResult;
  try {
    result = loadConfig(target);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return { error: e };
  }
  try {
    new SnapshotCache({ domain: 'cluster.local', trustDomain: 'cluster.local' }).setConfig(result.config);
  } catch (e) {
    return { error: new ConfigError({ file: target, detail: `cannot translate config: ${(e as Error).message}` }) };
  }
  return { result };
}

const documents = (file: string): number =>
  parseAllDocuments(fs.readFileSync(path.join(CORPUS, file), 'utf8')).filter((d) => d.toJS() !== null).length;

const meshResources = (r: LoadResult): number => Object.values(r.config).reduce((n, list: unknown[]) => n + list.length, 0);

/** Why the outcome is not what the scope asks for; undefined when it is. */
function shortfall(file: string | undefined, scope: Scope, o: Outcome, expectRe?: string): string | undefined {
  const refused = o.error ? `refused: ${o.error.message}` : undefined;
  switch (scope) {
    case 'in':
      return refused;
    case 'kubernetes': {
      if (o.error) return refused;
      const { result } = o;
      if (meshResources(result) !== 0 || (file && result.skipped.length !== documents(file))) {
        return `expected every object skipped, got ${meshResources(result)} mesh resources and ${result.skipped.length} skipped`;
      }
      return undefined;
    }
    case 'out': {
      if (!o.error) return 'loaded, but it is out of scope and must be refused';
      const unsaid = o.error.errors.filter((e) => !e.message.includes(NOT_SUPPORTED));
      return unsaid.length ? `refused without saying "${NOT_SUPPORTED}": ${unsaid.map((e) => e.message).join('\n')}` : undefined;
    }
    case 'invalid':
      if (!o.error) return 'loaded, but Istio itself would refuse it';
      return new RegExp(expectRe ?? '^$').test(o.error.message) ? undefined : refused;
  }
}

const tally = { in: 0, out: 0, kubernetes: 0, invalid: 0, gaps: 0, groups: 0, groupGaps: 0 };

/** Checks an outcome against its scope, or, for a known gap, that the gap is still there. */
function judge(key: string, problem: string | undefined): boolean {
  // CORPUS_REPORT=FILE: what each file and group does, one JSON line each (to maintain KNOWN_GAPS)
  if (process.env.CORPUS_REPORT) fs.appendFileSync(process.env.CORPUS_REPORT, `${JSON.stringify({ key, problem: problem ?? null })}\n`);
  const gap = Object.hasOwn(KNOWN_GAPS, key) ? KNOWN_GAPS[key] : undefined;
  if (gap === undefined) {
    expect(problem, key).toBeUndefined();
    return true;
  }
  expect(problem, `${key} now does what the manifest says: remove it from KNOWN_GAPS`).toBeDefined();
  expect(problem, `${key} fails differently now: update KNOWN_GAPS`).toContain(gap);
  return false;
}

afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  const files = Object.keys(manifest.files).length;
  console.log(
    `istio corpus: ${files} files, ${tally.in} in scope loaded, ${tally.out} refused as out of scope, ` +
      `${tally.kubernetes} Kubernetes-only skipped, ${tally.invalid} invalid as written refused, ${tally.gaps} known gaps; ` +
      `${tally.groups} of ${manifest.groups.length} groups loaded (${tally.groupGaps} known gaps)`,
  );
});

describe('the Istio corpus', () => {
  it('has a manifest entry for every file, and every file the manifest names exists', () => {
    const onDisk = (dir: string): string[] =>
      fs.readdirSync(path.join(CORPUS, dir), { withFileTypes: true }).flatMap((e) => {
        const rel = path.posix.join(dir, e.name);
        return e.isDirectory() ? onDisk(rel) : rel.endsWith('.yaml') && !rel.startsWith('context/') ? [rel] : [];
      });
    expect(onDisk('').sort()).toEqual(Object.keys(manifest.files).sort());
    const named = [
      ...Object.values(manifest.files).flatMap((f) => f.with ?? []),
      ...manifest.groups.flatMap((g) => g.files),
    ];
    for (const f of named) expect(fs.existsSync(path.join(CORPUS, f)), f).toBe(true);
    for (const key of Object.keys(KNOWN_GAPS)) {
      expect(Object.hasOwn(manifest.files, key) || manifest.groups.some((g) => g.name === key), `KNOWN_GAPS names ${key}`).toBe(true);
    }
  });

  it('names its source on the first line of every Istio file', () => {
    for (const f of Object.keys(manifest.files)) {
      expect(fs.readFileSync(path.join(CORPUS, f), 'utf8').split('\n')[0], f).toMatch(/^# source: istio\/(istio|api|istio\.io)@[0-9a-f]{40}:\S+/);
    }
  });

  describe.each(Object.entries(manifest.files))('%s', (file, entry) => {
    it(`${entry.scope === 'in' ? 'loads' : entry.scope === 'kubernetes' ? 'loads with every object skipped' : 'is refused'}${entry.why ? ` (${entry.why})` : ''}`, () => {
      const outcome = load([...(entry.with ?? []), file]);
      if (judge(file, shortfall(entry.with ? undefined : file, entry.scope, outcome, entry.expect))) tally[entry.scope]++;
      else tally.gaps++;
    });
  });

  describe.each(manifest.groups.map((g) => [g.name, g.files] as const))('group: %s', (name, files) => {
    it('loads, each file applied in turn', () => {
      if (judge(name, shortfall(undefined, 'in', load([...files])))) tally.groups++;
      else tally.groupGaps++;
    });
  });
});
