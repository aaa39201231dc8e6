/**
 * A local fake of the Palette API (node:http on 127.0.0.1) for the two calls patchpilot makes. It checks what a real
 * Palette would: the path, the method, the ApiKey header (and ProjectUid when the cluster is project-scoped), and
 * the body shape of the osPatch PATCH (`{"osPatchConfig":{...}}`: a bare `{"onDemandPatchAfter":""}` is refused with
 * 400). It stores each cluster's osPatchConfig, applies a PATCH as a replacement of the whole object, reads an empty
 * onDemandPatchAfter back as Go's zero time (as the seed says Palette does), and answers 401/403/404/500 when told.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeCluster {
  /** Required ProjectUid header value (a project-scoped cluster), or undefined for a tenant-scoped one. */
  projectUid?: string;
  osPatchConfig?: Record<string, unknown>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface FakePalette {
  url: string;
  apiKey: string;
  clusters: Map<string, FakeCluster>;
  requests: RecordedRequest[];
  /** The next request is answered with this status (and a Palette-style error body), whatever it asks. */
  failNext(status: number, message?: string): void;
  close(): Promise<void>;
}

const ZERO_TIME = '0001-01-01T00:00:00.000Z';

export async function startFakePalette(options: { apiKey: string; clusters?: Record<string, FakeCluster> }): Promise<FakePalette> {
  const clusters = new Map(Object.entries(options.clusters ?? {}));
  const requests: RecordedRequest[] = [];
  const failures: { status: number; message: string }[] = [];

  const send = (res: ServerResponse, status: number, body?: unknown) => {
    if (body === undefined) {
      res.writeHead(status);
      res.end();
      return;
    }
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, code: string, message: string) => send(res, status, { code, message, ref: 'fake' });

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    let body: unknown = undefined;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        return error(res, 400, 'InvalidJson', 'body is not JSON');
      }
    }
    requests.push({ method: req.method ?? '', path, headers: { ...req.headers }, body });
    const failure = failures.shift();
    if (failure) return error(res, failure.status, failure.status >= 500 ? 'InternalError' : 'Error', failure.message);
    if (req.headers.apikey !== options.apiKey) return error(res, 401, 'Unauthorized', 'invalid credentials');
    if (req.headers.authorization !== undefined) return error(res, 400, 'BadRequest', 'use the ApiKey header');
    const match = /^\/v1\/spectroclusters\/([^/]+)(\/clusterConfig\/osPatch)?$/.exec(path);
    if (!match) return error(res, 404, 'NotFound', `no route ${path}`);
    const uid = decodeURIComponent(match[1]!);
    const cluster = clusters.get(uid);
    if (!cluster) return error(res, 404, 'ResourceNotFound', `Cluster '${uid}' not found`);
    if (cluster.projectUid !== undefined && req.headers.projectuid !== cluster.projectUid) {
      return error(res, 403, 'Forbidden', `Operation not allowed: cluster '${uid}' belongs to another project`);
    }
    if (!match[2]) {
      if (req.method !== 'GET') return error(res, 405, 'MethodNotAllowed', `${req.method} not allowed`);
      const machineManagementConfig = cluster.osPatchConfig ? { osPatchConfig: cluster.osPatchConfig } : {};
      return send(res, 200, { metadata: { uid, name: `cluster-${uid}` }, spec: { clusterConfig: { machineManagementConfig } } });
    }
    if (req.method !== 'PATCH') return error(res, 405, 'MethodNotAllowed', `${req.method} not allowed`);
    if (req.headers['content-type'] !== 'application/json') return error(res, 415, 'UnsupportedMediaType', 'application/json only');
    const entity = body as { osPatchConfig?: unknown } | undefined;
    if (typeof entity !== 'object' || entity === null || typeof entity.osPatchConfig !== 'object' || entity.osPatchConfig === null || Object.keys(entity).length !== 1) {
      return error(res, 400, 'InvalidRequest', 'body must be a V1OsPatchEntity: {"osPatchConfig":{...}}');
    }
    const next = { ...(entity.osPatchConfig as Record<string, unknown>) };
    if (next.onDemandPatchAfter === '') next.onDemandPatchAfter = ZERO_TIME;
    else if (typeof next.onDemandPatchAfter === 'string' && Date.parse(next.onDemandPatchAfter) < Date.now() - 10 * 60_000) {
      // Terraform's validation and the seed: a past time is refused.
      return error(res, 400, 'InvalidRequest', 'onDemandPatchAfter must be in the future');
    }
    cluster.osPatchConfig = next;
    return send(res, 204);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    apiKey: options.apiKey,
    clusters,
    requests,
    failNext: (status, message = 'injected failure') => failures.push({ status, message }),
    close: () =>
      new Promise<void>((closed) => {
        server.closeAllConnections();
        server.close(() => closed());
      }),
  };
}
