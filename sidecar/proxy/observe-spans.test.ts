import { describe, expect, it } from 'vitest';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { spansObserver } from './observe-spans';
import { sdkSpanSink } from './span-sink';
import { traceIds, type HopContext } from './trace-context';
import { NoRouteError } from './errors';
import type { Spans } from './spans';
import type { Observation } from './observe-metrics';
import type { Exchange } from './exchange';
import type { RequestInfo } from './request-info';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_ATTEMPT = '00f067aa0ba902b7';
const ME = 'spiffe://cluster.local/ns/default/sa/reviews';
const CALLER = 'spiffe://cluster.local/ns/default/sa/productpage';

function setup() {
  const exporter = new InMemorySpanExporter();
  const spans: Spans = {
    sink: sdkSpanSink(resourceFromAttributes({}), new SimpleSpanProcessor(exporter)),
    ids: traceIds(() => Buffer.from('0102030405060708', 'hex')),
    now: () => 1_700_000_000_010,
    principal: () => ME,
    attempted: new WeakSet(),
  };
  return { exporter, spans, observe: spansObserver(spans) };
}

const info = (method = 'GET'): RequestInfo => ({
  method,
  authority: 'reviews:9080',
  path: '/reviews/1',
  protocol: 'HTTP/2',
  header: (n) => ({ 'user-agent': 'curl/8' })[n],
  requestId: 'req-1',
  clientIp: '127.0.0.9',
  localIp: '127.0.0.1',
  hasBody: false,
});

function observation(direction: 'inbound' | 'outbound', hop: HopContext, o: Partial<Observation> = {}): Observation {
  const x = {
    started: 1_700_000_000_000,
    attempt: 1,
    info: info(),
    request: { method: 'GET', path: '/reviews/1', authority: 'reviews:9080', headers: {} },
    facts: { route: null, cluster: direction === 'inbound' ? 'inbound|app' : null, host: null, flags: [], attempts: 0, trace: hop },
  } as unknown as Exchange;
  return { direction, req: {} as Observation['req'], info: info(), conn: { mtls: true, peerPrincipal: CALLER }, x, status: 200, flags: '-', bytesSent: 10, durationMs: 10, ...o };
}

describe('span observer', () => {
  it('inbound: a SERVER span with the hop\'s id, the caller\'s attempt as parent, the caller\'s verified SPIFFE ID', () => {
    const { exporter, observe } = setup();
    observe(observation('inbound', { traceId: T, spanId: 'aaaaaaaaaaaaaaaa', parentSpanId: CALLER_ATTEMPT, sampled: true }));
    const [s] = exporter.getFinishedSpans();
    expect(s!.kind).toBe(SpanKind.SERVER);
    expect(s!.spanContext()).toMatchObject({ traceId: T, spanId: 'aaaaaaaaaaaaaaaa' });
    expect(s!.parentSpanContext?.spanId).toBe(CALLER_ATTEMPT);
    expect(s!.duration).toEqual([0, 10_000_000]);
    expect(s!.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/reviews/1',
      'url.scheme': 'http',
      'server.address': 'reviews',
      'server.port': 9080,
      'client.address': '127.0.0.9',
      'network.protocol.version': '2',
      'user_agent.original': 'curl/8',
      'http.response.status_code': 200,
      'tandem.peer.principal': CALLER,
      'tandem.local.principal': ME,
      'tandem.upstream.cluster': 'inbound|app',
      'tandem.request_id': 'req-1',
    });
  });

  it('inbound 5xx is an error with error.type the status; 4xx is not, on a server', () => {
    const { exporter, observe } = setup();
    const hop = { traceId: T, spanId: 'aaaaaaaaaaaaaaaa', sampled: true };
    observe(observation('inbound', hop, { status: 503 }));
    observe(observation('inbound', hop, { status: 404 }));
    const [a, b] = exporter.getFinishedSpans();
    expect(a!.attributes['error.type']).toBe('503');
    expect(a!.status.code).toBe(SpanStatusCode.ERROR);
    expect(b!.attributes['error.type']).toBeUndefined();
    expect(b!.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('outbound: only a request no attempt went out for gets a span, the proxy\'s answer, a root when the caller sent no context', () => {
    const { exporter, observe, spans } = setup();
    const hop = { traceId: T, spanId: 'bbbbbbbbbbbbbbbb', sampled: true };
    const attempted = observation('outbound', hop);
    spans.attempted.add(attempted.x!.facts);
    observe(attempted);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    observe(observation('outbound', hop, { status: 404, flags: 'NR', error: new NoRouteError('no route') }));
    const [s] = exporter.getFinishedSpans();
    expect(s!.kind).toBe(SpanKind.CLIENT);
    expect(s!.parentSpanContext).toBeUndefined();
    expect(s!.spanContext().spanId).toBe('bbbbbbbbbbbbbbbb');
    expect(s!.attributes).toMatchObject({ 'http.response.status_code': 404, 'error.type': 'NR', 'tandem.response_flags': 'NR', 'tandem.local.principal': ME });
    expect(s!.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'no route' });
  });

  it('unsampled: nothing', () => {
    const { exporter, observe } = setup();
    observe(observation('inbound', { traceId: T, spanId: 'aaaaaaaaaaaaaaaa', parentSpanId: CALLER_ATTEMPT, sampled: false }));
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });
});
