// Timeout: the route's timeout covers the whole request, retries and all, until the
// response is complete; a gRPC caller's own grpc-timeout shortens it (as Envoy's
// max_stream_duration with grpc_timeout_header_max does). When it fires the exchange is
// aborted with 504 UT (a gRPC caller gets UNAVAILABLE, Envoy's mapping of 504).
import { UpstreamTimeoutError } from '../errors';
import type { Layer } from '../exchange';

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** gRPC's "Timeout" header: up to 8 digits and a unit. */
export function grpcTimeoutMs(v: string | undefined): number | undefined {
  const m = v ? /^(\d{1,8})([HMSmun])$/.exec(v) : null;
  return m ? Math.max(1, Math.ceil(Number(m[1]) * GRPC_UNIT_MS[m[2]])) : undefined;
}

export const timeoutLayer: Layer = (next) => (x) => {
  const route = x.route?.model.timeoutMs ?? 0;
  const grpc = grpcTimeoutMs(x.info.header('grpc-timeout'));
  const ms = grpc !== undefined && (route === 0 || grpc < route) ? grpc : route;
  if (ms > 0) {
    const t = setTimeout(() => x.abort(new UpstreamTimeoutError(`upstream request timeout after ${ms}ms`)), ms);
    x.cleanup.push(() => clearTimeout(t));
  }
  return next(x);
};
