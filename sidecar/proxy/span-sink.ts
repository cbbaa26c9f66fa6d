// The OpenTelemetry SDK behind the spans: a span is recorded with the ids trace-context.ts
// put on the wire (an IdGenerator that hands the SDK the id it is about to use), so a
// backend that logs its traceparent joins the exported trace exactly. Loaded only when
// spans are exported.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import { AlwaysOnSampler, BasicTracerProvider, type IdGenerator, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Resource } from '@opentelemetry/resources';
import type { SpanSink } from './spans';

/** Hands the SDK the ids of the span being recorded, set just before startSpan reads them. */
class GivenIds implements IdGenerator {
  traceId = '';
  spanId = '';
  generateTraceId(): string {
    return this.traceId;
  }
  generateSpanId(): string {
    return this.spanId;
  }
}

/**
 * A sink over the OpenTelemetry SDK. Sampling was decided by the trace layer (from
 * OTEL_TRACES_SAMPLER, the same decision the sampled flag carries on): only sampled hops
 * reach the sink, so the SDK's own sampler is always_on and agrees with it.
 */
export function sdkSpanSink(resource: Resource, processor: SpanProcessor): SpanSink {
  const ids = new GivenIds();
  const provider = new BasicTracerProvider({ resource, idGenerator: ids, sampler: new AlwaysOnSampler(), spanProcessors: [processor] });
  const tracer = provider.getTracer('tandem-sidecar');
  return {
    record(s) {
      ids.traceId = s.traceId;
      ids.spanId = s.spanId;
      const parent = s.parentSpanId
        ? trace.setSpanContext(ROOT_CONTEXT, { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true })
        : ROOT_CONTEXT;
      const span = tracer.startSpan(s.name, { kind: s.kind === 'server' ? SpanKind.SERVER : SpanKind.CLIENT, startTime: s.startMs, attributes: s.attributes }, parent);
      if (s.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: s.error });
      span.end(s.endMs);
    },
    shutdown: () => provider.shutdown(),
  };
}
