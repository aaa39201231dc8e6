/**
 * The repository server: one static HTTP server in the test process, listening on a Unix socket per repository
 * variant (no TCP port on the host at all). Each node reaches it through its own loopback: socat inside the node's
 * network namespace listens on 127.0.0.1:18080 and connects to the socket (notes/os-harness.md, F).
 */
import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, normalize } from 'node:path';

export interface RepoServer {
  /** Unix socket path per variant name. */
  sockets: Record<string, string>;
  /** Requests served, per variant (for diagnostics). */
  requests: Record<string, number>;
  close(): Promise<void>;
}

export async function startRepoServer(roots: Record<string, string>, socketDir: string): Promise<RepoServer> {
  const servers: Server[] = [];
  const sockets: Record<string, string> = {};
  const requests: Record<string, number> = {};
  for (const [name, root] of Object.entries(roots)) {
    requests[name] = 0;
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      requests[name] = (requests[name] ?? 0) + 1;
      const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/'));
      if (path.includes('..') || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(400).end();
        return;
      }
      const file = join(root, path);
      let size: number;
      try {
        const st = statSync(file);
        if (!st.isFile()) throw new Error('not a file');
        size = st.size;
      } catch {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
    });
    const sock = join(socketDir, `repo-${name}.sock`);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sock, () => resolve());
    });
    servers.push(server);
    sockets[name] = sock;
  }
  return {
    sockets,
    requests,
    close: () =>
      Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      ).then(() => undefined),
  };
}
