/**
 * The Prometheus alerts adapter, in-process: what it makes of the answers of /api/v1/alerts and of failures. The real
 * Prometheus (Debian's package) is exercised in prometheus.full.test.ts.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { prometheusAlerts, redactUrl } from '../../src/service/prometheus.ts';

let server: Server | null = null;
afterEach(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(null)));
  server = null;
});

async function serve(status: number, body: string): Promise<string> {
  const paths: string[] = [];
  server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(status, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/prom/`;
}

const signal = () => AbortSignal.timeout(5000);

describe('prometheusAlerts', () => {
  it('returns the names of firing alerts only, asking /api/v1/alerts under the base URL', async () => {
    const alerts = [
      { labels: { alertname: 'NodeDown', severity: 'critical' }, state: 'firing' },
      { labels: { alertname: 'DiskFilling' }, state: 'pending' },
      { labels: { alertname: 'Watchdog' }, state: 'firing' },
    ];
    const url = await serve(200, JSON.stringify({ status: 'success', data: { alerts } }));
    expect(await prometheusAlerts.firingAlerts(url, signal())).toEqual(['NodeDown', 'Watchdog']);
  });

  it.each([
    { status: 503, body: 'overloaded', error: /answered HTTP 503/ },
    { status: 200, body: '{"status":"error","error":"bad"}', error: /did not answer like the Prometheus alerts API/ },
    { status: 200, body: 'not json', error: /did not answer like the Prometheus alerts API/ },
  ])('throws on HTTP $status with $body', async ({ status, body, error }) => {
    const url = await serve(status, body);
    await expect(prometheusAlerts.firingAlerts(url, signal())).rejects.toThrow(error);
  });

  it('throws naming the URL when nothing listens, without its credentials', async () => {
    const url = await serve(200, '{}');
    const port = (server!.address() as { port: number }).port;
    await new Promise((resolve) => server!.close(resolve));
    server = null;
    const error = await prometheusAlerts.firingAlerts(`http://admin:s3cret@127.0.0.1:${port}`, signal()).catch((e: Error) => e);
    expect(String(error)).toMatch(/ECONNREFUSED|fetch failed/);
    expect(String(error)).not.toContain('s3cret');
    expect(url).toContain('/prom/');
  });

  it('redacts credentials from URLs', () => {
    expect(redactUrl('https://user:pw@prom.example:9090/x')).toBe('https://***@prom.example:9090/x');
    expect(redactUrl('http://prom:9090')).toBe('http://prom:9090/');
  });
});

describe('prometheusAlerts with credentials in the URL', () => {
  it('sends them as Basic authentication, never in the request line', async () => {
    let authorization: string | undefined;
    let path = '';
    server = createServer((req, res) => {
      authorization = req.headers.authorization;
      path = req.url ?? '';
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { alerts: [] } }));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    expect(await prometheusAlerts.firingAlerts(`http://admin:s%40cret@127.0.0.1:${port}`, signal())).toEqual([]);
    expect(authorization).toBe(`Basic ${Buffer.from('admin:s@cret').toString('base64')}`);
    expect(path).toBe('/api/v1/alerts');
  });
});
