/**
 * Which answers the adapter takes from a server: what a real API server may say (an empty list, a 404 Status for a
 * missing Lease, Go's plain "404 page not found" for an API group it does not serve) is read as before; what only
 * something else says (a 404 page for a core path, a list of letters, a Lease without a name) is a
 * KubeNotAnApiServerError, never "no node" or "the Lease is free".
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeCluster, KubeNotAnApiServerError } from '../../src/cluster/kube/index.ts';
import { summarizeBody } from '../../src/cluster/kube/requests.ts';
import { VirtualClock } from '../../src/engine/clock.ts';

let server: Server | undefined;

afterEach(async () => {
  const open = server;
  server = undefined;
  if (!open) return;
  open.closeAllConnections();
  await new Promise((done) => open.close(done));
});

async function clusterAnswering(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<KubeCluster> {
  server = createServer(answer);
  await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return new KubeCluster({ kubeConfig, clock: new VirtualClock(0), events: false, retry: { attempts: 1 } });
}

const json = (res: ServerResponse, status: number, body: unknown) => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

describe('answers a real API server gives', () => {
  it('an empty NodeList is no node', async () => {
    const cluster = await clusterAnswering((_req, res) => json(res, 200, { kind: 'NodeList', apiVersion: 'v1', metadata: {}, items: [] }));
    expect(await cluster.listNodes()).toEqual([]);
  });

  it('a 404 Status for the Lease is "no Lease"', async () => {
    const cluster = await clusterAnswering((_req, res) => json(res, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: 'leases.coordination.k8s.io "x" not found' }));
    expect(await cluster.readLease('x')).toBeNull();
  });

  it('"404 page not found" for an API group it does not serve (Palette\'s on a plain cluster) is not refused', async () => {
    const cluster = await clusterAnswering((req, res) => {
      if (req.url?.startsWith('/apis/')) return void res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
      json(res, 200, { kind: 'List', apiVersion: 'v1', metadata: {}, items: [] });
    });
    await expect(cluster.paletteArtifacts()).resolves.toMatchObject({ managed: false });
  });
});

describe('answers only something else gives', () => {
  it('a web server\'s 404 page for the nodes', async () => {
    const cluster = await clusterAnswering((_req, res) => void res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>Not Found</body></html>'));
    const err = await cluster.listNodes().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeNotAnApiServerError);
    expect((err as Error).message).toMatch(/^the server at http:\/\/127\.0\.0\.1:\d+ is not a Kubernetes API server \(HTTP 404 for \/api\/v1\/nodes\)$/);
  });

  it('a web server\'s 404 page for the Lease is not "no Lease"', async () => {
    const cluster = await clusterAnswering((_req, res) => void res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>Not Found</body></html>'));
    await expect(cluster.readLease('x')).rejects.toBeInstanceOf(KubeNotAnApiServerError);
  });

  it.each([
    ['items that are a string', { kind: 'NodeList', items: 'notalist' }],
    ['items without a name', { kind: 'NodeList', items: [{ metadata: {} }] }],
    ['no items', { kind: 'NodeList' }],
    ['items that are null', { kind: 'NodeList', items: null }],
  ])('a node list with %s', async (_what, body) => {
    const cluster = await clusterAnswering((_req, res) => json(res, 200, body));
    await expect(cluster.listNodes()).rejects.toBeInstanceOf(KubeNotAnApiServerError);
  });

  it('a Lease without a name', async () => {
    const cluster = await clusterAnswering((_req, res) => json(res, 200, { ok: true }));
    await expect(cluster.readLease('x')).rejects.toBeInstanceOf(KubeNotAnApiServerError);
  });
});

describe('a body that is not a Status, in a message', () => {
  it('is one line: an HTML page by its title, text with its whitespace folded and cut', () => {
    expect(summarizeBody('<!DOCTYPE html>\n<html><head><title>502 Bad\n Gateway</title></head><body>x</body></html>')).toBe('an HTML page titled "502 Bad Gateway"');
    expect(summarizeBody('<html>\n<body>x</body></html>')).toBe('an HTML page');
    expect(summarizeBody('upstream\nconnect error\n')).toBe('upstream connect error');
    expect(summarizeBody('x'.repeat(300))).toBe(`${'x'.repeat(200)}…`);
  });
});
