// /debug/syncz: per connected proxy, per type, what was sent, what was acked, the last NACK.
import { shortName } from '../proto/type-urls';
import type { AdsServer } from './xds/server';
import type { CertTracker } from './identity/cert-tracker';

export interface SyncEntry {
  id: string;
  service?: string;
  namespace?: string;
  /** the labels the sidecar registered with (version=v2...) */
  labels?: Record<string, string>;
  /** the sidecar's admin host:port, as it announced it (`tandem stat` scrapes its /metrics) */
  adminAddress?: string;
  proxyless: boolean;
  /** the xDS protocol the stream speaks: State of the World or Delta */
  protocol: 'sotw' | 'delta';
  connectedAt: string;
  types: Record<string, { sent?: string; acked?: string; status: 'SYNCED' | 'STALE' | 'NACK' | 'NOT SENT'; lastNack?: { version: string; message: string; at: string } }>;
  /** the SPIFFE ID of the certificate the stream connected with */
  identity: string | null;
  /** whether the stream made its workload an endpoint */
  registered: boolean;
  certExpires: string | null;
}

export function syncz(ads: AdsServer, certs?: CertTracker): SyncEntry[] {
  return [...ads.streams.values()].map((s) => {
    const types: SyncEntry['types'] = {};
    for (const [t, st] of s.types) {
      let status: SyncEntry['types'][string]['status'] = 'NOT SENT';
      if (st.sentVersion !== undefined) {
        if (st.ackedVersion === st.sentVersion) status = 'SYNCED';
        else if (st.lastNack && st.lastNack.version === st.sentVersion) status = 'NACK';
        else status = 'STALE';
      } else if (st.ackedVersion !== undefined) status = 'SYNCED';
      types[shortName[t]] = {
        sent: st.sentVersion ?? st.ackedVersion,
        acked: st.ackedVersion,
        status,
        ...(st.lastNack ? { lastNack: { ...st.lastNack, at: new Date(st.lastNack.at).toISOString() } } : {}),
      };
    }
    return {
      id: s.node?.id ?? s.key,
      service: s.workload?.service,
      namespace: s.workload?.namespace,
      labels: s.workload?.labels,
      adminAddress: s.workload?.adminAddress,
      proxyless: !s.workload,
      protocol: s.protocol,
      connectedAt: new Date(s.connectedAt).toISOString(),
      types,
      identity: s.peer?.spiffeId ?? null,
      registered: s.registered,
      certExpires: s.peer ? (certs?.currentExpiry(s.peer.serial, s.peer.certExpires) ?? s.peer.certExpires).toISOString() : null,
    };
  });
}
