// The nginx side of the benchmark: a reverse proxy (one worker, upstream keepalive) in
// front of the same backend, if an nginx binary is installed.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Target } from './target';
import { freePort, httpGet, startProc, waitFor } from './util';

export function nginxVersion(bin: string): string {
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().replace(/^nginx version:\s*/, '');
}

export async function startNginx(bin: string, dir: string, backendPort: number): Promise<Target> {
  const prefix = path.join(dir, 'nginx');
  fs.mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  // Running as root, nginx's worker drops to `nobody`; let it traverse the temp dir.
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(prefix, 0o755);
  fs.chmodSync(path.join(prefix, 'tmp'), 0o777);
  const port = await freePort();
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
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`,
  );
  // -e (early error log) exists since 1.19.5; older builds would try /var/log/nginx first.
  const [maj, min, pat] = nginxVersion(bin).replace(/^nginx\//, '').split('.').map(Number);
  const modern = maj > 1 || (maj === 1 && (min > 19 || (min === 19 && pat >= 5)));
  const args = ['-p', prefix, '-c', conf, ...(modern ? ['-e', path.join(prefix, 'error.log')] : [])];
  const proc = startProc('nginx', bin, args);
  await waitFor('nginx to proxy a 200', async () => (await httpGet(port, '/')).status === 200, 10_000).catch((err: Error) => {
    let log = '';
    try {
      log = fs.readFileSync(path.join(prefix, 'error.log'), 'utf8');
    } catch {
      /* none */
    }
    throw new Error(`${err.message}\n${proc.output()}${log}`.slice(-2000));
  });
  return { name: 'nginx', url: `http://127.0.0.1:${port}/`, proxies: [{ label: 'nginx (master+worker)', pid: proc.pid }] };
}
