// Resource names, Istio style, so operators recognise them in config dumps.
export const OUTBOUND_LISTENER = 'outbound';
export const OUTBOUND_ROUTE = 'outbound';
/** Istio's name for a sidecar's inbound listener */
export const INBOUND_LISTENER = 'virtualInbound';

export function clusterName(host: string, port: number, subset = ''): string {
  return `outbound|${port}|${subset}|${host}`;
}
