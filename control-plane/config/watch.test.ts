import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConfigError } from './errors';
import type { LoadResult } from './load';
import { ConfigWatcher, changeTime, type WatchOptions } from './watch';

const vs = (name: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}}
spec: {hosts: [${name}]}
`;

async function until(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let dir: string;
let watcher: ConfigWatcher | undefined;
let configs: LoadResult[];
let errors: ConfigError[];
const names = (): string[] => configs[configs.length - 1].config.virtualServices.map((v) => v.name);

function watch(p: string, opts: WatchOptions = {}): ConfigWatcher {
  watcher = new ConfigWatcher(p, { onConfig: (r) => configs.push(r), onError: (e) => errors.push(e) }, opts);
  watcher.start();
  return watcher;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-watch-'));
  configs = [];
  errors = [];
});
afterEach(() => {
  watcher?.stop();
  watcher = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('ConfigWatcher', () => {
  it('loads synchronously on start, then picks up an in-place edit', async () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, vs('a'));
    watch(file);
    expect(configs).toHaveLength(1);
    expect(names()).toEqual(['a']);
    fs.writeFileSync(file, vs('b'));
    await until(() => configs.length === 2, 'the edit');
    expect(names()).toEqual(['b']);
    expect(errors).toEqual([]);
  });

  it('picks up a file replaced by rename, as editors save', async () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, vs('a'));
    watch(file);
    const tmp = path.join(dir, '.mesh.yaml.tmp');
    fs.writeFileSync(tmp, vs('c'));
    fs.renameSync(tmp, file);
    await until(() => configs.length === 2, 'the replacement');
    expect(names()).toEqual(['c']);
  });

  it('reports a bad edit once through onError, without onConfig, then recovers', async () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, vs('a'));
    watch(file);
    fs.writeFileSync(file, vs('a').replace('[a]}', '[a], bogus: 1}'));
    await until(() => errors.length === 1, 'the error');
    expect(errors[0].file).toBe(file);
    expect(errors[0].field).toBe('spec.bogus');
    expect(configs).toHaveLength(1);
    // Several poll rounds with the same bad content: still one report.
    const polls = Date.now() + 600;
    await until(() => Date.now() > polls, 'a few polls');
    expect(errors).toHaveLength(1);
    fs.writeFileSync(file, vs('d'));
    await until(() => configs.length === 2, 'the fix');
    expect(names()).toEqual(['d']);
  });

  it('starts empty when the file is missing and loads it when it appears', async () => {
    const file = path.join(dir, 'later.yaml');
    watch(file);
    expect(configs).toHaveLength(1);
    expect(configs[0].files).toEqual([]);
    fs.writeFileSync(file, vs('e'));
    await until(() => configs.length === 2, 'the new file');
    expect(names()).toEqual(['e']);
  });

  it('notices files created and deleted in a watched directory', async () => {
    fs.writeFileSync(path.join(dir, 'a.yaml'), vs('a'));
    watch(dir);
    fs.writeFileSync(path.join(dir, 'b.yaml'), vs('b'));
    await until(() => configs.length === 2, 'the created file');
    expect(names()).toEqual(['a', 'b']);
    fs.unlinkSync(path.join(dir, 'a.yaml'));
    await until(() => configs.length === 3, 'the deletion');
    expect(names()).toEqual(['b']);
  });

  it('does not report a file briefly missing while an editor saves it', async () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, vs('a'));
    watch(file);
    fs.renameSync(file, `${file}~`);
    await new Promise((r) => setTimeout(r, 40)); // past the debounce, inside the settle time
    fs.writeFileSync(file, vs('f'));
    await until(() => configs.length >= 2, 'the rewritten file');
    expect(configs.map((c) => c.files.length)).toEqual([1, 1]);
    expect(names()).toEqual(['f']);
  });

  it('leaves nothing running after stop', async () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, vs('a'));
    watch(file).stop();
    fs.writeFileSync(file, vs('b'));
    const later = Date.now() + 400;
    await until(() => Date.now() > later, 'a poll interval');
    expect(configs).toHaveLength(1);
  });
});

describe('ConfigWatcher reads a file only when its stamp (inode, size, times) says it changed', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let reads: string[];
  const readFile = (f: string): Buffer => {
    reads.push(path.basename(f));
    return fs.readFileSync(f);
  };
  beforeEach(() => {
    reads = [];
  });
  // the watcher's clock a minute ahead: files written now are long settled by it
  const later = () => Date.now() + 60_000;

  it('does not re-read an unchanged file at each poll, and reads it again once touched', async () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, vs('a'));
    watch(file, { pollMs: 10, readFile, now: later });
    expect(reads).toEqual(['mesh.yaml']);
    await sleep(150);
    expect(reads).toEqual(['mesh.yaml']);
    // touched, the same content: read once to find so, and no reload
    fs.utimesSync(file, new Date(Date.now() - 30_000), new Date(Date.now() - 30_000));
    await until(() => reads.length === 2, 'the read after the touch');
    await sleep(150);
    expect(reads).toHaveLength(2);
    expect(configs).toHaveLength(1);
    // and an edit is still seen
    fs.writeFileSync(file, vs('b'));
    await until(() => configs.length === 2, 'the edit');
    expect(names()).toEqual(['b']);
  });

  it('keeps reading a file whose times are too recent to tell a second same-size write apart, until they are not', async () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, vs('a'));
    let clock = Date.now();
    watch(file, { pollMs: 10, readFile, now: () => clock });
    await until(() => reads.length >= 3, 'reads while the file is fresh');
    // later, by the watcher's clock: one more read stamps it old enough, then none
    clock += 60_000;
    await sleep(50);
    const settled = reads.length;
    await sleep(150);
    expect(reads.length).toBe(settled);
    expect(configs).toHaveLength(1);
  });

  it('refuses a file over the size limit naming it, without reading it', async () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, vs('a'));
    watch(file, { pollMs: 10, readFile, now: later, limits: { fileBytes: 1000, totalBytes: 4000, documentsPerFile: 10 } });
    expect(configs).toHaveLength(1);
    reads = [];
    fs.writeFileSync(file, `${vs('b')}# ${'x'.repeat(2000)}\n`);
    await until(() => errors.length === 1, 'the refusal');
    expect(errors[0].file).toBe(file);
    expect(errors[0].message).toMatch(/mesh\.yaml: is 2,\d{3} bytes, over the limit of .* for one config file/);
    await sleep(100);
    expect(reads).toEqual([]);
    expect(errors).toHaveLength(1);
    expect(names()).toEqual(['a']);
  });
});

describe('changeTime: when a config change was made, for push convergence', () => {
  it('is the newest mtime of the files and their directory, within the last unchanged check and now', () => {
    const a = path.join(dir, 'a.yaml');
    const b = path.join(dir, 'b.yaml');
    fs.writeFileSync(a, vs('a'));
    fs.writeFileSync(b, vs('b'));
    const now = Date.now();
    fs.utimesSync(dir, new Date(now - 60_000), new Date(now - 60_000));
    fs.utimesSync(a, new Date(now - 50_000), new Date(now - 50_000));
    fs.utimesSync(b, new Date(now - 3_000), new Date(now - 3_000));
    expect(changeTime(dir, [a, b], now - 10_000, now)).toBeCloseTo(now - 3_000, -1);
    // a file copied in keeps its old mtime: the change was after the last check that saw the old content
    expect(changeTime(dir, [a], now - 10_000, now)).toBe(now - 10_000);
    // a clock ahead on the file's side is not a change in the future
    fs.utimesSync(b, new Date(now + 5_000), new Date(now + 5_000));
    expect(changeTime(dir, [a, b], now - 10_000, now)).toBe(now);
  });

  it('is delivered with each reload after the first', async () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, vs('a'));
    watch(file);
    await until(() => configs.length === 1, 'the first load');
    const before = Date.now();
    fs.writeFileSync(file, vs('b'));
    await until(() => configs.length === 2, 'the reload');
    expect(configs[1].changedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(configs[1].changedAt).toBeLessThanOrEqual(Date.now());
  });
});
