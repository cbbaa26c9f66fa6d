// Span export over OTLP, configured as every OpenTelemetry SDK is: only when
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT says where (and
// OTEL_TRACES_EXPORTER is not `none`); protocol from OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL,
// http/protobuf by default, grpc or http/json; batching from OTEL_BSP_*. The exporters
// read the endpoint, headers and timeout variables themselves. Export never holds a
// request: spans wait in a bounded queue, and what does not fit, or what the collector
// does not take, is dropped and counted.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, ATTR_SERVICE_NAMESPACE, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import type { Context } from '@opentelemetry/api';
import { sdkSpanSink } from './proxy/span-sink';
import type { SpanSink } from './proxy/spans';

export type DropReason = 'queue_full' | 'export_failed';

export interface BatchOptions {
  maxQueueSize: number;
  maxExportBatchSize: number;
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
}

/** OpenTelemetry's BatchSpanProcessor defaults, overridden by the standard OTEL_BSP_* variables. */
export function batchOptionsFromEnv(env: Record<string, string | undefined>): BatchOptions {
  const num = (name: string, dflt: number, min: number): number => {
    const v = env[name]?.trim();
    if (!v) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name}=${v}: a whole number, at least ${min}`);
    return n;
  };
  const maxQueueSize = num('OTEL_BSP_MAX_QUEUE_SIZE', 2048, 1);
  return {
    maxQueueSize,
    maxExportBatchSize: Math.min(maxQueueSize, num('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, 1)),
    scheduledDelayMillis: num('OTEL_BSP_SCHEDULE_DELAY', 5000, 0),
    exportTimeoutMillis: num('OTEL_BSP_EXPORT_TIMEOUT', 30000, 1),
  };
}

/**
 * A BatchSpanProcessor whose queue bound is kept here, so every span it would drop is
 * counted (the SDK keeps that count to itself): a span is queued only while fewer than
 * maxQueueSize wait, and leaves the queue when the batch it is in goes to the exporter.
 * A batch the exporter could not deliver (collector down, refused, timed out) is
 * counted too.
 */
export function countedBatchProcessor(exporter: SpanExporter, o: BatchOptions, dropped: (reason: DropReason, n: number) => void): SpanProcessor {
  let waiting = 0;
  const counting: SpanExporter = {
    export(spans: ReadableSpan[], done: (r: ExportResult) => void) {
      waiting -= spans.length;
      exporter.export(spans, (r) => {
        if (r.code !== ExportResultCode.SUCCESS) dropped('export_failed', spans.length);
        done(r);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
  const batch = new BatchSpanProcessor(counting, o);
  let closed = false;
  return {
    onStart(span: Span, ctx: Context) {
      batch.onStart(span, ctx);
    },
    onEnd(span: ReadableSpan) {
      if (closed) return;
      if (waiting >= o.maxQueueSize) return dropped('queue_full', 1);
      waiting++;
      batch.onEnd(span);
    },
    forceFlush: () => batch.forceFlush(),
    shutdown: () => {
      closed = true;
      return batch.shutdown();
    },
  };
}

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

export interface OtlpTarget {
  endpoint: string;
  protocol: OtlpProtocol;
}

/** Where spans go, or undefined when the environment names no OTLP endpoint (spans are then off). */
export function otlpTargetFromEnv(env: Record<string, string | undefined>): OtlpTarget | undefined {
  const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').map((s) => s.trim().toLowerCase());
  if (exporters.includes('none')) return undefined;
  const bad = exporters.filter((e) => e !== 'otlp' && e !== '');
  if (bad.length) throw new Error(`OTEL_TRACES_EXPORTER=${env.OTEL_TRACES_EXPORTER}: ${bad.join(', ')} not supported by Tandem (otlp or none)`);
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!endpoint) return undefined;
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() || env.OTEL_EXPORTER_OTLP_PROTOCOL?.trim() || 'http/protobuf').toLowerCase();
  if (protocol !== 'http/protobuf' && protocol !== 'http/json' && protocol !== 'grpc') {
    throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported by Tandem (http/protobuf, http/json or grpc)`);
  }
  return { endpoint, protocol };
}

/** The exporter for a protocol; it reads the OTEL_EXPORTER_OTLP_* variables itself (endpoint, headers, timeout, TLS). */
export function otlpExporter(protocol: OtlpProtocol): SpanExporter {
  if (protocol === 'grpc') return new GrpcExporter();
  if (protocol === 'http/json') return new JsonExporter();
  return new ProtoExporter();
}

export interface Workload {
  service: string;
  namespace: string;
  version?: string;
  instanceId: string;
}

/**
 * The resource every span carries: service.name as Istio names a workload's traces
 * (`<service>.<namespace>`), unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say
 * otherwise (they win, as in every OpenTelemetry SDK).
 */
export function workloadResource(w: Workload, env: Record<string, string | undefined>): Resource {
  const own = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: `${w.service}.${w.namespace}`,
    [ATTR_SERVICE_NAMESPACE]: w.namespace,
    [ATTR_SERVICE_INSTANCE_ID]: w.instanceId,
    ...(w.version ? { [ATTR_SERVICE_VERSION]: w.version } : {}),
  });
  // envDetector reads process.env; a name given here must win the same way
  const fromEnv = detectResources({ detectors: [envDetector] });
  const name = env.OTEL_SERVICE_NAME?.trim();
  return own.merge(fromEnv).merge(name ? resourceFromAttributes({ [ATTR_SERVICE_NAME]: name }) : null);
}

export interface OtlpSpans {
  target: OtlpTarget;
  sink: SpanSink;
  /** exports what is queued, waiting at most `ms` */
  shutdown(ms: number): Promise<void>;
}

/** Span export as the environment configures it, or undefined when it names no endpoint. */
export function otlpSpansFromEnv(env: Record<string, string | undefined>, w: Workload, dropped: (reason: DropReason, n: number) => void): OtlpSpans | undefined {
  const target = otlpTargetFromEnv(env);
  if (!target) return undefined;
  const processor = countedBatchProcessor(otlpExporter(target.protocol), batchOptionsFromEnv(env), dropped);
  const sink = sdkSpanSink(workloadResource(w, env), processor);
  return {
    target,
    sink,
    async shutdown(ms) {
      let t: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (t = setTimeout(resolve, Math.max(0, ms))));
      try {
        await Promise.race([sink.shutdown().catch(() => undefined), late]);
      } finally {
        clearTimeout(t);
      }
    },
  };
}
