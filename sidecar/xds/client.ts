// The sidecar's ADS client: subscribes CDS and LDS as wildcards, follows them with EDS
// and RDS for the names they reference, ACKs what it applies, NACKs (per resource,
// naming the field) what it cannot, keeps the last good resources, and reconnects with
// jittered exponential backoff when the stream ends.
import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { adsService, type AdsClientStream, type DiscoveryResponse, type XdsNode } from '../../proto/ads';
import { TypeUrl, isXdsType, shortName, type XdsTypeUrl } from '../../proto/type-urls';
import type { Logger } from '../../common/log';
import { MAX_XDS_MESSAGE_BYTES } from '../../proto/limits';
import { decoders, nameOf, DecodeError } from '../../proto/decode/decode';
import type { ClusterModel, EndpointsModel, ListenerModel, RouteConfigModel } from '../../proto/decode/model';
import { Warming } from './warming';

export interface Resources {
  clusters: Map<string, ClusterModel>;
  endpoints: Map<string, EndpointsModel>;
  listeners: Map<string, ListenerModel>;
  routes: Map<string, RouteConfigModel>;
}

export interface TypeStatus {
  version: string;
  nonce: string;
  names: string[];
  /** resource name -> version it was accepted at */
  resourceVersions: Map<string, string>;
  received: boolean;
  lastError?: string;
}

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  random: () => number;
}

const ORDER: XdsTypeUrl[] = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];
const FIELD: Record<XdsTypeUrl, keyof Resources> = {
  [TypeUrl.Cluster]: 'clusters',
  [TypeUrl.ClusterLoadAssignment]: 'endpoints',
  [TypeUrl.Listener]: 'listeners',
  [TypeUrl.RouteConfiguration]: 'routes',
};
const ADS_CLIENT = grpc.makeGenericClientConstructor(adsService, 'AggregatedDiscoveryService');

export class XdsClient extends EventEmitter {
  readonly resources: Resources = { clusters: new Map(), endpoints: new Map(), listeners: new Map(), routes: new Map() };
  readonly status = new Map<XdsTypeUrl, TypeStatus>(
    ORDER.map((t) => [t, { version: '', nonce: '', names: [], resourceVersions: new Map(), received: false }]),
  );
  connected = false;
  private client?: grpc.Client;
  private stream?: AdsClientStream;
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private sentNode = false;
  private readonly warming = new Warming();
  private warmTimer?: NodeJS.Timeout;

  constructor(
    private readonly target: string,
    /** read for every new channel: a rotated client certificate applies to the next connection */
    private readonly creds: grpc.ChannelCredentials | (() => grpc.ChannelCredentials),
    /** a function when part of it (the admin address) is known only once listeners are bound */
    private readonly node: XdsNode | (() => XdsNode),
    private readonly log: Logger,
    private readonly backoff: BackoffPolicy = { baseMs: 200, maxMs: 5000, random: Math.random },
    private readonly channelOptions: grpc.ChannelOptions = {},
  ) {
    super();
  }

  start(): void {
    this.client = this.channel();
    this.connect();
  }

  private channel(): grpc.Client {
    // grpc-js's own reconnect backoff grows to 120 s; the contract says at most 5 s apart
    const creds = typeof this.creds === 'function' ? this.creds() : this.creds;
    return new ADS_CLIENT(this.target, creds, {
      'grpc.initial_reconnect_backoff_ms': this.backoff.baseMs,
      'grpc.max_reconnect_backoff_ms': this.backoff.maxMs,
      // the channel's own subchannel, so that a new channel really starts afresh (scheduleReconnect)
      'grpc.use_local_subchannel_pool': 1,
      // the figure the control plane measures every response against before it accepts a config
      'grpc.max_receive_message_length': MAX_XDS_MESSAGE_BYTES,
      ...this.channelOptions,
    });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.warmTimer);
    clearTimeout(this.timer);
    this.stream?.cancel();
    this.client?.close();
  }

  private connect(): void {
    if (this.stopped || !this.client) return;
    const stream = (this.client as unknown as { StreamAggregatedResources(): AdsClientStream }).StreamAggregatedResources();
    this.stream = stream;
    this.sentNode = false;
    // nonces belong to a stream; a new stream starts without one
    for (const st of this.status.values()) st.nonce = '';
    let ended = false;
    const onEnd = (why: string) => {
      if (ended) return;
      ended = true;
      if (this.connected) this.log.warn(`xDS stream to ${this.target} ended (${why}); keeping the last good config`);
      this.connected = false;
      this.emit('disconnected');
      this.scheduleReconnect();
    };
    const up = () => {
      if (this.connected) return;
      this.connected = true;
      this.attempt = 0;
      this.log.info(`xDS stream to ${this.target} up`);
      this.emit('connected');
    };
    // The control plane sends headers as soon as it takes a stream, so a reconnect that
    // brings no new config (the versions we hold are current) still counts as up.
    stream.on('metadata', up);
    stream.on('data', (res: DiscoveryResponse) => {
      up();
      this.onResponse(res);
    });
    stream.on('error', (err: Error) => onEnd(err.message));
    stream.on('end', () => onEnd('closed by the control plane'));
    // A reconnecting client names the versions it holds, so unchanged config is not re-sent.
    this.request(TypeUrl.Cluster);
    this.request(TypeUrl.Listener);
    for (const t of [TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration] as const) {
      if (this.status.get(t)!.names.length) this.request(t);
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    // full jitter: uniform in [0, min(max, base * 2^attempt)]
    const cap = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** this.attempt++);
    const delay = Math.max(50, Math.floor(this.backoff.random() * cap));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // A channel whose connection failed fails new calls at once until grpc-js's own backoff
      // retries it, so a retry on it could be no attempt at all and a control plane that is
      // back could wait ~10 s for its sidecars. A new channel makes every retry a real one.
      if (this.stopped) return;
      this.client?.close();
      this.client = this.channel();
      this.connect();
    }, delay);
  }

  private request(type: XdsTypeUrl, errorDetail?: string): void {
    const st = this.status.get(type)!;
    this.stream?.write({
      version_info: st.version,
      node: this.sentNode ? undefined : typeof this.node === 'function' ? this.node() : this.node,
      resource_names: st.names,
      type_url: type,
      response_nonce: st.nonce,
      ...(errorDetail ? { error_detail: { code: 3, message: errorDetail } } : {}),
    });
    this.sentNode = true;
  }

  private onResponse(res: DiscoveryResponse): void {
    const type = res.type_url;
    if (!isXdsType(type)) return;
    const st = this.status.get(type)!;
    st.nonce = res.nonce;
    const decode = decoders[type] as (a: DiscoveryResponse['resources'][number]) => ClusterModel | EndpointsModel | ListenerModel | RouteConfigModel;
    const target = this.resources[FIELD[type]] as Map<string, unknown>;
    const errors: string[] = [];
    const seen = new Set<string>();
    (res.resources ?? []).forEach((any, i) => {
      try {
        const m = decode(any);
        const name = nameOf(m);
        seen.add(name);
        // routes go in force once the clusters they use are warm (make before break)
        if (type === TypeUrl.RouteConfiguration) this.warming.offer(this.resources, m as RouteConfigModel);
        else target.set(name, m);
        if (type === TypeUrl.Cluster) this.warming.revived(name);
        st.resourceVersions.set(name, res.version_info);
      } catch (err) {
        if (err instanceof DecodeError) seen.add(err.resource);
        errors.push(err instanceof DecodeError ? err.message : `resources[${i}]: ${(err as Error).message}`);
      }
    });
    // State of the World: a listener or cluster missing from the response is gone.
    // Routes and endpoints no longer subscribed are dropped by the subscription update.
    if (type === TypeUrl.Listener) {
      for (const name of [...target.keys()]) if (!seen.has(name)) { target.delete(name); st.resourceVersions.delete(name); }
    }
    if (type === TypeUrl.Cluster) {
      const removed = new Map<string, ClusterModel>();
      for (const [name, c] of this.resources.clusters) if (!seen.has(name)) { removed.set(name, c); this.resources.clusters.delete(name); st.resourceVersions.delete(name); }
      if (removed.size) this.warming.clustersReplaced(this.resources, removed);
    }
    if (type === TypeUrl.Cluster || type === TypeUrl.ClusterLoadAssignment) this.warming.promote(this.resources);
    this.scheduleWarming();
    st.received = true;
    if (errors.length) {
      st.lastError = errors.join('; ');
      this.log.warn(`NACK ${shortName[type]} version ${res.version_info}: ${st.lastError}`);
      this.emit('nack', type);
      this.request(type, st.lastError);
    } else {
      st.lastError = undefined;
      st.version = res.version_info;
      this.request(type);
      this.emit('ack', type);
    }
    // only EDS clusters get their endpoints by EDS (DNS and ORIGINAL_DST ones carry them or need none)
    if (type === TypeUrl.Cluster) this.follow(TypeUrl.ClusterLoadAssignment, [...this.resources.clusters.values()].filter((c) => !c.discovery).map((c) => c.name));
    if (type === TypeUrl.Listener) this.follow(TypeUrl.RouteConfiguration, [...this.resources.listeners.values()].flatMap((l) => (l.kind === 'outbound' ? [l.routeConfigName] : [])));
    this.emit('update', type);
  }

  // a route still waiting for its clusters is put in force when its grace runs out
  private scheduleWarming(): void {
    clearTimeout(this.warmTimer);
    const at = this.warming.waiting;
    if (at === undefined) return;
    this.warmTimer = setTimeout(() => {
      if (this.warming.promote(this.resources)) this.emit('update', TypeUrl.RouteConfiguration);
      this.scheduleWarming();
    }, Math.max(0, at - Date.now()) + 1);
    this.warmTimer.unref();
  }

  private follow(type: XdsTypeUrl, names: string[]): void {
    const st = this.status.get(type)!;
    const want = [...new Set(names)].sort();
    if (want.length === st.names.length && want.every((n, i) => n === st.names[i])) return;
    if (type === TypeUrl.RouteConfiguration) for (const n of st.names) if (!want.includes(n)) this.warming.forget(n);
    st.names = want;
    const target = this.resources[FIELD[type]] as Map<string, unknown>;
    for (const n of [...target.keys()]) if (!want.includes(n)) { target.delete(n); st.resourceVersions.delete(n); }
    this.request(type);
  }
}
