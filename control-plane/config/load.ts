// Parsing configuration read from disk (files.ts): YAML documents, validated as one config.

import { parseAllDocuments } from 'yaml';
import { emptyMeshConfig, type MeshConfig } from '../model/types';
import { ConfigError } from './errors';
import { checkDocumentCount, readSnapshot, type Snapshot, type SourceFile } from './files';
import type { SkippedDocument } from './kubernetes';
import { validateDocuments, type RawDocument, type ValidateOptions } from './validate';

export interface LoadResult {
  config: MeshConfig;
  /** the files read, in the order they were applied */
  files: string[];
  /** sha256 over file names and contents; equal hashes mean nothing changed */
  hash: string;
  /** Kubernetes objects in those files that are not mesh config (Service, Deployment, ...) */
  skipped: SkippedDocument[];
  /** when the change was made on disk (epoch ms), where a watcher knows */
  changedAt?: number;
}

export { readSnapshot, type Snapshot, type SourceFile };

function documents(text: string, file: string): RawDocument[] {
  checkDocumentCount(text, file);
  const docs = parseAllDocuments(text);
  const out: RawDocument[] = [];
  for (const [i, doc] of docs.entries()) {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      // The library's message ends with " at line L, column C:" and a code excerpt.
      const detail = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      throw new ConfigError({
        file,
        line: pos?.line,
        detail: pos ? `line ${pos.line}, column ${pos.col}: ${detail}` : detail,
      });
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new ConfigError({ file, doc: i, detail: (e as Error).message });
    }
    out.push({ file, doc: i, value });
  }
  return out;
}

/** Parses and validates a set of files as one config (cross-file references included). */
export function parseSources(files: SourceFile[], opts: ValidateOptions = {}): MeshConfig {
  if (files.length === 0) return emptyMeshConfig();
  const docs: RawDocument[] = [];
  const errors: ConfigError[] = [];
  for (const f of files) {
    try {
      docs.push(...documents(f.text, f.file));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      errors.push(e);
    }
  }
  if (errors.length) throw ConfigError.aggregate(errors);
  return validateDocuments(docs, opts);
}

/** parseSources, also telling which Kubernetes objects were skipped. */
export function parseSnapshot(snap: Snapshot): LoadResult {
  const skipped: SkippedDocument[] = [];
  const config = parseSources(snap.files, { onSkipped: (s) => skipped.push(s) });
  return { config, files: snap.files.map((f) => f.file), hash: snap.hash, skipped };
}

/** One file's text (the name is only used in errors and sources). */
export function parseConfigText(text: string, file: string): MeshConfig {
  return parseSources([{ file, text }]);
}

/** Loads a YAML file or a directory of them (non-recursive, sorted by name). */
export function loadConfig(p: string): LoadResult {
  return parseSnapshot(readSnapshot(p));
}
