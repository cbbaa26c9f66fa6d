// The benchmark's OTLP/HTTP trace sink: a node:http server that answers 200 to
// POST /v1/traces, as a collector would, and keeps the bodies. They are decoded only when
// asked, after the measured runs, so the sink costs the shared machine next to nothing
// while the sidecars export; the decoding (protobufjs, the OTLP trace fields a span needs,
// numbered as in opentelemetry-proto v1) is what shows the spans really arrived.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as protobuf from 'protobufjs';

const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; }
}
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  bytes parent_span_id = 4;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  Status status = 15;
}
message ScopeSpans { repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;

const Request = protobuf.parse(OTLP_TRACE_PROTO).root.lookupType('otlp.ExportTraceServiceRequest');

export type AttrValue = string | number | boolean;

export interface SinkSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 2 SERVER, 3 CLIENT */
  kind: number;
  durationUs: number;
  status: number;
  attributes: Record<string, AttrValue>;
  resource: Record<string, AttrValue>;
}

interface KV {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: string; doubleValue?: number };
}
interface RawSpan {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  parentSpanId?: Uint8Array;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string;
  endTimeUnixNano?: string;
  attributes?: KV[];
  status?: { code?: number };
}
interface RawRequest {
  resourceSpans?: { resource?: { attributes?: KV[] }; scopeSpans?: { spans?: RawSpan[] }[] }[];
}

function attrs(list: KV[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of list ?? []) {
    const v = kv.value ?? {};
    if (v.stringValue !== undefined) out[kv.key] = v.stringValue;
    else if (v.boolValue !== undefined) out[kv.key] = v.boolValue;
    else if (v.intValue !== undefined) out[kv.key] = Number(v.intValue);
    else if (v.doubleValue !== undefined) out[kv.key] = v.doubleValue;
  }
  return out;
}

export function decodeSpans(body: Uint8Array): SinkSpan[] {
  const o = Request.toObject(Request.decode(body), { longs: String, defaults: false }) as RawRequest;
  const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('hex');
  const out: SinkSpan[] = [];
  for (const rs of o.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name ?? '',
          kind: s.kind ?? 0,
          durationUs: Number((BigInt(s.endTimeUnixNano ?? '0') - BigInt(s.startTimeUnixNano ?? '0')) / 1000n),
          status: s.status?.code ?? 0,
          attributes: attrs(s.attributes),
          resource,
        });
  }
  return out;
}

export interface TraceSink {
  /** what to put in OTEL_EXPORTER_OTLP_ENDPOINT */
  endpoint: string;
  /** export requests and body bytes received so far */
  received(): { posts: number; bytes: number };
  /** every span received so far, decoded now (keeps the bodies: ask again for more) */
  spans(): SinkSpan[];
  close(): Promise<void>;
}

/** bodies kept for decoding at most; beyond it posts and bytes are still counted */
const KEEP_BYTES = 256 << 20;

export async function startTraceSink(): Promise<TraceSink> {
  const bodies: Buffer[] = [];
  let posts = 0;
  let bytes = 0;
  let kept = 0;
  const server = http.createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      posts++;
      bytes += body.length;
      if (kept + body.length <= KEEP_BYTES) {
        bodies.push(body);
        kept += body.length;
      }
      // an empty ExportTraceServiceResponse: full success
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: () => ({ posts, bytes }),
    spans: () => bodies.flatMap((b) => decodeSpans(b)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
