import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from './errors';
import { checkDocumentCount, listConfig, readListing } from './files';
import { CONFIG_LIMITS, MAX_CONFIG_FILE_BYTES, MAX_CONFIG_TOTAL_BYTES, type ConfigLimits } from './limits';
import { loadConfig } from './load';

const LIMITS: ConfigLimits = { fileBytes: 1000, totalBytes: 2500, documentsPerFile: 3 };

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-files-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const refusal = (f: () => unknown): ConfigError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('accepted');
};

describe('config size limits, from the file system before anything is read', () => {
  it('refuses a file over the limit, naming it and its size', () => {
    const big = path.join(dir, 'b.yaml');
    fs.writeFileSync(path.join(dir, 'a.yaml'), 'x: 1\n');
    fs.writeFileSync(big, `# ${'x'.repeat(1200)}\n`);
    const e = refusal(() => listConfig(dir, LIMITS));
    expect(e.file).toBe(big);
    expect(e.message).toBe(`${big}: is 1,203 bytes, over the limit of 1,000 bytes for one config file; split it into several files of a config directory`);
  });

  it('refuses a directory whose files are over the limit together, naming it', () => {
    for (const n of ['a', 'b', 'c']) fs.writeFileSync(path.join(dir, `${n}.yaml`), `# ${'x'.repeat(900)}\n`);
    const e = refusal(() => listConfig(dir, LIMITS));
    expect(e.file).toBe(dir);
    expect(e.message).toMatch(/its config files are 2,709 bytes together, over the limit of 2,500 bytes for a whole config/);
  });

  it('refuses a file that grew past its limit between listing and reading', () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, 'x: 1\n');
    const listing = listConfig(file, LIMITS);
    fs.writeFileSync(file, `# ${'x'.repeat(1200)}\n`);
    expect(refusal(() => readListing(listing, LIMITS)).file).toBe(file);
  });

  it('refuses, at the default limits, a 50 MB file without parsing it', () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, 'x: 1\n');
    fs.truncateSync(file, 50_000_000);
    const e = refusal(() => loadConfig(file));
    expect(e.message).toMatch(/is 50,000,000 bytes, over the limit of 8 MiB for one config file/);
    expect(CONFIG_LIMITS).toEqual({ fileBytes: MAX_CONFIG_FILE_BYTES, totalBytes: MAX_CONFIG_TOTAL_BYTES, documentsPerFile: 10_000 });
  });

  it('changes the stamp when a file is touched, replaced or added, not when it is only read', () => {
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, 'x: 1\n');
    const s1 = listConfig(dir).stamp;
    readListing(listConfig(dir));
    expect(listConfig(dir).stamp).toBe(s1);
    fs.utimesSync(file, new Date(0), new Date(0));
    const s2 = listConfig(dir).stamp;
    fs.writeFileSync(`${file}.tmp`, 'x: 1\n');
    fs.renameSync(`${file}.tmp`, file);
    const s3 = listConfig(dir).stamp;
    fs.writeFileSync(path.join(dir, 'b.yaml'), '');
    const s4 = listConfig(dir).stamp;
    expect(new Set([s1, s2, s3, s4]).size).toBe(4);
  });
});

describe('documents per file, counted before parsing', () => {
  it('allows up to the limit and refuses more, naming the file', () => {
    expect(() => checkDocumentCount('a: 1\n---\nb: 2\n--- # c\nc: 3\n---\n', 'm.yaml', LIMITS)).not.toThrow();
    const e = refusal(() => checkDocumentCount('---\na: 1\n---\nb: 2\n---\nc: 3\n--- {d: 4}\n', 'm.yaml', LIMITS));
    expect(e.message).toBe('m.yaml: has more than 3 YAML documents, the limit for one config file');
  });

  it('does not count "---" inside a line or indented', () => {
    expect(() => checkDocumentCount('a: "---"\nb: |\n  ---\n  ---\n  ---\n  ---\nc: ---x\n----\n', 'm.yaml', LIMITS)).not.toThrow();
  });

  it('refuses a file of 10,001 documents at load', () => {
    const file = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(file, '---\n{}\n'.repeat(10_001));
    expect(refusal(() => loadConfig(file)).message).toMatch(/has more than 10,000 YAML documents/);
  });
});
