// The sidecar's ADS client: subscribes CDS and LDS as wildcards, follows them with EDS
// and RDS for the names they reference, ACKs what it applies, NACKs (per resource,
// naming the field) what it cannot, keeps the last good resources, and reconnects with
// jittered exponential backoff when the stream ends. It speaks Delta xDS
// (DeltaAggregatedResources: only what changed is sent, and a reconnect names the version
// of each resource it holds) or State of the World; what it holds, and how a resource is
// applied, is the same for both (resources.ts). Over Delta it declares VHDS (node-meta.ts
// VHDS_FEATURE): a route configuration that says `vhds` is followed by a wildcard
// subscription to VirtualHost, and a route edit brings only the virtual hosts it changed.
import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import {
  adsService,
  type AdsClientStream,
  type DeltaClientStream,
  type DeltaDiscoveryResponse,
  type DiscoveryResponse,
  type XdsNode,
} from '../../proto/ads';
import { TypeUrl, isXdsType, shortName, type XdsTypeUrl } from '../../proto/type-urls';
import { leavingNode, withVhds } from '../../proto/node-meta';
import { morePartsFollow } from '../../proto/delta-parts';
import type { Logger } from '../../common/log';
import { MAX_XDS_MESSAGE_BYTES } from '../../proto/limits';
import { ResourceStore, type Incoming, type Resources, type TypeStatus } from './resources';

export type { InForce, Resources, TypeStatus } from './resources';

/** Delta (incremental) xDS, or State of the World */
export type XdsProtocol = 'delta' | 'sotw';

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  random: () => number;
}

const ADS_CLIENT = grpc.makeGenericClientConstructor(adsService, 'AggregatedDiscoveryService');
type Stream = AdsClientStream | DeltaClientStream;

/** how long a leaving sidecar waits for the control plane to close its side of the stream */
const GOODBYE_MS = 1000;

export class XdsClient extends EventEmitter {
  private readonly store = new ResourceStore(() => this.emit('update', TypeUrl.RouteConfiguration));
  readonly resources: Resources = this.store.resources;
  readonly status: Map<XdsTypeUrl, TypeStatus> = this.store.status;
  connected = false;
  private client?: grpc.Client;
  private stream?: Stream;
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private sentNode = false;
  /** types a part of whose push in progress was NACKed */
  private readonly refusedParts = new Set<XdsTypeUrl>();

  constructor(
    private readonly target: string,
    /** read for every new channel: a rotated client certificate applies to the next connection */
    private readonly creds: grpc.ChannelCredentials | (() => grpc.ChannelCredentials),
    /** a function when part of it (the admin address) is known only once listeners are bound */
    private readonly node: XdsNode | (() => XdsNode),
    private readonly log: Logger,
    private readonly backoff: BackoffPolicy = { baseMs: 200, maxMs: 5000, random: Math.random },
    private readonly channelOptions: grpc.ChannelOptions = {},
    /** Delta by default; a control plane that does not serve it (UNIMPLEMENTED) is spoken State of the World */
    public protocol: XdsProtocol = 'delta',
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

  /**
   * Leaves: a last request says goodbye (proto/node-meta.ts: this endpoint leaves EDS now; a
   * stream that just breaks is waited for, as a sidecar coming back), the stream is
   * half-closed, and cut once the control plane has closed its side, or after GOODBYE_MS.
   */
  stop(): void {
    this.stopped = true;
    this.store.stop();
    clearTimeout(this.timer);
    const stream = this.stream;
    const client = this.client;
    if (!stream) return void client?.close();
    let done = false;
    const cut = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.cancel();
      client?.close();
    };
    const timer = setTimeout(cut, GOODBYE_MS);
    timer.unref();
    stream.once('status', cut);
    stream.once('error', cut);
    const goodbye = { node: leavingNode(this.currentNode()), type_url: TypeUrl.Cluster };
    if (this.protocol === 'delta') (stream as DeltaClientStream).write(goodbye);
    else (stream as AdsClientStream).write(goodbye);
    stream.end();
  }

  private connect(): void {
    if (this.stopped || !this.client) return;
    const calls = this.client as unknown as { StreamAggregatedResources(): AdsClientStream; DeltaAggregatedResources(): DeltaClientStream };
    const stream: Stream = this.protocol === 'delta' ? calls.DeltaAggregatedResources() : calls.StreamAggregatedResources();
    this.stream = stream;
    this.sentNode = false;
    // nonces belong to a stream; a new stream starts without one, and without the parts of a
    // push the old one did not finish (what it names as held on reconnecting is what is in force)
    for (const st of this.status.values()) st.nonce = '';
    this.store.dropHeld();
    this.refusedParts.clear();
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
    stream.on('data', (res: DiscoveryResponse | DeltaDiscoveryResponse) => {
      up();
      if (this.protocol === 'delta') this.onDeltaResponse(res as DeltaDiscoveryResponse);
      else this.onResponse(res as DiscoveryResponse);
    });
    stream.on('error', (err: grpc.ServiceError) => {
      if (err.code === grpc.status.UNIMPLEMENTED && this.protocol === 'delta') {
        // an older control plane: what the sidecar holds is the same either way
        this.log.warn(`the control plane at ${this.target} does not serve Delta xDS; speaking State of the World`);
        this.protocol = 'sotw';
        this.attempt = 0;
      }
      onEnd(err.message);
    });
    stream.on('end', () => onEnd('closed by the control plane'));
    // A reconnecting client names the versions it holds, so unchanged config is not re-sent.
    for (const t of [TypeUrl.Cluster, TypeUrl.Listener] as const) {
      if (this.protocol === 'delta') this.subscribe(t, ['*'], [], true);
      else this.request(t);
    }
    for (const t of [TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration, TypeUrl.VirtualHost] as const) {
      const names = this.status.get(t)!.names;
      if (!names.length) continue;
      if (this.protocol === 'delta') this.subscribe(t, names, [], true);
      else if (t !== TypeUrl.VirtualHost) this.request(t);
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

  private currentNode(): XdsNode {
    return typeof this.node === 'function' ? this.node() : this.node;
  }

  private nodeOnce(): XdsNode | undefined {
    const node = this.sentNode ? undefined : this.currentNode();
    this.sentNode = true;
    // VHDS is Delta xDS only: over State of the World the whole route table comes
    return node && this.protocol === 'delta' ? withVhds(node) : node;
  }

  /** State of the World: the names subscribed, the version held, the nonce answered. */
  private request(type: XdsTypeUrl, errorDetail?: string): void {
    const st = this.status.get(type)!;
    (this.stream as AdsClientStream | undefined)?.write({
      version_info: st.version,
      node: this.nodeOnce(),
      resource_names: st.names,
      type_url: type,
      response_nonce: st.nonce,
      ...(errorDetail ? { error_detail: { code: 3, message: errorDetail } } : {}),
    });
  }

  /** Delta: a change of subscription; a stream's first request of a type names what is held. */
  private subscribe(type: XdsTypeUrl, add: string[], drop: string[], first = false): void {
    const held = this.status.get(type)!.resourceVersions;
    (this.stream as DeltaClientStream | undefined)?.write({
      node: this.nodeOnce(),
      type_url: type,
      resource_names_subscribe: add,
      resource_names_unsubscribe: drop,
      ...(first && held.size ? { initial_resource_versions: Object.fromEntries(held) } : {}),
    });
  }

  /** Delta: the ACK (or, with errors, the NACK) of a response. */
  private answer(type: XdsTypeUrl, nonce: string, errorDetail?: string): void {
    (this.stream as DeltaClientStream | undefined)?.write({
      type_url: type,
      response_nonce: nonce,
      ...(errorDetail ? { error_detail: { code: 3, message: errorDetail } } : {}),
    });
  }

  private onResponse(res: DiscoveryResponse): void {
    const type = res.type_url;
    if (!isXdsType(type)) return;
    const st = this.status.get(type)!;
    st.nonce = res.nonce;
    const errors = this.store.apply(type, (res.resources ?? []).map((any) => ({ any, version: res.version_info })));
    if (errors.length) this.request(type, this.rejected(type, res.version_info, errors));
    else {
      st.version = res.version_info;
      this.request(type);
    }
    this.applied(type, errors);
  }

  private onDeltaResponse(res: DeltaDiscoveryResponse): void {
    const type = res.type_url;
    if (!isXdsType(type)) return;
    const st = this.status.get(type)!;
    st.nonce = res.nonce;
    const incoming: Incoming[] = (res.resources ?? []).flatMap((r) => (r.resource ? [{ any: r.resource, version: r.version ?? '' }] : []));
    // a part with more to follow is answered now, on its own, and held until the last one
    const more = morePartsFollow(res.system_version_info);
    const errors = this.store.apply(type, incoming, res.removed_resources ?? [], more);
    const version = res.system_version_info ?? '';
    if (errors.length) this.answer(type, res.nonce, this.rejected(type, version, errors));
    else {
      if (!more) st.version = version;
      this.answer(type, res.nonce);
    }
    this.applied(type, errors, more);
  }

  private rejected(type: XdsTypeUrl, version: string, errors: string[]): string {
    const st = this.status.get(type)!;
    st.lastError = errors.join('; ');
    this.log.warn(`NACK ${shortName[type]} version ${version}: ${st.lastError}`);
    return st.lastError;
  }

  /**
   * After a response was applied (and answered): events, and EDS and RDS follow CDS and LDS.
   * `held`: a part of a push held for its last one, nothing of which is in force yet.
   */
  private applied(type: XdsTypeUrl, errors: string[], held = false): void {
    if (errors.length) this.emit('nack', type);
    else {
      // a part of the same push refused stays the last error: its last part's ACK took only itself
      if (!this.refusedParts.has(type)) this.status.get(type)!.lastError = undefined;
      this.emit('ack', type);
    }
    if (held) {
      if (errors.length) this.refusedParts.add(type);
      return;
    }
    this.refusedParts.delete(type);
    if (type === TypeUrl.Cluster) this.follow(TypeUrl.ClusterLoadAssignment, this.store.referenced(TypeUrl.ClusterLoadAssignment));
    if (type === TypeUrl.Listener) this.follow(TypeUrl.RouteConfiguration, this.store.referenced(TypeUrl.RouteConfiguration));
    if (type === TypeUrl.Listener || type === TypeUrl.RouteConfiguration) this.follow(TypeUrl.VirtualHost, this.store.referenced(TypeUrl.VirtualHost));
    this.emit('update', type);
  }

  private follow(type: XdsTypeUrl, names: string[]): void {
    const change = this.store.follow(type, names);
    if (!change) return;
    if (this.protocol === 'delta') this.subscribe(type, change.added, change.removed);
    else if (type !== TypeUrl.VirtualHost) this.request(type);
  }
}
