// A tiny JSON/text admin server: routes are exact paths, everything else is 404.
import * as http from 'node:http';

export type Handler = (req: http.IncomingMessage) => Promise<{ status?: number; type?: string; body: string | object }> | { status?: number; type?: string; body: string | object };

/**
 * Connections the admin port takes at once: operators and scrapers, a handful. Past it Node
 * closes the new one at once, so that a flood of connections on the admin port cannot take the
 * process's descriptors from the traffic it serves.
 */
export const ADMIN_MAX_CONNECTIONS = 128;

export function adminServer(routes: Record<string, Handler>, maxConnections = ADMIN_MAX_CONNECTIONS): http.Server {
  const server = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, async (req, res) => {
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
  server.maxConnections = maxConnections;
  return server;
}
