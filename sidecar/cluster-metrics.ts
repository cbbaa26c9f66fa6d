// --concurrency N: the workers share the admin port, so a scrape lands on any one of
// them; that worker asks the primary, which gathers every worker's registry with
// prom-client's AggregatorRegistry (counters and histograms summed, gauges as each
// declares) and answers. One scrape is the whole sidecar.
import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQ = 'tandem:metrics-req';
const RES = 'tandem:metrics-res';
const TIMEOUT_MS = 6000;

interface Req {
  type: typeof REQ;
  id: number;
}
interface Res {
  type: typeof RES;
  id: number;
  text?: string;
  error?: string;
}

/** In the primary: answer workers' requests for the sum over all workers. */
export function serveClusterMetrics(): void {
  const agg = new AggregatorRegistry();
  cluster.on('message', (worker, msg: Req) => {
    if (msg?.type !== REQ) return;
    const reply = (r: Omit<Res, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: RES, id: msg.id, ...r });
    };
    agg.clusterMetrics().then(
      (text) => reply({ text }),
      (err: Error) => reply({ error: err.message }),
    );
  });
}

/** In a worker: offer `registry` to the primary's aggregation; the function returns the aggregated text. */
export function workerMetrics(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // constructing one in a worker is what makes prom-client answer the primary's requests
  new AggregatorRegistry();
  let next = 0;
  const pending = new Map<number, { resolve(t: string): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  process.on('message', (msg: Res) => {
    if (msg?.type !== RES) return;
    const p = pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error !== undefined) p.reject(new Error(`aggregating the workers' metrics: ${msg.error}`));
    else p.resolve(msg.text ?? '');
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error("the primary did not answer with the workers' metrics"));
      }, TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      process.send!({ type: REQ, id } satisfies Req);
    });
}
