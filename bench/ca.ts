// The CA part of `make bench`: how fast the mesh CA hands out workload certificates.
//   over gRPC   - what a sidecar feels: a running control plane's CertificateService, sent
//                 CSRs exactly as a sidecar sends them (requestCertificate: a channel of its
//                 own per request, TLS to the control plane, the CSR signed by the workload
//                 key), from many workloads at once; first with bootstrap tokens (a sidecar's
//                 first certificate), then over the certificates that gave (renewals);
//   in process  - CertificateAuthority.signWorkload in a loop: the signing itself.
// Workload keys are made before the clock starts (a sidecar makes its key before it asks).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CertificateAuthority, loadOrCreateRootCA, ROOT_KEY } from '../certs/ca';
import { newKey, type WorkloadKey } from '../certs/keys';
import { spiffeUri } from '../certs/spiffe';
import { mintToken } from '../certs/token';
import { requestCertificate, type CaCredential } from '../sidecar/identity/ca-client';
import { cpuSeconds, processTree } from './util';

export interface CaRpcOptions {
  /** host:port of the control plane's ADS/CA listener */
  target: string;
  caDir: string;
  trustDomain: string;
  /** the control plane's pid, for its CPU per certificate */
  controlPlanePid: number;
  requests: number;
  concurrency: number;
  warmup: number;
  /** distinct workloads (service accounts) the requests come from */
  workloads: number;
}

export interface CaRpcResult {
  credential: 'token' | 'certificate';
  requests: number;
  ok: number;
  failed: number;
  firstError?: string;
  elapsedSec: number;
  certsPerSec: number;
  p50: number;
  p99: number;
  /** control-plane CPU (utime+stime) per certificate issued, µs */
  cpUsPerCert: number;
  /** this (client) process's CPU per request, µs: key-signed CSRs, TLS handshakes, gRPC */
  clientUsPerCert: number;
}

interface Workload {
  spiffeId: string;
  token: string;
  /** its current certificate and key once it has one */
  current?: { certPem: string; keyPem: string };
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export async function caOverGrpc(o: CaRpcOptions): Promise<CaRpcResult[]> {
  const rootPem = fs.readFileSync(path.join(o.caDir, 'root-cert.pem'), 'utf8');
  const rootKeyPem = fs.readFileSync(path.join(o.caDir, ROOT_KEY), 'utf8');
  const workloads: Workload[] = Array.from({ length: o.workloads }, (_, i) => {
    const sa = `ca-bench-${i}`;
    return {
      spiffeId: spiffeUri({ trustDomain: o.trustDomain, namespace: 'default', serviceAccount: sa }),
      token: mintToken(rootKeyPem, { namespace: 'default', serviceAccount: sa, services: [sa], ttlMs: 3600e3 }),
    };
  });
  const client = { target: o.target, rootPem, timeoutMs: 30_000 };

  /** `n` requests, `concurrency` at a time, request i from workload i % workloads. */
  const run = async (credential: CaRpcResult['credential'], n: number): Promise<CaRpcResult> => {
    const keys: WorkloadKey[] = Array.from({ length: n }, () => newKey());
    const latencies: number[] = [];
    let ok = 0;
    let failed = 0;
    let firstError: string | undefined;
    let next = 0;
    const cpTree = processTree(o.controlPlanePid);
    const cpBefore = cpuSeconds(cpTree);
    const selfBefore = selfCpuSeconds();
    const started = process.hrtime.bigint();
    const worker = async () => {
      for (let i = next++; i < n; i = next++) {
        const w = workloads[i % workloads.length];
        const key = keys[i];
        const cred: CaCredential = credential === 'token' ? { token: w.token } : w.current!;
        const t0 = process.hrtime.bigint();
        try {
          const chain = await requestCertificate(client, key, w.spiffeId, cred);
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          ok++;
          w.current = { certPem: chain.filter((c) => c.trim() !== rootPem.trim()).join(''), keyPem: key.keyPem };
        } catch (err) {
          failed++;
          firstError ??= (err as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, n) }, worker));
    const elapsedSec = Number(process.hrtime.bigint() - started) / 1e9;
    const cpSec = cpuSeconds(cpTree) - cpBefore;
    const selfSec = selfCpuSeconds() - selfBefore;
    latencies.sort((a, b) => a - b);
    return {
      credential,
      requests: n,
      ok,
      failed,
      firstError,
      elapsedSec,
      certsPerSec: ok / elapsedSec,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      cpUsPerCert: ok ? (cpSec * 1e6) / ok : NaN,
      clientUsPerCert: ok ? (selfSec * 1e6) / ok : NaN,
    };
  };

  const results: CaRpcResult[] = [];
  // warm-up (token): every workload gets a certificate, so the renewals below have one to present
  const warm = await run('token', Math.max(o.warmup, o.workloads));
  if (warm.ok === 0) throw new Error(`CA warm-up: no certificate issued: ${warm.firstError}`);
  results.push(await run('token', o.requests));
  if (workloads.every((w) => w.current)) results.push(await run('certificate', o.requests));
  return results;
}

export interface CaLocalResult {
  signatures: number;
  elapsedSec: number;
  perSec: number;
  usEach: number;
  /** the root key's algorithm, e.g. "EC prime256v1" */
  rootKey: string;
}

/** signWorkload in a loop for `seconds` (after a short warm-up), on the mesh's own root. */
export function caInProcess(caDir: string, trustDomain: string, seconds: number): CaLocalResult {
  const root = loadOrCreateRootCA(caDir);
  const ca = new CertificateAuthority(root);
  // a handful of workload keys, used in turn (the signing cost does not depend on which)
  const keys = Array.from({ length: 16 }, () => newKey().publicKey);
  const spiffeIds = keys.map((_, i) => spiffeUri({ trustDomain, namespace: 'default', serviceAccount: `sign-bench-${i}` }));
  const sign = (i: number) => ca.signWorkload({ publicKey: keys[i % keys.length], spiffeId: spiffeIds[i % keys.length], services: [`sign-bench-${i % keys.length}`], ttlMs: 3600e3 });
  const loop = (ms: number) => {
    const started = process.hrtime.bigint();
    const until = started + BigInt(Math.round(ms * 1e6));
    let n = 0;
    let now = started;
    while (now < until) {
      for (let k = 0; k < 16; k++) sign(n++);
      now = process.hrtime.bigint();
    }
    return { n, sec: Number(now - started) / 1e9 };
  };
  loop(Math.min(300, seconds * 150));
  const { n, sec } = loop(seconds * 1000);
  const k = crypto.createPrivateKey(root.keyPem);
  const rootKey = `${(k.asymmetricKeyType ?? '?').toUpperCase()} ${k.asymmetricKeyDetails?.namedCurve ?? `${k.asymmetricKeyDetails?.modulusLength} bits`}`;
  return { signatures: n, elapsedSec: sec, perSec: n / sec, usEach: (sec * 1e6) / n, rootKey };
}
