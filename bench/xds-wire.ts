// Just enough protobuf to read the few fields a simulated sidecar needs (a cluster's name
// and discovery type, an endpoint set's size) without decoding whole resources: with
// thousands of simulated sidecars in one process, full decoding would make the benchmark
// measure itself rather than the control plane.

/** The fields of one message: field number -> values (varints as numbers, the rest as slices). */
export function fields(buf: Uint8Array): Map<number, (number | Uint8Array)[]> {
  const out = new Map<number, (number | Uint8Array)[]>();
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    let value: number | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const len = varint();
      value = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) {
      value = buf.subarray(i, i + 8);
      i += 8;
    } else if (wire === 5) {
      value = buf.subarray(i, i + 4);
      i += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

const text = (v: number | Uint8Array | undefined): string => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : '');

/** envoy.config.cluster.v3.Cluster: name (1), type (2; EDS is 3). */
export function clusterNameAndEds(value: Uint8Array): { name: string; eds: boolean } {
  const f = fields(value);
  return { name: text(f.get(1)?.[0]), eds: f.get(2)?.[0] === 3 };
}

/** envoy.config.endpoint.v3.ClusterLoadAssignment: cluster_name (1), endpoints (2) each with lb_endpoints (2). */
export function assignmentNameAndSize(value: Uint8Array): { name: string; endpoints: number } {
  const f = fields(value);
  let endpoints = 0;
  for (const loc of f.get(2) ?? []) if (loc instanceof Uint8Array) endpoints += fields(loc).get(2)?.length ?? 0;
  return { name: text(f.get(1)?.[0]), endpoints };
}

/** envoy.config.route.v3.RouteConfiguration and Listener both name themselves in field 1. */
export function nameOf(value: Uint8Array): string {
  return text(fields(value).get(1)?.[0]);
}

/** envoy.config.route.v3.RouteConfiguration: whether it has vhds (9), its virtual hosts coming as VirtualHost resources. */
export function routeHasVhds(value: Uint8Array): boolean {
  return fields(value).has(9);
}
