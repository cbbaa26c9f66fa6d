// A minimal OTLP trace receiver for tests: POST /v1/traces over HTTP (protobuf or JSON)
// and the gRPC TraceService/Export, decoded with protobufjs from the OTLP trace protos
// (the fields a span needs, numbered as in opentelemetry-proto v1), so what a test
// checks is what crossed the wire.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';

const OTLP_TRACE_PROTO = `
syntax = "proto3";
package opentelemetry.proto;
message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  fixed32 flags = 16;
  string name = 5;
  int32 kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;
  Status status = 15;
}
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;

const root = protobuf.parse(OTLP_TRACE_PROTO).root;
const Request = root.lookupType('opentelemetry.proto.ExportTraceServiceRequest');

export type AttrValue = string | number | boolean;

/** A span as a test reads it: ids in hex, attributes flattened. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 2 SERVER, 3 CLIENT */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, AttrValue>;
  resource: Record<string, AttrValue>;
  /** OTLP status code: 0 unset, 1 ok, 2 error */
  status: number;
}

const SERVER = 2;
const CLIENT = 3;
export const SpanKinds = { SERVER, CLIENT };

interface KV {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
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

interface RawSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: KV[];
  status?: { code?: number };
}
interface RawRequest {
  resourceSpans?: { resource?: { attributes?: KV[] }; scopeSpans?: { spans?: RawSpan[] }[] }[];
}

function flatten(req: RawRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? '',
          name: s.name,
          kind: s.kind ?? 0,
          startNs: BigInt(s.startTimeUnixNano),
          endNs: BigInt(s.endTimeUnixNano),
          attributes: attrs(s.attributes),
          resource,
          status: s.status?.code ?? 0,
        });
  }
  return out;
}

/** An ExportTraceServiceRequest in protobuf, as its spans. */
export function decodeProtobuf(body: Uint8Array): ReceivedSpan[] {
  const o = Request.toObject(Request.decode(body), { longs: String, bytes: Array, defaults: false }) as RawRequest & Record<string, unknown>;
  // ids arrive as bytes: in hex, as OTLP/JSON and traceparent write them
  const hex = (b: unknown) => Buffer.from((b as number[] | undefined) ?? []).toString('hex');
  for (const rs of o.resourceSpans ?? [])
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? []) {
        s.traceId = hex(s.traceId);
        s.spanId = hex(s.spanId);
        s.parentSpanId = hex(s.parentSpanId);
      }
  return flatten(o);
}

/** The same request in OTLP/JSON (ids already hex there). */
export function decodeJson(body: string): ReceivedSpan[] {
  return flatten(JSON.parse(body) as RawRequest);
}

export interface Receiver {
  url: string;
  port: number;
  spans: ReceivedSpan[];
  /** content types of the requests received */
  contentTypes: string[];
  close(): Promise<void>;
}

/** OTLP/HTTP on 127.0.0.1, port 0: POST /v1/traces, protobuf or JSON. */
export async function startHttpReceiver(): Promise<Receiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const ct = req.headers['content-type'] ?? '';
      contentTypes.push(ct);
      if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
      try {
        const body = Buffer.concat(chunks);
        spans.push(...(ct.includes('json') ? decodeJson(body.toString('utf8')) : decodeProtobuf(body)));
        res.writeHead(200, { 'content-type': ct.includes('json') ? 'application/json' : 'application/x-protobuf' }).end(ct.includes('json') ? '{}' : undefined);
      } catch (err) {
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    spans,
    contentTypes,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** OTLP/gRPC (plaintext) on 127.0.0.1, port 0: the TraceService's Export. */
export async function startGrpcReceiver(): Promise<Receiver> {
  const spans: ReceivedSpan[] = [];
  const server = new grpc.Server();
  const raw = (b: Buffer) => b;
  server.addService(
    {
      Export: {
        path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        requestStream: false,
        responseStream: false,
        requestSerialize: raw,
        requestDeserialize: raw,
        // an empty ExportTraceServiceResponse: everything accepted
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: raw,
      },
    },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        spans.push(...decodeProtobuf(call.request));
        cb(null, Buffer.alloc(0));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    spans,
    contentTypes: [],
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}
