// The control plane never serves what its sidecars would refuse. Every resource a config
// translates to goes through the sidecar's own decoders (proto/decode) before the config is
// accepted, so what a sidecar would NACK is a load error naming the resource and the field,
// and the last good config stays in force: never "loaded" here and then refused there.
import { DecodeError, decoders, decodeVirtualHost } from '../../proto/decode/decode';
import { ENVOY_MAX_DIRECT_RESPONSE_BODY } from '../../proto/decode/decode-route-action';
import type { RouteConfigModel } from '../../proto/decode/model';
import type { AnyMessage } from '../../proto/any';
import { TypeUrl, type XdsTypeUrl } from '../../proto/type-urls';
import type { Snapshot } from './snapshot';

/** A config whose translation a sidecar would refuse; `problems` names each resource and field. */
export class UnservableConfigError extends Error {
  readonly code = 'CONFIG_UNSERVABLE';
  constructor(readonly problems: readonly DecodeError[]) {
    super(`the sidecars would refuse what this config translates to: ${problems.map((p) => p.message).join('; ')}`, { cause: problems[0] });
  }
}

// Past this many, the rest are the same mistake again.
const MAX_PROBLEMS = 10;

const decode = decoders as Record<XdsTypeUrl, (a: AnyMessage) => unknown>;

export function checkServable(s: Snapshot): void {
  const problems: DecodeError[] = [];
  const seen = new Set<AnyMessage>();
  // a virtual host of the split form is held to its route configuration's bounds, as a sidecar holds it
  const maxBody = new Map<string, number>();
  const limitOf = (rc: string) => maxBody.get(rc) ?? ENVOY_MAX_DIRECT_RESPONSE_BODY;
  for (const { type, resource } of s.translated()) {
    // alike callers share resources: decode each once
    if (seen.has(resource.any) || !decode[type]) continue;
    seen.add(resource.any);
    try {
      if (type === TypeUrl.VirtualHost) decodeVirtualHost(resource.any, limitOf);
      else {
        const m = decode[type](resource.any);
        if (type === TypeUrl.RouteConfiguration && (m as RouteConfigModel).vhds) maxBody.set(resource.name, (m as RouteConfigModel).vhds!.maxDirectBody);
      }
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      problems.push(err);
      if (problems.length >= MAX_PROBLEMS) break;
    }
  }
  if (problems.length) throw new UnservableConfigError(problems);
}
