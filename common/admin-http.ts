// A tiny JSON/text admin server: routes are exact paths, everything else is 404.
import * as http from 'node:http';

export type Handler = (req: http.IncomingMessage) => Promise<{ status?: number; type?: string; body: string | object }> | { status?: number; type?: string; body: string | object };

export function adminServer(routes: Record<string, Handler>): http.Server {
  return http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const key = `${req.method} ${path}`;
    const h = routes[key] ?? (req.method === 'HEAD' ? routes[`GET ${path}`] : undefined);
    if (!h) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    try {
      const out = await h(req);
      const text = typeof out.body === 'string' ? out.body : JSON.stringify(out.body, null, 2) + '\n';
      const type = out.type ?? (typeof out.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json');
      res.writeHead(out.status ?? 200, { 'content-type': type }).end(text);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
    }
  });
}
