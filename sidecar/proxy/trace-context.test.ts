import { describe, expect, it } from 'vitest';
import type { OutgoingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import { parseB3Multi, parseB3Single, parseTraceparent, propagate, traceIds, withSpanId, type TraceIds } from './trace-context';
import { samplerFromEnv } from './sampler';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

/** ids from a counter: 1, 2, 3… as hex, so every test knows what it gets */
function counting(): TraceIds {
  let n = 0;
  const bytes = (k: number) => {
    const b = Buffer.alloc(k);
    b.writeUInt32BE(++n, k - 4);
    return b;
  };
  return traceIds(bytes);
}
const always = samplerFromEnv({}).sampler;

describe('traceparent parsing (W3C Trace Context)', () => {
  it('reads version 00 and keeps the flags', () => {
    expect(parseTraceparent(`00-${T}-${S}-01`)).toEqual({ traceId: T, parentSpanId: S, sampled: true, debug: false, flags: 1 });
    expect(parseTraceparent(`00-${T}-${S}-00`)?.sampled).toBe(false);
    expect(parseTraceparent(`00-${T}-${S}-03`)?.flags).toBe(3);
  });
  it.each([
    ['version ff', `ff-${T}-${S}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${S}-01`],
    ['all-zero span id', `00-${T}-${'0'.repeat(16)}-01`],
    ['uppercase hex', `00-${T.toUpperCase()}-${S}-01`],
    ['short trace id', `00-${T.slice(1)}-${S}-01`],
    ['long span id', `00-${T}-${S}0-01`],
    ['one-digit flags', `00-${T}-${S}-1`],
    ['extra field on version 00', `00-${T}-${S}-01-extra`],
    ['not hex', `00-${T.replace('4', 'g')}-${S}-01`],
    ['empty', ''],
    ['two joined', `00-${T}-${S}-01, 00-${T}-${S}-01`],
    ['huge', 'a'.repeat(100_000)],
  ])('refuses %s', (_, v) => expect(parseTraceparent(v)).toBeUndefined());
  it('reads a later version by its version-00 prefix, keeping only the sampled flag', () => {
    expect(parseTraceparent(`01-${T}-${S}-03-whatever`)).toMatchObject({ traceId: T, parentSpanId: S, sampled: true, flags: 1 });
  });
});

describe('B3 parsing', () => {
  it('single: ids, decision, parent; debug; a bare decision', () => {
    expect(parseB3Single(`${T}-${S}-1-${'a'.repeat(16)}`)?.ctx).toMatchObject({ traceId: T, parentSpanId: S, sampled: true });
    expect(parseB3Single(`${T.slice(16)}-${S}`)?.ctx).toMatchObject({ traceId: T.slice(16), sampled: null });
    expect(parseB3Single(`${T}-${S}-d`)).toMatchObject({ sampled: true, debug: true });
    expect(parseB3Single('0')).toEqual({ sampled: false, debug: false });
  });
  it.each([`${T}`, `${T}-${S}-x`, `${T}-${'0'.repeat(16)}`, `${T.slice(2)}-${S}`, `${T}-${S}-1-zz`, `${T}-${S}-1-${S}-more`, ''])('single refuses %j', (v) =>
    expect(parseB3Single(v)).toBeUndefined(),
  );
  it('multi: ids and sampled; flags 1 is debug; half a context is malformed', () => {
    const get = (h: Record<string, string>) => (n: string) => h[n];
    expect(parseB3Multi(get({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1' }))?.ctx).toMatchObject({ traceId: T, parentSpanId: S, sampled: true });
    expect(parseB3Multi(get({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-flags': '1' }))).toMatchObject({ sampled: true, debug: true });
    expect(parseB3Multi(get({ 'x-b3-sampled': '0' }))).toEqual({ sampled: false, debug: false });
    expect(parseB3Multi(get({ 'x-b3-traceid': T }))).toBeUndefined();
    expect(parseB3Multi(get({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': 'maybe' }))).toBeUndefined();
    expect(parseB3Multi(get({}))).toBeUndefined();
  });
});

describe('propagate: one hop', () => {
  it('keeps the trace id and the sampled flag, makes a new span id, passes tracestate as is', () => {
    const h: OutgoingHttpHeaders = { traceparent: `00-${T}-${S}-00`, tracestate: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' };
    const { hop } = propagate(h, counting(), always);
    expect(h.traceparent).toBe(`00-${T}-0000000000000001-00`);
    expect(h.tracestate).toBe('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    expect(hop).toEqual({ traceId: T, spanId: '0000000000000001', parentSpanId: S, sampled: false });
  });
  it('each hop a new span of the same trace', () => {
    const ids = counting();
    const h: OutgoingHttpHeaders = { traceparent: `00-${T}-${S}-01` };
    propagate(h, ids, always);
    const first = String(h.traceparent);
    propagate(h, ids, always);
    expect(String(h.traceparent).split('-')[1]).toBe(T);
    expect(String(h.traceparent).split('-')[2]).not.toBe(first.split('-')[2]);
  });
  it('starts a new sampled trace when there is none, or a malformed one (dropping its tracestate)', () => {
    for (const tp of [undefined, `00-${T.toUpperCase()}-${S}-01`, `ff-${T}-${S}-01`]) {
      const h: OutgoingHttpHeaders = tp ? { traceparent: tp, tracestate: 'a=b' } : {};
      const { hop } = propagate(h, counting(), always);
      expect(h.traceparent).toBe(`00-${'0'.repeat(31)}1-0000000000000002-01`);
      expect(h.tracestate).toBeUndefined();
      expect(hop.parentSpanId).toBeUndefined();
    }
  });
  it('a repeated traceparent is not trusted', () => {
    const h: OutgoingHttpHeaders = { traceparent: [`00-${T}-${S}-01`, `00-${T}-${S}-01`] };
    expect(propagate(h, counting(), always).hop.traceId).not.toBe(T);
  });
  it('B3 multi: new span, old span as parent, 64-bit id kept, sampled kept; traceparent made to match', () => {
    const t64 = T.slice(16);
    const h: OutgoingHttpHeaders = { 'x-b3-traceid': t64, 'x-b3-spanid': S, 'x-b3-parentspanid': 'aaaaaaaaaaaaaaaa', 'x-b3-sampled': '0' };
    propagate(h, counting(), always);
    expect(h).toMatchObject({ 'x-b3-traceid': t64, 'x-b3-spanid': '0000000000000001', 'x-b3-parentspanid': S, 'x-b3-sampled': '0' });
    expect(h.traceparent).toBe(`00-${t64.padStart(32, '0')}-0000000000000001-00`);
    expect(h.b3).toBeUndefined();
    // the next hop reads the padded traceparent and still keeps B3 at 64 bits
    propagate(h, counting(), always);
    expect(h['x-b3-traceid']).toBe(t64);
  });
  it('B3 single: same rules, debug kept', () => {
    const h: OutgoingHttpHeaders = { b3: `${T}-${S}-d` };
    propagate(h, counting(), always);
    expect(h.b3).toBe(`${T}-0000000000000001-d-${S}`);
    expect(h.traceparent).toBe(`00-${T}-0000000000000001-01`);
    expect(h['x-b3-traceid']).toBeUndefined();
  });
  it('a bare b3: 0 starts a trace that is not sampled', () => {
    const h: OutgoingHttpHeaders = { b3: '0' };
    propagate(h, counting(), always);
    expect(String(h.traceparent).endsWith('-00')).toBe(true);
    expect(String(h.b3).split('-')[2]).toBe('0');
  });
  it('traceparent and B3 both present: traceparent wins and B3 is rewritten to agree', () => {
    const other = 'b'.repeat(32);
    const h: OutgoingHttpHeaders = { traceparent: `00-${T}-${S}-01`, b3: `${other}-${'c'.repeat(16)}-0`, 'x-b3-traceid': other, 'x-b3-spanid': 'c'.repeat(16) };
    propagate(h, counting(), always);
    expect(h.b3).toBe(`${T}-0000000000000001-1-${S}`);
    expect(h).toMatchObject({ 'x-b3-traceid': T, 'x-b3-spanid': '0000000000000001', 'x-b3-parentspanid': S, 'x-b3-sampled': '1' });
  });
  it('a malformed B3 next to a good traceparent is replaced from it', () => {
    const h: OutgoingHttpHeaders = { traceparent: `00-${T}-${S}-01`, 'x-b3-traceid': 'nothex', 'x-b3-spanid': S };
    propagate(h, counting(), always);
    expect(h['x-b3-traceid']).toBe(T);
  });
  it('never makes an all-zero id', () => {
    let calls = 0;
    const ids = traceIds((n) => (++calls <= 2 ? Buffer.alloc(n) : Buffer.alloc(n, 7)));
    expect(ids.traceId()).toBe('07'.repeat(16));
  });
});

describe('sampler from OTEL_TRACES_SAMPLER(_ARG)', () => {
  const parent = (sampled: boolean | null) => ({ traceId: T, parentSpanId: S, sampled, debug: false });
  it('defaults to parentbased_always_on', () => {
    const s = samplerFromEnv({});
    expect(s.warning).toBeUndefined();
    expect(s.sampler(T, undefined)).toBe(true);
    expect(s.sampler(T, parent(false))).toBe(false);
  });
  it('always_off decides alone; parentbased_always_off follows a parent', () => {
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'always_off' }).sampler(T, parent(true))).toBe(false);
    const pb = samplerFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }).sampler;
    expect(pb(T, parent(true))).toBe(true);
    expect(pb(T, undefined)).toBe(false);
  });
  it('traceidratio: the same answer for the same trace id, about the ratio over many', () => {
    const s = samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).sampler;
    const ids = traceIds(randomBytes);
    let yes = 0;
    for (let i = 0; i < 4000; i++) {
      const t = ids.traceId();
      const a = s(t, undefined);
      expect(s(t, undefined)).toBe(a);
      if (a) yes++;
    }
    expect(yes).toBeGreaterThan(800);
    expect(yes).toBeLessThan(1200);
  });
  it('warns on what it cannot honour, and samples', () => {
    const bad = samplerFromEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' });
    expect(bad.warning).toMatch(/not supported by Tandem/);
    expect(bad.sampler(T, undefined)).toBe(true);
    const arg = samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' });
    expect(arg.warning).toMatch(/not a ratio/);
    expect(arg.sampler(T, undefined)).toBe(true);
  });
});

describe('withSpanId (a retry is its own span)', () => {
  it('replaces the hop\'s span id wherever propagate wrote it, and nothing else', () => {
    const h: Record<string, string> = {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01',
      b3: '4bf92f3577b34da6-1111111111111111-1-00f067aa0ba902b7',
      'x-b3-traceid': '4bf92f3577b34da6',
      'x-b3-spanid': '1111111111111111',
      'x-b3-parentspanid': '00f067aa0ba902b7',
    };
    withSpanId(h, '2222222222222222');
    expect(h).toEqual({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-2222222222222222-01',
      b3: '4bf92f3577b34da6-2222222222222222-1-00f067aa0ba902b7',
      'x-b3-traceid': '4bf92f3577b34da6',
      'x-b3-spanid': '2222222222222222',
      'x-b3-parentspanid': '00f067aa0ba902b7',
    });
    const only: Record<string, string> = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-00' };
    withSpanId(only, '3333333333333333');
    expect(only).toEqual({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-3333333333333333-00' });
  });
});
