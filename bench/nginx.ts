// The nginx side of the benchmark, if an nginx binary is installed:
//   nginx       - one reverse proxy (one worker, upstream keep-alive) in front of the backend:
//                 the job one sidecar does;
//   nginx pair  - the job the mesh hop does: nginx A (plaintext in) → TLS 1.3 with a client
//                 certificate, verified both ways, pooled keep-alive connections → nginx B →
//                 the backend over keep-alive. The certificates are EC P-256 leaves of a CA
//                 of the bench's own, made with the mesh's CA code (the sidecars' key type).
// The pair's wire check is the mesh hop's: before measuring, a stand-in nginx A goes through
// a byte-recording relay to B, whose first bytes must be a TLS ClientHello; and B marks every
// request it forwards with "$ssl_protocol $ssl_client_verify", which the backend counts, so
// every measured request is checked too.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CertificateAuthority, loadOrCreateRootCA } from '../certs/ca';
import { classify, startRelay } from './relay';
import { backendStats, NAMES, type Target } from './target';
import { freePort, httpGet, startProc, waitFor, type Proc } from './util';

export function nginxVersion(bin: string): string {
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().replace(/^nginx version:\s*/, '');
}

/** The Host the pair's requests carry, so the backend can count them apart. */
const PAIR_HOST = 'nginx-pair';
/** the name in B's server certificate, checked by A (proxy_ssl_verify) */
const B_NAME = 'nginx-b.bench';

/**
 * One nginx (one worker, access log off), its prefix under `dir/name`, the `upstream` and
 * `server` blocks given; resolves once `ready` says so.
 */
async function runNginx(bin: string, dir: string, name: string, upstreams: string, server: string, ready: () => Promise<boolean>): Promise<Proc> {
  const prefix = path.join(dir, name);
  fs.mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  // Running as root, nginx's worker drops to `nobody`; let it traverse the temp dir.
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(prefix, 0o755);
  fs.chmodSync(path.join(prefix, 'tmp'), 0o777);
  const conf = path.join(prefix, 'nginx.conf');
  const t = (n: string) => path.join(prefix, 'tmp', n);
  fs.writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
pid ${path.join(prefix, 'nginx.pid')};
error_log ${path.join(prefix, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  keepalive_requests 1000000;
  keepalive_timeout 75s;
${upstreams}
${server}
}
`,
  );
  // -e (early error log) exists since 1.19.5; older builds would try /var/log/nginx first.
  const [maj, min, pat] = nginxVersion(bin).replace(/^nginx\//, '').split('.').map(Number);
  const modern = maj > 1 || (maj === 1 && (min > 19 || (min === 19 && pat >= 5)));
  const args = ['-p', prefix, '-c', conf, ...(modern ? ['-e', path.join(prefix, 'error.log')] : [])];
  const proc = startProc(name, bin, args);
  await waitFor(`${name} to be ready`, ready, 10_000).catch((err: Error) => {
    let log = '';
    try {
      log = fs.readFileSync(path.join(prefix, 'error.log'), 'utf8');
    } catch {
      /* none */
    }
    throw new Error(`${err.message}\n${proc.output()}${log}`.slice(-2000), { cause: err });
  });
  return proc;
}

const upstream = (name: string, server: string) => `  upstream ${name} {
    server ${server};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }`;

const PROXY_H1 = `      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;`;

/** One nginx reverse proxy with upstream keep-alive: the job of one sidecar. */
export async function startNginx(bin: string, dir: string, backendPort: number): Promise<Target> {
  const port = await freePort();
  const proc = await runNginx(bin, dir, 'nginx', upstream('backend', `127.0.0.1:${backendPort}`), `  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
${PROXY_H1}
    }
  }`, async () => (await httpGet(port, '/')).status === 200);
  return { name: NAMES.nginx, url: `http://127.0.0.1:${port}/`, proxies: [{ label: 'nginx (master+worker)', pid: proc.pid }] };
}

export interface NginxPair {
  target: Target;
  /** what the wire check found */
  verified: string;
}

/** The pair: A (plaintext in) → TLS 1.3 with client certificates → B → the backend. */
export async function startNginxPair(bin: string, dir: string, backend: Proc, backendPort: number): Promise<NginxPair> {
  const certDir = path.join(dir, 'nginx-pair-certs');
  const ca = new CertificateAuthority(loadOrCreateRootCA(certDir, 'nginx.bench'));
  const write = (name: string, pem: string) => {
    const f = path.join(certDir, name);
    // nginx reads its keys as root before dropping privileges; 0644 lets the worker read the CA file
    fs.writeFileSync(f, pem, { mode: name.endsWith('-key.pem') ? 0o600 : 0o644 });
    return f;
  };
  fs.chmodSync(certDir, 0o755);
  const bLeaf = ca.issueServing({ dnsNames: [B_NAME], uris: ['spiffe://nginx.bench/ns/default/sa/nginx-b'], ttlMs: 3600e3, server: true, client: false });
  const aLeaf = ca.issueServing({ dnsNames: ['nginx-a.bench'], uris: ['spiffe://nginx.bench/ns/default/sa/nginx-a'], ttlMs: 3600e3, server: false, client: true });
  const files = {
    root: write('root.pem', ca.rootPem),
    bCert: write('b-cert.pem', bLeaf.certPem),
    bKey: write('b-key.pem', bLeaf.keyPem),
    aCert: write('a-cert.pem', aLeaf.certPem),
    aKey: write('a-key.pem', aLeaf.keyPem),
  };

  // B: TLS 1.3 only, a client certificate required and verified against the root; it marks
  // what it forwards with the TLS it came over (see backend.ts).
  const bPort = await freePort();
  const bProc = await runNginx(bin, dir, 'nginx-b', upstream('backend', `127.0.0.1:${backendPort}`), `  server {
    listen 127.0.0.1:${bPort} ssl;
    ssl_certificate ${files.bCert};
    ssl_certificate_key ${files.bKey};
    ssl_protocols TLSv1.3;
    ssl_client_certificate ${files.root};
    ssl_verify_client on;
    ssl_session_cache shared:SSL:1m;
    location / {
      proxy_pass http://backend;
${PROXY_H1}
      proxy_set_header x-bench-tls "$ssl_protocol $ssl_client_verify";
    }
  }`, () => canConnect(bPort));

  // A: plaintext in; out to B (or, for the wire check, to a relay in front of B) over TLS 1.3
  // with its client certificate, verifying B's name, sessions reused, connections kept alive.
  const startA = async (name: string, to: number): Promise<{ proc: Proc; port: number }> => {
    const port = await freePort();
    const proc = await runNginx(bin, dir, name, upstream('nginx_b', `127.0.0.1:${to}`), `  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass https://nginx_b;
${PROXY_H1}
      proxy_ssl_certificate ${files.aCert};
      proxy_ssl_certificate_key ${files.aKey};
      proxy_ssl_trusted_certificate ${files.root};
      proxy_ssl_verify on;
      proxy_ssl_name ${B_NAME};
      proxy_ssl_server_name on;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_session_reuse on;
    }
  }`, async () => (await httpGet(port, '/', PAIR_HOST)).status === 200);
    return { proc, port };
  };

  // The wire check, through a stand-in A and a relay; then the measured A goes straight to B.
  const relay = await startRelay(bPort);
  let verified: string;
  try {
    const probe = await startA('nginx-a-probe', relay.port);
    try {
      const n = 5;
      const before = await backendStats(backend);
      for (let i = 0; i < n; i++) {
        const r = await httpGet(probe.port, '/', PAIR_HOST);
        if (r.status !== 200) throw new Error(`wire check: nginx pair: ${r.status} ${r.body.slice(0, 200)}`);
      }
      const after = await backendStats(backend);
      const kinds = relay.firstBytes.map(classify);
      const hex = relay.firstBytes[0]?.subarray(0, 6).toString('hex').replace(/(..)/g, '$1 ').trim() ?? '';
      if (kinds.length === 0 || kinds.some((k) => k !== 'tls')) {
        throw new Error(`wire check: nginx pair: expected TLS, nginx A opened ${kinds.length} connection(s) to B: ${kinds.join(', ') || 'none'} (first bytes ${hex})`);
      }
      const tls = (after.tlsByHost[PAIR_HOST] ?? 0) - (before.tlsByHost[PAIR_HOST] ?? 0);
      if (tls !== n) throw new Error(`wire check: nginx pair: ${tls}/${n} requests reached the backend marked "TLSv1.3 SUCCESS" by nginx B`);
      verified = `nginx pair: TLS on the wire between A and B (${kinds.length} connection(s), first bytes ${hex}: a ClientHello), and ${tls}/${n} requests reached the backend marked by B as TLSv1.3 with a verified client certificate`;
    } finally {
      await probe.proc.stop();
    }
  } finally {
    await relay.close();
  }
  const a = await startA('nginx-a', bPort);
  return {
    target: {
      name: NAMES.nginxPair,
      url: `http://127.0.0.1:${a.port}/`,
      host: PAIR_HOST,
      nginxTls: true,
      proxies: [
        { label: 'nginx A (master+worker)', pid: a.proc.pid },
        { label: 'nginx B (master+worker)', pid: bProc.pid },
      ],
    },
    verified,
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
