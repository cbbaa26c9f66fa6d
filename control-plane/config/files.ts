// The config on disk: one YAML file, or every *.yaml/*.yml in a directory. Listing stats
// the files without reading them, so that sizes are refused before anything is read and a
// watcher can tell from the stamps alone that nothing changed; reading hashes the content.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './errors';
import { CONFIG_LIMITS, type ConfigLimits } from './limits';

export interface SourceFile {
  file: string;
  text: string;
}

export interface Snapshot {
  files: SourceFile[];
  /** sha256 over file names and contents; equal hashes mean nothing changed */
  hash: string;
}

export interface ListedFile {
  file: string;
  size: number;
}

export interface Listing {
  files: ListedFile[];
  /** device, inode, size, modification and change times of every file: equal stamps, same files */
  stamp: string;
  /** the latest modification or change time among the files (epoch ms) */
  newestMs: number;
}

export type ReadFile = (file: string) => Buffer;

const YAML_FILE = /\.ya?ml$/i;

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

const unreadable = (file: string, e: unknown): ConfigError =>
  new ConfigError({ file, detail: `cannot read: ${(e as Error).message}` });

const MIB = 1024 * 1024;
const sizeOf = (n: number): string => (n % MIB === 0 ? `${n / MIB} MiB` : `${n.toLocaleString('en-US')} bytes`);

const tooBig = (file: string, size: number, limit: number): ConfigError =>
  new ConfigError({ file, detail: `is ${size.toLocaleString('en-US')} bytes, over the limit of ${sizeOf(limit)} for one config file; split it into several files of a config directory` });

const tooBigTogether = (dir: string, size: number, limit: number): ConfigError =>
  new ConfigError({ file: dir, detail: `its config files are ${size.toLocaleString('en-US')} bytes together, over the limit of ${sizeOf(limit)} for a whole config` });

/**
 * The files that make up the config at `p`, stat'ed and not read. A missing path is an
 * empty config. Throws a ConfigError naming the file when one is over its size limit, or
 * naming the directory when they are together.
 */
export function listConfig(p: string, limits: ConfigLimits = CONFIG_LIMITS): Listing {
  let names: string[];
  let isDir = false;
  try {
    isDir = fs.statSync(p).isDirectory();
    // Hidden files are skipped: editors' temporaries, and Kubernetes ConfigMap internals.
    names = isDir ? fs.readdirSync(p).filter((n) => YAML_FILE.test(n) && !n.startsWith('.')).sort().map((n) => path.join(p, n)) : [p];
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') names = [];
    else throw unreadable(p, e);
  }
  const files: ListedFile[] = [];
  const stamps: string[] = [];
  let newestMs = 0;
  let total = 0;
  for (const file of names) {
    let st: fs.Stats;
    try {
      // followed, as reading follows it: a ConfigMap's files are links that a swap re-points
      st = fs.statSync(file);
    } catch (e) {
      // gone between listing and stat: not part of the config
      if (errno(e) === 'ENOENT') continue;
      throw unreadable(file, e);
    }
    // a directory named *.yaml is not part of the config
    if (st.isDirectory()) continue;
    if (st.size > limits.fileBytes) throw tooBig(file, st.size, limits.fileBytes);
    total += st.size;
    files.push({ file, size: st.size });
    stamps.push(`${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`);
    newestMs = Math.max(newestMs, st.mtimeMs, st.ctimeMs);
  }
  if (total > limits.totalBytes) throw tooBigTogether(isDir ? p : path.dirname(p), total, limits.totalBytes);
  return { files, stamp: stamps.join('\n'), newestMs };
}

/**
 * Reads and hashes the files of a listing. A file grown past its limit since it was
 * listed is refused all the same: the limit is on what is read.
 */
export function readListing(listing: Listing, limits: ConfigLimits = CONFIG_LIMITS, read: ReadFile = fs.readFileSync): Snapshot {
  const hash = createHash('sha256');
  const files: SourceFile[] = [];
  let total = 0;
  for (const { file } of listing.files) {
    let data: Buffer;
    try {
      data = read(file);
    } catch (e) {
      // Gone between listing and reading, or replaced by a directory: not part of the config.
      if (errno(e) === 'ENOENT' || errno(e) === 'EISDIR') continue;
      throw unreadable(file, e);
    }
    if (data.length > limits.fileBytes) throw tooBig(file, data.length, limits.fileBytes);
    total += data.length;
    if (total > limits.totalBytes) throw tooBigTogether(path.dirname(file), total, limits.totalBytes);
    hash.update(`${file}\0${data.length}\0`).update(data);
    files.push({ file, text: data.toString('utf8') });
  }
  return { files, hash: hash.digest('hex') };
}

/** The files that make up the config at `p`, read once. */
export function readSnapshot(p: string, limits: ConfigLimits = CONFIG_LIMITS): Snapshot {
  return readListing(listConfig(p, limits), limits);
}

// A line that is exactly a document marker, or one followed by content ("--- !tag", "--- {a: 1}").
const DOCUMENT_MARKER = /^---(?:[ \t]|$)/gm;

/**
 * Throws when `text` holds more documents than the limit allows; counted from the markers
 * (YAML allows "---" at the start of a line nowhere else), before any parsing.
 */
export function checkDocumentCount(text: string, file: string, limits: ConfigLimits = CONFIG_LIMITS): void {
  let markers = 0;
  DOCUMENT_MARKER.lastIndex = 0;
  while (DOCUMENT_MARKER.exec(text)) {
    if (++markers > limits.documentsPerFile) {
      throw new ConfigError({ file, detail: `has more than ${limits.documentsPerFile.toLocaleString('en-US')} YAML documents, the limit for one config file` });
    }
  }
}
