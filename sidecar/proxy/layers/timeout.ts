// Timeout: the route's timeout covers the whole request, retries and all, until the
// response is complete; when it fires the exchange is aborted with 504 UT.
import { UpstreamTimeoutError } from '../errors';
import type { Layer } from '../exchange';

export const timeoutLayer: Layer = (next) => (x) => {
  const ms = x.route?.model.timeoutMs ?? 0;
  if (ms > 0) {
    const t = setTimeout(() => x.abort(new UpstreamTimeoutError(`upstream request timeout after ${ms}ms`)), ms);
    x.cleanup.push(() => clearTimeout(t));
  }
  return next(x);
};
