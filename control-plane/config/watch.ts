// Keeps a LoadResult current as the config file or directory changes on disk.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './errors';
import { listConfig, readListing, type Listing, type ReadFile, type Snapshot } from './files';
import { CONFIG_LIMITS, type ConfigLimits } from './limits';
import { parseSnapshot, type LoadResult } from './load';

export interface ConfigHandlers {
  onConfig(result: LoadResult): void;
  onError(error: ConfigError): void;
}

export interface WatchOptions {
  /** fallback poll interval; default 250 */
  pollMs?: number;
  /** the clock file times are compared with; default Date.now */
  now?: () => number;
  /** how config files are read; default fs.readFileSync */
  readFile?: ReadFile;
  limits?: ConfigLimits;
}

// fs.watch fires several events per save; read once things are quiet.
const DEBOUNCE_MS = 30;
// A file that vanishes may be an editor mid-save (rename away, write anew), and a file
// that is suddenly empty may be one rewritten in place (truncate, then write); so a
// smaller set of files, or an emptied one, is only believed once it has stayed so this long.
const SETTLE_MS = 100;

// A file's times have a granularity (a clock tick here, seconds on some file systems): one
// written twice within it, to the same size, keeps its stamp. So, as git does with its
// index, a stamp only means "unchanged" when its newest time was this much older than the
// stat that took it; until then the files are read on every check.
const RACY_MS = 2000;

const blank = (text: string): boolean => text.trim() === '';

/**
 * fs.watch on the containing directory gives fast notice (edits, rename-replace,
 * files appearing); a poll covers what it misses (no directory yet, network
 * filesystems). Either way the files are stat'ed first and read only when their stamps
 * changed, and a reload happens only when the content hash changed.
 */
export class ConfigWatcher {
  private readonly pollMs: number;
  private readonly now: () => number;
  private readonly readFile: ReadFile | undefined;
  private readonly limits: ConfigLimits;
  /** the stamp of the files whose content was last acted on (or found unchanged), and when it was taken */
  private lastStamp: { stamp: string; at: number } | undefined;
  private running = false;
  private fsWatcher: fs.FSWatcher | undefined;
  private watched: { dir: string; ino: number } | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  /** hash (or read-error text) of the last content acted on, good or bad */
  private lastKey: string | undefined;
  private lastFiles: string[] = [];
  /** files that were empty (or whitespace) in the content last acted on */
  private lastBlank = new Set<string>();
  private shrink: { hash: string; since: number } | undefined;
  /** the last time the content acted on was found unchanged: a change seen now was made after it */
  private unchangedAt = 0;

  constructor(
    readonly path: string,
    private readonly handlers: ConfigHandlers,
    opts: WatchOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 250;
    this.now = opts.now ?? Date.now;
    this.readFile = opts.readFile;
    this.limits = opts.limits ?? CONFIG_LIMITS;
  }

  /** Loads synchronously (calling one handler), then watches. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.check(true);
    this.ensureWatch();
    this.pollTimer = setInterval(() => {
      this.ensureWatch();
      this.check(false);
    }, this.pollMs);
    this.pollTimer.unref();
  }

  stop(): void {
    this.running = false;
    for (const t of [this.pollTimer, this.debounceTimer, this.settleTimer]) if (t) clearTimeout(t);
    this.pollTimer = this.debounceTimer = this.settleTimer = undefined;
    this.closeWatch();
  }

  private check(initial: boolean): void {
    if (!this.running) return;
    try {
      this.reload(initial);
    } catch (e) {
      // A bug here must not take down the control plane through a timer callback.
      process.emitWarning(`config watcher: ${(e as Error).stack ?? String(e)}`);
    }
  }

  private reload(initial: boolean): void {
    const now = this.now();
    let listing: Listing;
    let snap: Snapshot;
    try {
      listing = listConfig(this.path, this.limits);
      if (listing.stamp === this.lastStamp?.stamp && listing.newestMs < this.lastStamp.at - RACY_MS) {
        this.shrink = undefined;
        this.unchangedAt = now;
        return;
      }
      snap = readListing(listing, this.limits, this.readFile);
    } catch (e) {
      const err = e instanceof ConfigError ? e : new ConfigError({ file: this.path, detail: String(e) });
      const key = `error:${err.message}`;
      this.lastStamp = undefined;
      if (key !== this.lastKey) {
        this.lastKey = key;
        this.deliver(() => this.handlers.onError(err));
      }
      return;
    }
    if (snap.hash === this.lastKey) {
      this.lastStamp = { stamp: listing.stamp, at: now };
      this.shrink = undefined;
      this.unchangedAt = now;
      return;
    }
    const files = snap.files.map((f) => f.file);
    const emptied = snap.files.some((f) => blank(f.text) && !this.lastBlank.has(f.file));
    if (!initial && (emptied || this.lastFiles.some((f) => !files.includes(f)))) {
      const now = Date.now();
      if (this.shrink?.hash !== snap.hash) this.shrink = { hash: snap.hash, since: now };
      if (now - this.shrink.since < SETTLE_MS) {
        if (!this.settleTimer) {
          this.settleTimer = setTimeout(() => {
            this.settleTimer = undefined;
            this.check(false);
          }, SETTLE_MS);
          this.settleTimer.unref();
        }
        return;
      }
    }
    this.shrink = undefined;
    this.lastKey = snap.hash;
    this.lastStamp = { stamp: listing.stamp, at: now };
    this.lastFiles = files;
    this.lastBlank = new Set(snap.files.filter((f) => blank(f.text)).map((f) => f.file));
    let result: LoadResult;
    try {
      result = parseSnapshot(snap);
    } catch (e) {
      const err = e instanceof ConfigError ? e : new ConfigError({ file: this.path, detail: String(e) });
      this.deliver(() => this.handlers.onError(err));
      return;
    }
    // the first load is not a change anyone converges on
    result.changedAt = initial ? Date.now() : changeTime(this.path, files, this.unchangedAt);
    this.deliver(() => this.handlers.onConfig(result));
  }

  private deliver(call: () => void): void {
    try {
      call();
    } catch (e) {
      process.emitWarning(`config watcher handler threw: ${(e as Error).stack ?? String(e)}`);
    }
  }

  private schedule(): void {
    if (!this.running) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.check(false);
    }, DEBOUNCE_MS);
    this.debounceTimer.unref();
  }

  /** Watches the config directory, or the file's directory; re-arms if that is replaced. */
  private ensureWatch(): void {
    let dir = path.dirname(this.path);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(this.path);
      if (st.isDirectory()) dir = this.path;
      else st = fs.statSync(dir);
    } catch {
      try {
        st = fs.statSync(dir);
      } catch {
        st = undefined;
      }
    }
    if (this.watched && st && this.watched.dir === dir && this.watched.ino === st.ino) return;
    this.closeWatch();
    if (!st) return; // nothing to watch yet; the poll will notice it appearing
    try {
      const w = fs.watch(dir, { persistent: false }, () => this.schedule());
      w.on('error', () => this.closeWatch());
      this.fsWatcher = w;
      this.watched = { dir, ino: st.ino };
    } catch {
      // Unwatchable (e.g. too many inotify watches): polling alone still works.
    }
  }

  private closeWatch(): void {
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
    this.watched = undefined;
  }
}

/**
 * When a change was made: the newest modification time among the files and their directory
 * (a removed file shows only there), but never before the last check that still saw the old
 * content (a file copied in keeps its old mtime) nor after now.
 */
export function changeTime(configPath: string, files: string[], notBefore: number, now = Date.now()): number {
  let newest = 0;
  for (const f of [configPath, ...files]) {
    try {
      newest = Math.max(newest, fs.statSync(f).mtimeMs);
    } catch {
      // gone since it was read: the next check reloads
    }
  }
  return Math.min(now, Math.max(newest, notBefore));
}
