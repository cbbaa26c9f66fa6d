import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { attemptSpanLayer } from './spans';
import { retryLayer, RetryBudgets } from './retry';
import { compose, type Exchange, type Handler } from '../exchange';
import { ConnectFailureError } from '../errors';
import { Cancel } from '../cancel';
import { propagate, traceIds, type HopContext } from '../trace-context';
import { sdkSpanSink } from '../span-sink';
import type { Spans } from '../spans';
import type { UpstreamResponse } from '../dispatch';
import type { RetryOn, RetryPolicyModel } from '../../../proto/decode/model';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER = '00f067aa0ba902b7';
const ME = 'spiffe://cluster.local/ns/default/sa/productpage';
const PEER = 'spiffe://cluster.local/ns/default/sa/reviews';

function counterIds() {
  let n = 0;
  return traceIds((len) => {
    const b = Buffer.alloc(len);
    b.writeUInt32BE(++n, len - 4);
    return b;
  });
}

function setup() {
  const exporter = new InMemorySpanExporter();
  const ids = counterIds();
  let clock = 1_700_000_000_000;
  const spans: Spans = {
    sink: sdkSpanSink(resourceFromAttributes({ 'service.name': 'productpage.default' }), new SimpleSpanProcessor(exporter)),
    ids,
    now: () => (clock += 1.5),
    principal: () => ME,
    attempted: new WeakSet(),
  };
  return { exporter, spans, ids };
}

const policy = (on: RetryOn[]): RetryPolicyModel => ({ retryOn: new Set(on), numRetries: 2, perTryTimeoutMs: 0, retriableStatusCodes: [], backoff: { baseMs: 1, maxMs: 2 } });

function exchange(headers: Record<string, string>, ids: ReturnType<typeof counterIds>, retry?: RetryPolicyModel, sampled = true): Exchange {
  const ctl = new Cancel();
  const h = { ...headers };
  const hop = propagate(h, ids, () => sampled).hop;
  return {
    info: { protocol: 'HTTP/1.1' } as Exchange['info'],
    conn: { mtls: false },
    started: Date.now(),
    rt: {} as Exchange['rt'],
    request: { method: 'GET', path: '/reviews/1?x=1', authority: 'reviews:9080', headers: h },
    body: null,
    signal: ctl,
    abort: (r) => ctl.abort(r),
    attempt: 1,
    route: { model: { retry } } as unknown as Exchange['route'],
    cluster: { endpoints: [], model: { name: 'outbound|9080||reviews.default.svc.cluster.local', mesh: true, limits: {} } } as unknown as Exchange['cluster'],
    endpoint: { address: '10.0.0.7', port: 15006, identity: PEER } as unknown as Exchange['endpoint'],
    responseOps: [],
    facts: { route: 'reviews', cluster: 'outbound|9080||reviews.default.svc.cluster.local', host: '10.0.0.7:15006', flags: [], attempts: 0, trace: hop },
    cleanup: [],
  };
}

/** answers each attempt from a script, remembering the traceparent it was sent with */
function scripted(outcomes: (number | Error)[]) {
  const sent: string[] = [];
  const h: Handler = async (x) => {
    sent.push(String(x.request.headers.traceparent));
    const o = outcomes[sent.length - 1] ?? 200;
    if (o instanceof Error) throw o;
    const body = new PassThrough();
    return { status: o, headers: {}, body, trailers: Promise.resolve(undefined) } satisfies UpstreamResponse;
  };
  return { h, sent };
}

const consume = async (r: UpstreamResponse) => {
  r.body.resume();
  (r.body as PassThrough).end();
  await new Promise((resolve) => r.body.once('close', resolve));
};
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe('CLIENT span per upstream attempt', () => {
  it('one attempt: its span id is the one on the wire, its parent the caller\'s span, HTTP conventions and both SPIFFE IDs', async () => {
    const { exporter, spans, ids } = setup();
    const { h, sent } = scripted([200]);
    const x = exchange({ traceparent: `00-${T}-${CALLER}-01` }, ids);
    await consume(await compose([attemptSpanLayer(spans)], h)(x));
    const [s] = exporter.getFinishedSpans();
    const hop = x.facts.trace as HopContext;
    expect(exporter.getFinishedSpans()).toHaveLength(1);
    expect(s!.kind).toBe(SpanKind.CLIENT);
    expect(s!.spanContext().traceId).toBe(T);
    expect(s!.spanContext().spanId).toBe(hop.spanId);
    expect(sent[0]).toBe(`00-${T}-${hop.spanId}-01`);
    expect(parentOf(s!)).toBe(CALLER);
    expect(s!.name).toBe('GET');
    expect(s!.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/reviews/1',
      'url.query': 'x=1',
      'url.full': 'http://reviews:9080/reviews/1?x=1',
      'server.address': 'reviews',
      'server.port': 9080,
      'network.peer.address': '10.0.0.7',
      'network.protocol.version': '1.1', // an HTTP/1.1 caller to an HTTP port crosses as HTTP/1.1
      'http.response.status_code': 200,
      'tandem.upstream.cluster': 'outbound|9080||reviews.default.svc.cluster.local',
      'tandem.peer.principal': PEER,
      'tandem.local.principal': ME,
      'tandem.response_flags': '-',
    });
    expect(s!.attributes['error.type']).toBeUndefined();
    expect(s!.status.code).toBe(SpanStatusCode.UNSET);
    expect(s!.resource.attributes['service.name']).toBe('productpage.default');
  });

  it('retries are attempts: sibling spans, each id the traceparent that attempt carried, the failed one an error', async () => {
    const { exporter, spans, ids } = setup();
    const { h, sent } = scripted([503, new ConnectFailureError('connection refused'), 200]);
    const x = exchange({ traceparent: `00-${T}-${CALLER}-01`, 'x-b3-traceid': T, 'x-b3-spanid': CALLER, 'x-b3-sampled': '1' }, ids, policy(['5xx', 'connect-failure']));
    const chain = compose([retryLayer(new RetryBudgets(), () => 0), attemptSpanLayer(spans)], h);
    await consume(await chain(x));
    const got = exporter.getFinishedSpans();
    expect(got).toHaveLength(3);
    const wire = sent.map((tp) => tp.split('-')[2]);
    expect(new Set(wire).size).toBe(3);
    expect(got.map((s) => s.spanContext().spanId).sort()).toEqual([...wire].sort());
    expect(wire[0]).toBe(x.facts.trace!.spanId);
    for (const s of got) {
      expect(s.spanContext().traceId).toBe(T);
      expect(parentOf(s)).toBe(CALLER);
    }
    const byId = new Map(got.map((s) => [s.spanContext().spanId, s]));
    const [first, second, third] = wire.map((id) => byId.get(id)!);
    expect(first!.attributes).toMatchObject({ 'http.response.status_code': 503, 'error.type': '503' });
    expect(first!.attributes['http.request.resend_count']).toBeUndefined();
    expect(first!.status.code).toBe(SpanStatusCode.ERROR);
    expect(second!.attributes).toMatchObject({ 'error.type': 'UF', 'tandem.response_flags': 'UF', 'http.request.resend_count': 1 });
    expect(second!.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'connection refused' });
    expect(third!.attributes).toMatchObject({ 'http.response.status_code': 200, 'http.request.resend_count': 2 });
  });

  it('an unsampled hop records nothing and leaves the headers alone', async () => {
    const { exporter, spans, ids } = setup();
    const { h, sent } = scripted([200]);
    const x = exchange({ traceparent: `00-${T}-${CALLER}-00` }, ids, undefined, false);
    await consume(await compose([attemptSpanLayer(spans)], h)(x));
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(sent[0]).toBe(`00-${T}-${x.facts.trace!.spanId}-00`);
  });
});
