// The sidecar's own DNS for STRICT_DNS and LOGICAL_DNS clusters, as Envoy's: every name
// a cluster lists is resolved in the background and re-resolved at the cluster's refresh
// rate (or the records' TTL, bounded, when the cluster respects it), so a request never
// waits for DNS. A name that no longer exists has no addresses; a resolver that fails
// (timeout, server failure) keeps the last good answer and is asked again sooner.
import { EventEmitter } from 'node:events';
import * as dns from 'node:dns';
import { isIP } from 'node:net';
import type { ClusterModel, DnsLookupFamily } from '../../proto/decode/model';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface Answer {
  /** in the resolver's order (LOGICAL_DNS takes the first) */
  addresses: ResolvedAddress[];
  /** the smallest TTL of the records, when the resolver knows it */
  ttlMs?: number;
}

/** Resolves a name; rejects on failure. ENOTFOUND and ENODATA mean the name has no addresses. */
export type Resolve = (host: string) => Promise<Answer>;

/** Runs `fn` after `ms`; returns a cancel. Injected so tests control time. */
export type Schedule = (ms: number, fn: () => void) => () => void;

/** What a cluster asks of a name. */
export interface DnsName {
  host: string;
  refreshMs: number;
  failureRefreshMs: number;
  respectTtl: boolean;
}

/** Never more often than this, whatever a TTL says (a TTL of 0 would be a busy loop). */
export const MIN_REFRESH_MS = 1000;
const LOOKUP_TIMEOUT_MS = 5000;
const NO_SUCH_NAME = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NONAME', 'EAI_NODATA']);

/** The system resolver, as the application itself would use (hosts file included); it tells no TTL. */
export const systemResolve: Resolve = async (host) => {
  const list = await dns.promises.lookup(host, { all: true, verbatim: true });
  return { addresses: list.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })) };
};

const realSchedule: Schedule = (ms, fn) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

interface Entry {
  name: DnsName;
  /** undefined until the first answer */
  addresses?: ResolvedAddress[];
  cancel?: () => void;
}

export interface DnsCacheOptions {
  resolve?: Resolve;
  schedule?: Schedule;
  timeoutMs?: number;
}

/** Emits 'change' (host) when a name's addresses change, the first answer included. */
export class DnsCache extends EventEmitter {
  private readonly entries = new Map<string, Entry>();
  private readonly resolve: Resolve;
  private readonly schedule: Schedule;
  private readonly timeoutMs: number;

  constructor(o: DnsCacheOptions = {}) {
    super();
    this.resolve = o.resolve ?? systemResolve;
    this.schedule = o.schedule ?? realSchedule;
    this.timeoutMs = o.timeoutMs ?? LOOKUP_TIMEOUT_MS;
  }

  /** The names to keep resolved: new ones are resolved now, ones no longer wanted are dropped. */
  want(names: DnsName[]): void {
    const merged = new Map<string, DnsName>();
    for (const n of names) {
      if (isIP(n.host)) continue;
      const host = n.host.toLowerCase();
      const m = merged.get(host);
      // several clusters, one name: the most demanding settings
      merged.set(
        host,
        m
          ? { host, refreshMs: Math.min(m.refreshMs, n.refreshMs), failureRefreshMs: Math.min(m.failureRefreshMs, n.failureRefreshMs), respectTtl: m.respectTtl || n.respectTtl }
          : { ...n, host },
      );
    }
    for (const [host, e] of this.entries) {
      if (merged.has(host)) continue;
      e.cancel?.();
      this.entries.delete(host);
    }
    for (const [host, name] of merged) {
      const e = this.entries.get(host);
      if (e) e.name = name; // from the next refresh on
      else {
        const fresh: Entry = { name };
        this.entries.set(host, fresh);
        this.lookup(host, fresh);
      }
    }
  }

  /** A name's addresses: itself for an IP, undefined while its first answer is awaited. */
  addresses(host: string): ResolvedAddress[] | undefined {
    const family = isIP(host);
    if (family) return [{ address: host, family: family === 6 ? 6 : 4 }];
    return this.entries.get(host.toLowerCase())?.addresses;
  }

  /** Some wanted name has had no answer yet. */
  get pending(): boolean {
    for (const e of this.entries.values()) if (!e.addresses) return true;
    return false;
  }

  stop(): void {
    for (const e of this.entries.values()) e.cancel?.();
    this.entries.clear();
  }

  private lookup(host: string, e: Entry): void {
    e.cancel = undefined;
    let settled = false;
    const cancelTimeout = this.schedule(this.timeoutMs, () => done(undefined, Object.assign(new Error(`resolving ${host} timed out`), { code: 'ETIMEOUT' })));
    const done = (answer: Answer | undefined, err?: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      cancelTimeout();
      // dropped (or replaced) while the lookup ran
      if (this.entries.get(host) !== e) return;
      const n = e.name;
      let next: number;
      if (answer) {
        this.set(host, e, answer.addresses);
        next = n.respectTtl && answer.ttlMs !== undefined ? Math.min(Math.max(answer.ttlMs, MIN_REFRESH_MS), n.refreshMs) : n.refreshMs;
      } else if (err?.code && NO_SUCH_NAME.has(err.code)) {
        this.set(host, e, []);
        next = n.refreshMs;
      } else {
        // keep what was known; a first failure is an answer too (no addresses), so nothing waits on it
        this.set(host, e, e.addresses ?? []);
        next = Math.min(n.failureRefreshMs, n.refreshMs);
      }
      e.cancel = this.schedule(Math.max(next, MIN_REFRESH_MS), () => this.lookup(host, e));
    };
    this.resolve(host).then(
      (a) => done(a),
      (err: NodeJS.ErrnoException) => done(undefined, err),
    );
  }

  private set(host: string, e: Entry, addresses: ResolvedAddress[]): void {
    const key = (l: ResolvedAddress[]) => l.map((a) => a.address).join(',');
    const changed = !e.addresses || key(e.addresses) !== key(addresses);
    e.addresses = addresses;
    if (changed) this.emit('change', host);
  }
}

/** Envoy's dns_lookup_family over a name's addresses. */
export function byFamily(addresses: ResolvedAddress[], family: DnsLookupFamily): ResolvedAddress[] {
  const v4 = addresses.filter((a) => a.family === 4);
  const v6 = addresses.filter((a) => a.family === 6);
  switch (family) {
    case 'V4_ONLY':
      return v4;
    case 'V6_ONLY':
      return v6;
    case 'V4_PREFERRED':
      return v4.length ? v4 : v6;
    case 'AUTO':
      return v6.length ? v6 : v4;
    case 'ALL':
      return addresses;
  }
}

/** The names the DNS clusters list, with their clusters' refresh settings. */
export function dnsNames(clusters: Iterable<ClusterModel>): DnsName[] {
  const out: DnsName[] = [];
  for (const c of clusters) {
    const d = c.discovery;
    if (d?.kind !== 'dns') continue;
    for (const e of d.endpoints) out.push({ host: e.address, refreshMs: d.refreshMs, failureRefreshMs: d.failureRefreshMs, respectTtl: d.respectTtl });
  }
  return out;
}
