import { afterEach, describe, expect, it } from 'vitest';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { batchOptionsFromEnv, countedBatchProcessor, otlpTargetFromEnv, workloadResource, type DropReason } from './otlp-export';
import { sdkSpanSink } from './proxy/span-sink';
import type { FinishedSpan } from './proxy/spans';
import { SpanKinds, startHttpReceiver, type Receiver } from '../e2e/otlp-receiver';

const span = (n: number, parentSpanId?: string): FinishedSpan => ({
  kind: n % 2 ? 'client' : 'server',
  name: 'GET',
  traceId: `4bf92f3577b34da6a3ce929d0e0e47${String(n).padStart(2, '0')}`,
  spanId: `00f067aa0ba902${String(n).padStart(2, '0')}`,
  parentSpanId,
  startMs: 1_700_000_000_000.25,
  endMs: 1_700_000_000_003.75,
  attributes: { 'http.request.method': 'GET', 'http.response.status_code': 200, 'tandem.peer.principal': 'spiffe://cluster.local/ns/default/sa/reviews' },
});

const opts = { maxQueueSize: 4, maxExportBatchSize: 2, scheduledDelayMillis: 1, exportTimeoutMillis: 1000 };

function tally() {
  const n: Record<DropReason, number> = { queue_full: 0, export_failed: 0 };
  return { n, dropped: (r: DropReason, k: number) => (n[r] += k) };
}

describe('which exporter, from the environment', () => {
  it('nothing without an endpoint; http/protobuf by default; the traces variables win', () => {
    expect(otlpTargetFromEnv({})).toBeUndefined();
    expect(otlpTargetFromEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBeUndefined();
    expect(otlpTargetFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({ endpoint: 'http://c:4318', protocol: 'http/protobuf' });
    expect(otlpTargetFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' })).toEqual({
      endpoint: 'http://t:4317',
      protocol: 'grpc',
    });
    expect(otlpTargetFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
  });

  it('what Tandem cannot do is refused, not ignored', () => {
    expect(() => otlpTargetFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift' })).toThrow(/not supported by Tandem/);
    expect(() => otlpTargetFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/not supported by Tandem/);
    expect(() => batchOptionsFromEnv({ OTEL_BSP_MAX_QUEUE_SIZE: 'lots' })).toThrow(/OTEL_BSP_MAX_QUEUE_SIZE/);
  });

  it('batching: the SDK defaults, OTEL_BSP_* over them, a batch never larger than the queue', () => {
    expect(batchOptionsFromEnv({})).toEqual({ maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMillis: 5000, exportTimeoutMillis: 30000 });
    expect(batchOptionsFromEnv({ OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_SCHEDULE_DELAY: '50' })).toMatchObject({ maxQueueSize: 100, maxExportBatchSize: 100, scheduledDelayMillis: 50 });
  });

  it('service.name is <service>.<namespace> unless OTEL_SERVICE_NAME says', () => {
    const w = { service: 'reviews', namespace: 'bookinfo', version: 'v2', instanceId: 'reviews-v2.host.1' };
    expect(workloadResource(w, {}).attributes).toMatchObject({ 'service.name': 'reviews.bookinfo', 'service.namespace': 'bookinfo', 'service.version': 'v2' });
    expect(workloadResource(w, { OTEL_SERVICE_NAME: 'ratings-ui' }).attributes['service.name']).toBe('ratings-ui');
  });
});

describe('the bounded batch', () => {
  it('a collector that refuses: every span of the failed batches counted, none held', async () => {
    const failing: SpanExporter = {
      export: (_s: ReadableSpan[], done: (r: ExportResult) => void) => done({ code: ExportResultCode.FAILED, error: new Error('ECONNREFUSED') }),
      shutdown: async () => undefined,
    };
    const t = tally();
    const sink = sdkSpanSink(resourceFromAttributes({}), countedBatchProcessor(failing, opts, t.dropped));
    for (let i = 0; i < 3; i++) sink.record(span(i));
    // the SDK reports the failed flush; the sidecar only counts it
    await sink.shutdown().catch(() => undefined);
    expect(t.n).toEqual({ queue_full: 0, export_failed: 3 });
  });

  it('a collector that hangs: the queue holds maxQueueSize spans, the rest are dropped at once and counted', async () => {
    const held: ((r: ExportResult) => void)[] = [];
    const hanging: SpanExporter = { export: (_s, done) => void held.push(done), shutdown: async () => undefined };
    const t = tally();
    const sink = sdkSpanSink(resourceFromAttributes({}), countedBatchProcessor(hanging, { ...opts, maxExportBatchSize: 4, scheduledDelayMillis: 60_000 }, t.dropped));
    for (let i = 0; i < 10; i++) sink.record(span(i));
    // four fill the queue and go out as one batch, which hangs; four more fill it again; two find it full
    expect(t.n.queue_full).toBe(2);
    expect(held).toHaveLength(1);
    for (const done of held) done({ code: ExportResultCode.SUCCESS });
  });
});

describe('OTLP/HTTP protobuf on the wire', () => {
  let receiver: Receiver | undefined;
  afterEach(async () => receiver?.close());

  it('the ids, kinds, times and attributes recorded are those a collector decodes', async () => {
    receiver = await startHttpReceiver();
    const t = tally();
    const exporter = new ProtoExporter({ url: `${receiver.url}/v1/traces` });
    const sink = sdkSpanSink(resourceFromAttributes({ 'service.name': 'reviews.default' }), countedBatchProcessor(exporter, opts, t.dropped));
    sink.record(span(1, 'b7ad6b7169203331'));
    sink.record(span(2));
    await sink.shutdown();
    expect(receiver.contentTypes).toEqual(['application/x-protobuf']);
    const [a, b] = [...receiver.spans].sort((x, y) => x.spanId.localeCompare(y.spanId));
    expect(a).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4701', spanId: '00f067aa0ba90201', parentSpanId: 'b7ad6b7169203331', kind: SpanKinds.CLIENT, name: 'GET' });
    expect(b).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4702', spanId: '00f067aa0ba90202', parentSpanId: '', kind: SpanKinds.SERVER });
    expect(a!.endNs - a!.startNs).toBe(3_500_000n);
    expect(a!.attributes).toEqual({ 'http.request.method': 'GET', 'http.response.status_code': 200, 'tandem.peer.principal': 'spiffe://cluster.local/ns/default/sa/reviews' });
    expect(a!.resource['service.name']).toBe('reviews.default');
    expect(t.n).toEqual({ queue_full: 0, export_failed: 0 });
  });
});
