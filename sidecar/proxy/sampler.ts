// The sampling decision for a hop, read from OpenTelemetry's standard variables
// (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG) as the OpenTelemetry SDKs read them. The
// default is OpenTelemetry's, parentbased_always_on: a caller's decision is kept, and a
// trace this proxy starts is sampled.
import type { Sampler, TraceContext } from './trace-context';

export interface SamplerChoice {
  sampler: Sampler;
  /** what was asked for but could not be honoured, for a warning at start */
  warning?: string;
}

/** TraceIdRatioBased: the same trace id gets the same answer on every hop and every proxy. */
function ratio(r: number): (traceId: string) => boolean {
  if (r >= 1) return () => true;
  if (r <= 0) return () => false;
  const bound = BigInt(Math.floor(r * 2 ** 53)) << 3n;
  // the low 56 bits of the trace id, which W3C level 2 asks to be random
  return (traceId) => BigInt(`0x${traceId.slice(-14)}`) < bound;
}

export function samplerFromEnv(env: Record<string, string | undefined>): SamplerChoice {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const argRaw = env.OTEL_TRACES_SAMPLER_ARG;
  let warning: string | undefined;
  let r = 1;
  if (name.endsWith('traceidratio')) {
    const n = argRaw === undefined || argRaw.trim() === '' ? NaN : Number(argRaw);
    if (Number.isFinite(n) && n >= 0 && n <= 1) r = n;
    else warning = `OTEL_TRACES_SAMPLER_ARG=${argRaw ?? ''} is not a ratio in [0, 1]: sampling everything`;
  }
  const root: Record<string, (traceId: string) => boolean> = {
    always_on: () => true,
    always_off: () => false,
    traceidratio: ratio(r),
  };
  const parentBased = name.startsWith('parentbased_');
  const rootName = parentBased ? name.slice('parentbased_'.length) : name;
  let decide = root[rootName];
  if (!decide) {
    warning = `OTEL_TRACES_SAMPLER=${name} is not supported by Tandem (always_on, always_off, traceidratio, and their parentbased_ forms): using parentbased_always_on`;
    decide = root.always_on!;
    return { sampler: parentSampler(decide), warning };
  }
  return { sampler: parentBased ? parentSampler(decide) : (traceId) => decide(traceId), warning };
}

function parentSampler(root: (traceId: string) => boolean): Sampler {
  return (traceId: string, parent: TraceContext | undefined) => (parent && parent.sampled !== null ? parent.sampled : root(traceId));
}
