// A simulated sidecar for `make bench-xds`: one ADS stream over its own TLS connection with
// a real workload certificate, subscribing and acknowledging as sidecar/xds/client.ts does
// (CDS and LDS as wildcards, then EDS for the EDS clusters and RDS for the outbound
// listener's routes, an ACK carrying version and nonce for every response, the versions it
// holds named again when it reconnects). It keeps only what the benchmark checks.
// It speaks Delta xDS as the sidecar does by default (subscribe and unsubscribe, an ACK per
// response nonce, initial_resource_versions on reconnect), and declares VHDS as it does: a
// route configuration with vhds is followed by a wildcard subscription to VirtualHost.
// XDS_BENCH_PROTOCOL=sotw: State of the World instead (as `--xds-protocol sotw` and
// proxyless gRPC clients speak).
import * as grpc from '@grpc/grpc-js';
import {
  adsService,
  type AdsClientStream,
  type DeltaClientStream,
  type DeltaDiscoveryResponse,
  type DiscoveryResponse,
  type XdsNode,
} from '../proto/ads';
import type { AnyMessage } from '../proto/any';
import { TypeUrl, type XdsTypeUrl } from '../proto/type-urls';
import { withVhds } from '../proto/node-meta';
import { decodeListener } from '../proto/decode/decode';
import { CONTROL_PLANE_SNI } from '../certs/ca';
import { MAX_XDS_MESSAGE_BYTES } from '../proto/limits';
import { assignmentNameAndSize, clusterNameAndEds, nameOf, routeHasVhds } from './xds-wire';

const ADS_CLIENT = grpc.makeGenericClientConstructor(adsService, 'AggregatedDiscoveryService');

/** the xDS protocol the simulated sidecars speak: sotw (the default) or delta */
export const PROTOCOL: 'sotw' | 'delta' = process.env.XDS_BENCH_PROTOCOL === 'sotw' ? 'sotw' : 'delta';

/** Why streams ended unasked, and how often: the benchmark reports it. */
export const drops = new Map<string, number>();

/** What the benchmark looks for in what a simulated sidecar holds. */
export interface Markers {
  /** a string the edited route carries */
  route?: string;
  /** the address of the endpoint that joins */
  endpoint?: string;
}

interface TypeState {
  version: string;
  nonce: string;
  names: string[];
  received: boolean;
  /** Delta: name -> version held, named again on reconnect */
  held: Map<string, string>;
}

export class SimSidecar {
  private client?: grpc.Client;
  private stream?: AdsClientStream | DeltaClientStream;
  /** what the follow-up subscriptions are made from: EDS clusters and the outbound listeners' routes held */
  private readonly edsClusters = new Set<string>();
  private readonly listenerRoutes = new Map<string, string | undefined>();
  /** route configurations held that have vhds: while any is, VirtualHost is subscribed to */
  private readonly vhdsRoutes = new Set<string>();
  private sentNode = false;
  private retry?: NodeJS.Timeout;
  private readonly types = new Map<XdsTypeUrl, TypeState>();
  /** EDS cluster name -> endpoints it holds */
  readonly endpoints = new Map<string, number>();
  /** EDS clusters whose endpoint count is not what the benchmark expects */
  short = 0;
  routeMarked = false;
  endpointMarked = false;
  lastAckAt = 0;
  lastResponseAt = 0;
  upAt = 0;

  constructor(
    private readonly target: string,
    private readonly creds: grpc.ChannelCredentials,
    private node: XdsNode,
    private readonly markers: Markers,
    /** how many endpoints each EDS cluster should hold */
    private readonly expected: (cluster: string) => number,
  ) {
    // VHDS is Delta xDS only, as in the sidecar
    if (PROTOCOL === 'delta') this.node = withVhds(node);
    for (const t of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.VirtualHost] as XdsTypeUrl[]) {
      this.types.set(t, { version: '', nonce: '', names: [], received: false, held: new Map() });
    }
  }

  /** CDS, LDS, RDS answered and every EDS cluster's endpoints received */
  get synced(): boolean {
    const got = (t: XdsTypeUrl) => this.types.get(t)!.received;
    if (!got(TypeUrl.Cluster) || !got(TypeUrl.Listener) || !got(TypeUrl.RouteConfiguration)) return false;
    if (this.vhdsRoutes.size && !got(TypeUrl.VirtualHost)) return false;
    const eds = this.types.get(TypeUrl.ClusterLoadAssignment)!;
    return eds.names.length > 0 && this.endpoints.size >= eds.names.length;
  }

  connect(): void {
    this.client = new ADS_CLIENT(this.target, this.creds, {
      'grpc.ssl_target_name_override': CONTROL_PLANE_SNI,
      'grpc.default_authority': CONTROL_PLANE_SNI,
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': MAX_XDS_MESSAGE_BYTES,
    });
    const calls = this.client as unknown as { StreamAggregatedResources(): AdsClientStream; DeltaAggregatedResources(): DeltaClientStream };
    const stream = PROTOCOL === 'delta' ? calls.DeltaAggregatedResources() : calls.StreamAggregatedResources();
    this.stream = stream;
    this.sentNode = false;
    for (const st of this.types.values()) st.nonce = '';
    stream.on('metadata', () => (this.upAt ||= Date.now()));
    stream.on('data', (res: DiscoveryResponse | DeltaDiscoveryResponse) =>
      PROTOCOL === 'delta' ? this.onDeltaResponse(res as DeltaDiscoveryResponse) : this.onResponse(res as DiscoveryResponse),
    );
    // as the sidecar does: a stream that ends is opened again after a jittered delay
    let ended = false;
    const onEnd = (why: string) => {
      if (ended || this.stream !== stream) return;
      ended = true;
      drops.set(why, (drops.get(why) ?? 0) + 1);
      this.disconnect();
      this.retry = setTimeout(() => this.connect(), Math.max(50, Math.floor(Math.random() * 1000)));
    };
    stream.on('error', (err: Error) => onEnd(err.message));
    stream.on('end', () => onEnd('ended by the control plane'));
    if (PROTOCOL === 'delta') {
      for (const t of [TypeUrl.Cluster, TypeUrl.Listener] as const) this.subscribe(t, ['*'], [], true);
      for (const t of [TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration, TypeUrl.VirtualHost] as const) {
        const names = this.types.get(t)!.names;
        if (names.length) this.subscribe(t, names, [], true);
      }
      return;
    }
    this.request(TypeUrl.Cluster);
    this.request(TypeUrl.Listener);
    for (const t of [TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration] as const) if (this.types.get(t)!.names.length) this.request(t);
  }

  private subscribe(type: XdsTypeUrl, add: string[], drop: string[], first = false): void {
    const held = this.types.get(type)!.held;
    (this.stream as DeltaClientStream | undefined)?.write({
      node: this.sentNode ? undefined : this.node,
      type_url: type,
      resource_names_subscribe: add,
      resource_names_unsubscribe: drop,
      ...(first && held.size ? { initial_resource_versions: Object.fromEntries(held) } : {}),
    });
    this.sentNode = true;
  }

  private onDeltaResponse(res: DeltaDiscoveryResponse): void {
    const type = res.type_url as XdsTypeUrl;
    const st = this.types.get(type);
    if (!st) return;
    for (const n of res.removed_resources ?? []) {
      st.held.delete(n);
      this.edsClusters.delete(n);
      this.listenerRoutes.delete(n);
      if (type === TypeUrl.RouteConfiguration) this.vhdsRoutes.delete(n);
    }
    const resources = (res.resources ?? []).flatMap((r) => (r.resource ? [r] : []));
    for (const r of resources) st.held.set(r.name, r.version ?? '');
    this.apply(type, resources.map((r) => r.resource!), res.system_version_info ?? '', res.nonce, false);
  }

  disconnect(): void {
    clearTimeout(this.retry);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.client?.close();
    this.upAt = 0;
  }

  private request(type: XdsTypeUrl): void {
    const st = this.types.get(type)!;
    (this.stream as AdsClientStream | undefined)?.write({
      version_info: st.version,
      node: this.sentNode ? undefined : this.node,
      resource_names: st.names,
      type_url: type,
      response_nonce: st.nonce,
    });
    this.sentNode = true;
  }

  private onResponse(res: DiscoveryResponse): void {
    this.apply(res.type_url as XdsTypeUrl, res.resources ?? [], res.version_info, res.nonce, true);
  }

  /** `whole`: State of the World, where a cluster or listener missing from the response is gone */
  private apply(type: XdsTypeUrl, list: AnyMessage[], version: string, nonce: string, whole: boolean): void {
    const now = Date.now();
    this.lastResponseAt = now;
    this.upAt ||= now;
    const st = this.types.get(type);
    if (!st) return;
    st.nonce = nonce;
    if (whole && type === TypeUrl.Cluster) this.edsClusters.clear();
    if (whole && type === TypeUrl.Listener) this.listenerRoutes.clear();
    for (const any of list) {
      if (type === TypeUrl.Cluster) {
        const c = clusterNameAndEds(any.value);
        if (c.eds) this.edsClusters.add(c.name);
        else this.edsClusters.delete(c.name);
      } else if (type === TypeUrl.ClusterLoadAssignment) {
        const a = assignmentNameAndSize(any.value);
        this.setEndpoints(a.name, a.endpoints);
        if (this.markers.endpoint && Buffer.from(any.value).includes(this.markers.endpoint)) this.endpointMarked = true;
      } else if (type === TypeUrl.Listener) {
        const l = decodeListener(any);
        this.listenerRoutes.set(l.name, l.kind === 'outbound' ? l.routeConfigName : undefined);
      } else if (type === TypeUrl.RouteConfiguration) {
        const vhds = routeHasVhds(any.value);
        const name = nameOf(any.value);
        if (vhds) this.vhdsRoutes.add(name);
        else this.vhdsRoutes.delete(name);
        // with vhds, the routes (and the marker) come as virtual hosts
        if (this.markers.route && !vhds) this.routeMarked = Buffer.from(any.value).includes(this.markers.route);
      } else if (type === TypeUrl.VirtualHost) {
        if (this.markers.route && Buffer.from(any.value).includes(this.markers.route)) this.routeMarked = true;
      }
    }
    st.received = true;
    st.version = version;
    if (PROTOCOL === 'delta') (this.stream as DeltaClientStream | undefined)?.write({ type_url: type, response_nonce: nonce });
    else this.request(type);
    this.lastAckAt = Date.now();
    if (type === TypeUrl.Cluster) this.follow(TypeUrl.ClusterLoadAssignment, [...this.edsClusters]);
    if (type === TypeUrl.Listener) this.follow(TypeUrl.RouteConfiguration, [...this.listenerRoutes.values()].filter((r): r is string => !!r));
    if (PROTOCOL === 'delta' && (type === TypeUrl.Listener || type === TypeUrl.RouteConfiguration)) this.follow(TypeUrl.VirtualHost, this.vhdsRoutes.size ? ['*'] : []);
  }

  private setEndpoints(name: string, n: number): void {
    const before = this.endpoints.get(name);
    const want = this.expected(name);
    if (before !== undefined && before !== want) this.short--;
    this.endpoints.set(name, n);
    if (n !== want) this.short++;
  }

  /** Re-counts against the expectation, after the benchmark changed it (an endpoint joined). */
  recount(): void {
    this.short = 0;
    for (const [name, n] of this.endpoints) if (n !== this.expected(name)) this.short++;
  }

  private follow(type: XdsTypeUrl, names: string[]): void {
    const st = this.types.get(type)!;
    const want = [...new Set(names)].sort();
    if (want.length === st.names.length && want.every((n, i) => n === st.names[i])) return;
    const had = new Set(st.names);
    const dropped = st.names.filter((n) => !want.includes(n));
    st.names = want;
    for (const n of dropped) st.held.delete(n);
    if (type === TypeUrl.RouteConfiguration) for (const n of dropped) this.vhdsRoutes.delete(n);
    if (type === TypeUrl.ClusterLoadAssignment) {
      const keep = new Set(want);
      for (const n of [...this.endpoints.keys()]) {
        if (keep.has(n)) continue;
        if (this.endpoints.get(n) !== this.expected(n)) this.short--;
        this.endpoints.delete(n);
      }
    }
    if (PROTOCOL === 'delta') this.subscribe(type, want.filter((n) => !had.has(n)), dropped);
    else this.request(type);
  }
}
