// OpenTelemetry spans end to end, with real processes on 127.0.0.1: a caller's sidecar
// (outbound) -> mTLS h2 -> the backend's sidecar (inbound) -> the backend app, both
// sidecars exporting to an OTLP receiver this test runs. The caller's CLIENT span is the
// parent of the backend's SERVER span, whose id is the parent the backend app sees in
// its traceparent; the caller's own span is the CLIENT span's parent. A collector that
// is down changes nothing for requests, only the dropped count; spans still queued at
// SIGTERM are flushed (over gRPC, the other protocol).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from './harness';
import { SpanKinds, startGrpcReceiver, startHttpReceiver, type ReceivedSpan, type Receiver } from './otlp-receiver';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const CALLER_ID = 'spiffe://cluster.local/ns/default/sa/caller';
const BACKEND_ID = 'spiffe://cluster.local/ns/default/sa/backend';

let dir: string;
let cp: h.ControlPlane;
let receiver: Receiver;
let caller: h.Sidecar;

const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
const newTrace = () => `${hex(31)}1`;

beforeAll(async () => {
  dir = h.tmpDir('tandem-otel-');
  const config = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(config, '');
  cp = await h.startControlPlane(dir, config);
  receiver = await startHttpReceiver();
  // spans go out every 50 ms, over OTLP/HTTP protobuf (the default protocol)
  const env = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '50' };
  const backend = await h.startApp('backend');
  await h.startSidecar(cp, 'backend', backend.port, { version: 'v1' }, { env });
  caller = await h.startSidecar(cp, 'caller', (await h.startApp('caller')).port, {}, { env: { ...env, OTEL_SERVICE_NAME: 'caller-frontend' } });
  await h.waitFor('backend reachable', async () => (await h.request(caller.outbound, { host: 'backend', path: '/' })).status === 200);
}, 60_000);

afterAll(async () => {
  await h.stopAll();
  await h.closeApps();
  await receiver?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function spansOf(r: Receiver, traceId: string, count: number): Promise<ReceivedSpan[]> {
  return h.waitFor(`${count} spans of trace ${traceId}`, () => {
    const got = r.spans.filter((s) => s.traceId === traceId);
    return got.length >= count ? got : undefined;
  });
}

describe('spans over OTLP/HTTP', () => {
  it('the CLIENT span of the caller\'s sidecar is the parent of the backend\'s SERVER span, whose id the backend app sees as its parent', async () => {
    const T = newTrace();
    const S = hex(15) + 'a';
    const r = await h.request(caller.outbound, { host: 'backend', path: '/items/7?q=1', headers: { traceparent: `00-${T}-${S}-01`, 'x-request-id': `otel-${T}`, 'user-agent': 'otel-e2e' } });
    expect(r.status).toBe(200);
    const seen = (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
    const [, appTrace, appParent] = TRACEPARENT.exec(seen.traceparent ?? '')!;
    expect(appTrace).toBe(T);

    const spans = await spansOf(receiver, T, 2);
    expect(spans).toHaveLength(2);
    const client = spans.find((s) => s.kind === SpanKinds.CLIENT)!;
    const server = spans.find((s) => s.kind === SpanKinds.SERVER)!;
    expect(client, 'a CLIENT span').toBeDefined();
    expect(server, 'a SERVER span').toBeDefined();

    // the links: caller's span -> caller sidecar's CLIENT span -> backend sidecar's SERVER span -> the app
    expect(client.parentSpanId).toBe(S);
    expect(server.parentSpanId).toBe(client.spanId);
    expect(appParent).toBe(server.spanId);
    expect(new Set([S, client.spanId, server.spanId]).size).toBe(3);
    expect(server.startNs).toBeGreaterThan(0n);
    expect(client.endNs).toBeGreaterThanOrEqual(client.startNs);

    // who: OTEL_SERVICE_NAME wins; without it, Istio's <service>.<namespace>
    expect(client.resource['service.name']).toBe('caller-frontend');
    expect(server.resource['service.name']).toBe('backend.default');
    expect(server.resource['service.version']).toBe('v1');

    expect(client.name).toBe('GET');
    expect(client.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/items/7',
      'url.query': 'q=1',
      'server.address': 'backend',
      'http.response.status_code': 200,
      // an HTTP/1.1 caller: the hop between the sidecars is HTTP/1.1 too (over mTLS)
      'network.protocol.version': '1.1',
      'tandem.upstream.cluster': 'outbound|80||backend.default.svc.cluster.local',
      'tandem.peer.principal': BACKEND_ID,
      'tandem.local.principal': CALLER_ID,
      'tandem.response_flags': '-',
    });
    expect(client.attributes['error.type']).toBeUndefined();
    expect(server.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/items/7',
      'url.scheme': 'http',
      'http.response.status_code': 200,
      'network.protocol.version': '1.1',
      'user_agent.original': 'otel-e2e',
      'tandem.peer.principal': CALLER_ID,
      'tandem.local.principal': BACKEND_ID,
      'tandem.request_id': `otel-${T}`,
      'tandem.response_flags': '-',
    });
    expect(receiver.contentTypes.every((ct) => ct === 'application/x-protobuf')).toBe(true);
  });

  it('a request with no trace context starts one: the CLIENT span is a root, the SERVER span its child', async () => {
    const r = await h.request(caller.outbound, { host: 'backend', path: '/fresh' });
    expect(r.status).toBe(200);
    const [, T, appParent] = TRACEPARENT.exec((JSON.parse(r.body) as { headers: Record<string, string> }).headers.traceparent ?? '')!;
    const spans = await spansOf(receiver, T!, 2);
    const client = spans.find((s) => s.kind === SpanKinds.CLIENT)!;
    const server = spans.find((s) => s.kind === SpanKinds.SERVER)!;
    expect(client.parentSpanId).toBe('');
    expect(server.parentSpanId).toBe(client.spanId);
    expect(appParent).toBe(server.spanId);
  });

  it('an unsampled trace is not recorded, by either sidecar', async () => {
    const unsampled = newTrace();
    const r = await h.request(caller.outbound, { host: 'backend', path: '/quiet', headers: { traceparent: `00-${unsampled}-${hex(15)}1-00` } });
    expect(r.status).toBe(200);
    // a sampled request after it: once both its spans are in, each sidecar has exported everything before it
    const later = newTrace();
    expect((await h.request(caller.outbound, { host: 'backend', path: '/loud', headers: { traceparent: `00-${later}-${hex(15)}1-01` } })).status).toBe(200);
    await spansOf(receiver, later, 2);
    expect(receiver.spans.filter((s) => s.traceId === unsampled)).toEqual([]);
  });

  it('a route with no upstream still leaves a CLIENT span: the proxy\'s own 404 NR, an error', async () => {
    const T = newTrace();
    const r = await h.request(caller.outbound, { host: 'nowhere.example', path: '/', headers: { traceparent: `00-${T}-${hex(15)}1-01` } });
    expect(r.status).toBe(404);
    const [s] = await spansOf(receiver, T, 1);
    expect(s!.kind).toBe(SpanKinds.CLIENT);
    expect(s!.attributes).toMatchObject({ 'http.response.status_code': 404, 'error.type': 'NR', 'tandem.response_flags': 'NR' });
    expect(s!.status).toBe(2);
  });
});

describe('export that fails or waits', () => {
  it('a collector that is down changes nothing for requests: all 200, and the dropped count grows', async () => {
    const backend = await h.startApp('lonely');
    const down = await h.freePort();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${down}`, OTEL_BSP_SCHEDULE_DELAY: '20', OTEL_EXPORTER_OTLP_TIMEOUT: '500' };
    await h.startSidecar(cp, 'lonely', backend.port, {}, { env });
    const c = await h.startSidecar(cp, 'lonely-caller', (await h.startApp('lonely-caller')).port, {}, { env });
    await h.waitFor('lonely reachable', async () => (await h.request(c.outbound, { host: 'lonely', path: '/' })).status === 200);
    const codes = await h.pool(40, 8, async (i) => (await h.request(c.outbound, { host: 'lonely', path: `/r${i}` })).status);
    expect(codes.every((s) => s === 200)).toBe(true);
    const dropped = await h.waitFor('spans dropped', async () => {
      const n = h.metricValue((await h.request(c.admin, { path: '/metrics' })).body, 'tandem_spans_dropped_total', { reason: 'export_failed' });
      return n !== undefined && n >= 40 ? n : undefined;
    });
    expect(dropped).toBeGreaterThanOrEqual(40);
  });

  it('spans still queued at SIGTERM are exported as the sidecar stops (OTLP/gRPC)', async () => {
    const grpcReceiver = await startGrpcReceiver();
    try {
      const backend = await h.startApp('patient');
      // a minute between exports: only the shutdown flush can send these
      const env = { OTEL_EXPORTER_OTLP_ENDPOINT: grpcReceiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_BSP_SCHEDULE_DELAY: '60000' };
      const b = await h.startSidecar(cp, 'patient', backend.port, {}, { env });
      const c = await h.startSidecar(cp, 'patient-caller', (await h.startApp('patient-caller')).port, {}, { env });
      await h.waitFor('patient reachable', async () => (await h.request(c.outbound, { host: 'patient', path: '/' })).status === 200);
      const T = newTrace();
      expect((await h.request(c.outbound, { host: 'patient', path: '/', headers: { traceparent: `00-${T}-${hex(15)}1-01` } })).status).toBe(200);
      expect(grpcReceiver.spans.filter((s) => s.traceId === T)).toEqual([]);
      expect(await c.proc.stop('SIGTERM')).toBe(0);
      expect(await b.proc.stop('SIGTERM')).toBe(0);
      const spans = grpcReceiver.spans.filter((s) => s.traceId === T);
      expect(spans.map((s) => s.kind).sort()).toEqual([SpanKinds.SERVER, SpanKinds.CLIENT].sort());
      const client = spans.find((s) => s.kind === SpanKinds.CLIENT)!;
      expect(spans.find((s) => s.kind === SpanKinds.SERVER)!.parentSpanId).toBe(client.spanId);
    } finally {
      await grpcReceiver.close();
    }
  });
});
