/**
 * Requests a client should never send still get a Status body: an unknown HTTP method, a 100,000-deep JSON body, a
 * body beyond the API server's --max-request-body-bytes.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startKubeApiServer, type KubeApiServer } from '../../src/sim/kube-api/index.ts';
import { clusterStore, wallClock } from './fixtures.ts';

let server: KubeApiServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A raw request (fetch refuses methods such as FOO). */
function send(url: string, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    // Content-Length named: Node sends the body of a DELETE unframed otherwise (no chunked encoding for DELETE).
    const headers = body ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {};
    const req = request(`${url}${path}`, { method, headers }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => done({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', fail);
    req.end(body);
  });
}

describe('bad requests get a Status', () => {
  it.each([
    { name: 'an unknown HTTP method', method: 'FOO', body: undefined, message: 'malformed HTTP request: HPE_INVALID_METHOD' },
    { name: 'a JSON body nested 100,000 deep', method: 'POST', body: `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, message: 'json parse error: nested too deeply (the limit is 256 levels)' },
  ])('$name', async ({ method, body, message }) => {
    server = await startKubeApiServer({ store: clusterStore(wallClock) });
    const answer = await send(server.url, method, '/api/v1/namespaces/default/configmaps', body);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'BadRequest', code: 400 });
  });
});

describe('a body of another kind or version than the URL is refused, as the decoder refuses it', () => {
  const status = (message: string) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'BadRequest', code: 400 });

  it('on create and on replace; nothing is stored', async () => {
    server = await startKubeApiServer({ store: clusterStore(wallClock) });
    const path = '/api/v1/namespaces/default/configmaps';
    const secret = await send(server.url, 'POST', path, JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'as-secret' }, data: { k: 'dg==' } }));
    expect(secret.status).toBe(400);
    expect(JSON.parse(secret.body)).toEqual(status('Secret in version "v1" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion'));
    const version = await send(server.url, 'POST', path, JSON.stringify({ apiVersion: 'apps/v1', kind: 'ConfigMap', metadata: { name: 'as-apps' } }));
    expect(version.status).toBe(400);
    expect(JSON.parse(version.body)).toEqual(status('the API version in the data (apps/v1) does not match the expected API version (v1)'));
    expect((await send(server.url, 'GET', `${path}/as-secret`)).status).toBe(404);
    expect((await send(server.url, 'GET', `${path}/as-apps`)).status).toBe(404);

    // Left out, the URL's kind and version are taken.
    expect((await send(server.url, 'POST', path, JSON.stringify({ metadata: { name: 'plain' }, data: { k: 'v' } }))).status).toBe(201);
    const replaced = await send(server.url, 'PUT', `${path}/plain`, JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'plain' }, data: { k: 'w' } }));
    expect(replaced.status).toBe(400);
    expect(JSON.parse((await send(server.url, 'GET', `${path}/plain`)).body)).toMatchObject({ kind: 'ConfigMap', data: { k: 'v' } });
  });
});

describe('paging: the sandbox answers lists whole, but refuses what a real server refuses', () => {
  const status = (message: string) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'BadRequest', code: 400 });

  it('takes limit=500 (kubectl, client-go pagers) and answers the whole list without a continue token', async () => {
    server = await startKubeApiServer({ store: clusterStore(wallClock) });
    const whole = await send(server.url, 'GET', '/api/v1/nodes');
    const limited = await send(server.url, 'GET', '/api/v1/nodes?limit=500');
    expect(limited.status).toBe(200);
    expect(JSON.parse(limited.body).items).toEqual(JSON.parse(whole.body).items);
    expect(JSON.parse(limited.body).metadata.continue).toBeUndefined();
  });

  it('refuses a limit that is not a whole number and any continue token (it issues none)', async () => {
    server = await startKubeApiServer({ store: clusterStore(wallClock) });
    const badLimit = await send(server.url, 'GET', '/api/v1/nodes?limit=abc');
    expect(badLimit.status).toBe(400);
    expect(JSON.parse(badLimit.body)).toEqual(status('strconv.ParseInt: parsing "abc": invalid syntax'));
    const token = await send(server.url, 'GET', '/api/v1/nodes?limit=10&continue=garbage');
    expect(token.status).toBe(400);
    expect(JSON.parse(token.body).message).toMatch(/^invalid continue token: /);
  });
});

describe('request bodies are limited as kube-apiserver limits them (--max-request-body-bytes, 3 MiB by default)', () => {
  const path = '/api/v1/namespaces/default/configmaps';
  const tooLarge = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Request entity too large: limit is 3145728', reason: 'RequestEntityTooLarge', code: 413 };

  it('refuses a body one byte over the limit with 413, and stores nothing; a body at the limit is read', async () => {
    server = await startKubeApiServer({ store: clusterStore(wallClock) });
    const over = JSON.stringify({ metadata: { name: 'over' }, data: { k: '' } });
    const overBody = over.replace('"k":""', `"k":"${'x'.repeat(3 * 1024 * 1024 + 1 - over.length)}"`);
    expect(Buffer.byteLength(overBody)).toBe(3 * 1024 * 1024 + 1);
    const answer = await send(server.url, 'POST', path, overBody);
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual(tooLarge);
    expect((await send(server.url, 'GET', `${path}/over`)).status).toBe(404);
    // At the limit exactly, the body is decoded: this one is then too large a ConfigMap (422), not too large a request.
    const atLimit = await send(server.url, 'POST', path, overBody.replace('"k":"x', '"k":"'));
    expect(atLimit.status).toBe(422);
  });

  it('answers a body without end (chunked, no Content-Length) with 413 once past the limit, without reading the rest', async () => {
    server = await startKubeApiServer({ store: clusterStore(wallClock) });
    const answer = await new Promise<{ status: number; body: string; sent: number }>((done, fail) => {
      let sent = 0;
      let answered = false;
      const req = request(`${server!.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
        answered = true;
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: text, sent }));
      });
      // The server closes the connection after its answer: the rest of the upload fails, as against kube-apiserver.
      req.on('error', (error) => (answered ? undefined : fail(error)));
      const chunk = Buffer.alloc(1024 * 1024, 'x');
      const pump = () => {
        // 560 MB if nobody stops it; the old server read it all into one string and answered 500.
        while (!answered && sent < 560 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(sent === chunk.length ? Buffer.concat([Buffer.from('{"data":{"k":"'), chunk]) : chunk)) return req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual(tooLarge);
    expect(answer.sent).toBeLessThan(64 * 1024 * 1024);
    // The server goes on answering.
    expect((await send(server.url, 'GET', path)).status).toBe(200);
  });

  it('takes another limit, as --max-request-body-bytes does', async () => {
    server = await startKubeApiServer({ store: clusterStore(wallClock), maxRequestBodyBytes: 100 });
    const answer = await send(server.url, 'POST', path, JSON.stringify({ metadata: { name: 'c' }, data: { k: 'x'.repeat(100) } }));
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).message).toBe('Request entity too large: limit is 100');
    expect((await send(server.url, 'POST', path, JSON.stringify({ metadata: { name: 'c' } }))).status).toBe(201);
  });
});

// The delete handler decodes its body as DeleteOptions (endpoints/handlers/delete.go): a body of another kind or with
// wrongly typed fields is the decoder's 400 (since Kubernetes 1.35, kubernetes#133358; 500 before), a decoded one
// meets ValidateDeleteOptions (422 on DeleteOptions.meta.k8s.io), and preconditions are checked against the object.
describe('a DELETE body is decoded as DeleteOptions, and nothing is deleted when it does not decode', () => {
  const path = '/api/v1/namespaces/default/configmaps';
  const badRequest = (message: string) => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'BadRequest', code: 400 });

  async function withConfigMap(): Promise<{ url: string; uid: string; resourceVersion: string }> {
    server ??= await startKubeApiServer({ store: clusterStore(wallClock) });
    await send(server.url, 'DELETE', `${path}/c`);
    const created = JSON.parse((await send(server.url, 'POST', path, JSON.stringify({ metadata: { name: 'c' }, data: { k: 'v' } }))).body);
    return { url: server.url, uid: created.metadata.uid, resourceVersion: created.metadata.resourceVersion };
  }

  it.each([
    { body: { gracePeriodSeconds: 'x' }, message: 'json: cannot unmarshal string into Go struct field DeleteOptions.gracePeriodSeconds of type int64' },
    { body: { gracePeriodSeconds: 1.5 }, message: 'json: cannot unmarshal number 1.5 into Go struct field DeleteOptions.gracePeriodSeconds of type int64' },
    { body: { orphanDependents: 'yes' }, message: 'json: cannot unmarshal string into Go struct field DeleteOptions.orphanDependents of type bool' },
    { body: { preconditions: 'x' }, message: 'json: cannot unmarshal string into Go struct field DeleteOptions.preconditions of type v1.Preconditions' },
    { body: { preconditions: { uid: 7 } }, message: 'json: cannot unmarshal number into Go struct field Preconditions.preconditions.uid of type types.UID' },
    { body: { propagationPolicy: ['Orphan'] }, message: 'json: cannot unmarshal array into Go struct field DeleteOptions.propagationPolicy of type v1.DeletionPropagation' },
    { body: { dryRun: 'All' }, message: 'json: cannot unmarshal string into Go struct field DeleteOptions.dryRun of type []string' },
  ])('refuses $body with 400 as encoding/json words it', async ({ body, message }) => {
    const { url } = await withConfigMap();
    const answer = await send(url, 'DELETE', `${path}/c`, JSON.stringify(body));
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toEqual(badRequest(message));
    expect((await send(url, 'GET', `${path}/c`)).status).toBe(200);
  });

  it('refuses a body of another kind (400); takes DeleteOptions with or without its kind and apiVersion', async () => {
    const { url } = await withConfigMap();
    const pod = await send(url, 'DELETE', `${path}/c`, JSON.stringify({ kind: 'Pod' }));
    expect(pod.status).toBe(400);
    expect(JSON.parse(pod.body)).toMatchObject({ reason: 'BadRequest', code: 400 });
    // Upstream goes on with ` in scheme "<file:line of its build>"`, which the sandbox leaves out.
    expect(JSON.parse(pod.body).message).toMatch(/^no kind "Pod" is registered for version "v1"/);
    expect((await send(url, 'GET', `${path}/c`)).status).toBe(200);
    const list = await send(url, 'DELETE', path, JSON.stringify({ kind: 'ConfigMap', apiVersion: 'v1' }));
    expect(JSON.parse(list.body).message).toMatch(/^no kind "ConfigMap" is registered for version "v1"/);
    expect((await send(url, 'GET', `${path}/c`)).status).toBe(200);
    expect((await send(url, 'DELETE', `${path}/c`, JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' }))).status).toBe(200);
    await withConfigMap();
    expect((await send(url, 'DELETE', `${path}/c`, JSON.stringify({ gracePeriodSeconds: 0, unknownField: 1 }))).status).toBe(200);
  });

  it('answers options that break ValidateDeleteOptions with 422', async () => {
    const { url } = await withConfigMap();
    const both = await send(url, 'DELETE', `${path}/c`, JSON.stringify({ orphanDependents: false, propagationPolicy: 'Background' }));
    expect(both.status).toBe(422);
    expect(JSON.parse(both.body)).toMatchObject({
      reason: 'Invalid',
      message: 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Background": orphanDependents and deletionPropagation cannot be both set',
      details: { group: 'meta.k8s.io', kind: 'DeleteOptions' },
    });
    const unknown = await send(url, 'DELETE', `${path}/c?propagationPolicy=Sideways`);
    expect(unknown.status).toBe(422);
    expect(JSON.parse(unknown.body).message).toBe('DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan", "nil"');
    expect((await send(url, 'GET', `${path}/c`)).status).toBe(200);
  });

  it('honours preconditions: a uid or resourceVersion that is not the object\'s is 409 Conflict, the object stays', async () => {
    const { url, uid, resourceVersion } = await withConfigMap();
    const wrongUid = await send(url, 'DELETE', `${path}/c`, JSON.stringify({ preconditions: { uid: 'not-it' } }));
    expect(wrongUid.status).toBe(409);
    expect(JSON.parse(wrongUid.body)).toMatchObject({ reason: 'Conflict', message: `Operation cannot be fulfilled on configmaps "c": Precondition failed: UID in precondition: not-it, UID in object meta: ${uid}` });
    const staleRv = await send(url, 'DELETE', `${path}/c`, JSON.stringify({ preconditions: { resourceVersion: '1' } }));
    expect(staleRv.status).toBe(409);
    expect(JSON.parse(staleRv.body).message).toBe(`Operation cannot be fulfilled on configmaps "c": Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: ${resourceVersion}`);
    expect((await send(url, 'GET', `${path}/c`)).status).toBe(200);
    expect((await send(url, 'DELETE', `${path}/c`, JSON.stringify({ preconditions: { uid, resourceVersion } }))).status).toBe(200);
    expect((await send(url, 'GET', `${path}/c`)).status).toBe(404);
  });

  it('reads a whole-number query option as the parameter codec does', async () => {
    const { url } = await withConfigMap();
    const answer = await send(url, 'DELETE', `${path}/c?gracePeriodSeconds=soon`);
    expect(JSON.parse(answer.body)).toEqual(badRequest('strconv.ParseInt: parsing "soon": invalid syntax'));
    expect((await send(url, 'GET', `${path}/c`)).status).toBe(200);
  });
});

// A list's parameters as kube-apiserver takes them: the parameter codec (400), ValidateListOptions (422 on
// ListOptions.meta.k8s.io), then the watch cache or etcd, which answer a bad resourceVersion differently.
describe('list, watch and get parameters are checked as upstream checks them', () => {
  const body = (answer: { body: string }) => JSON.parse(answer.body) as { message?: string; reason?: string; code?: number; metadata?: { resourceVersion?: string }; items?: Array<{ metadata: { name: string } }>; details?: unknown };

  it('refuses a resourceVersionMatch ValidateListOptions refuses, with 422', async () => {
    server = await startKubeApiServer({ store: clusterStore(wallClock) });
    const bogus = await send(server.url, 'GET', '/api/v1/nodes?resourceVersion=1&resourceVersionMatch=Bogus');
    expect(bogus.status).toBe(422);
    expect(body(bogus)).toMatchObject({
      reason: 'Invalid',
      message: 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: "Bogus": supported values: "Exact", "NotOlderThan", ""',
      details: { group: 'meta.k8s.io', kind: 'ListOptions', causes: [{ reason: 'FieldValueNotSupported', field: 'resourceVersionMatch' }] },
    });
    expect(body(await send(server.url, 'GET', '/api/v1/nodes?resourceVersionMatch=NotOlderThan')).message).toBe(
      'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided',
    );
    expect(body(await send(server.url, 'GET', '/api/v1/nodes?resourceVersion=0&resourceVersionMatch=Exact')).message).toBe(
      'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
    );
    expect(body(await send(server.url, 'GET', '/api/v1/nodes?watch=1&resourceVersion=1&resourceVersionMatch=NotOlderThan')).message).toBe(
      'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch',
    );
  });

  it('refuses a timeoutSeconds that is no whole number with the parameter codec\'s 400, on a list and a watch', async () => {
    server = await startKubeApiServer({ store: clusterStore(wallClock) });
    for (const path of ['/api/v1/nodes?timeoutSeconds=abc', '/api/v1/nodes?watch=1&timeoutSeconds=abc']) {
      const answer = await send(server.url, 'GET', path);
      expect(answer.status).toBe(400);
      expect(body(answer)).toMatchObject({ reason: 'BadRequest', message: 'strconv.ParseInt: parsing "abc": invalid syntax' });
    }
  });

  it('answers a resourceVersion that is no number as the watch cache does (500, no reason), and as etcd does when the list goes there (400)', async () => {
    server = await startKubeApiServer({ store: clusterStore(wallClock) });
    const message = 'resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax';
    for (const path of ['/api/v1/nodes?resourceVersion=abc', '/api/v1/nodes?watch=1&resourceVersion=abc', '/api/v1/namespaces/default?resourceVersion=abc']) {
      const answer = await send(server.url, 'GET', path);
      expect(answer.status, path).toBe(500);
      expect(JSON.parse(answer.body)).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, code: 500 });
    }
    for (const path of ['/api/v1/nodes?resourceVersion=abc&resourceVersionMatch=Exact', '/api/v1/nodes?resourceVersion=abc&limit=10']) {
      const answer = await send(server.url, 'GET', path);
      expect(answer.status, path).toBe(400);
      expect(body(answer)).toMatchObject({ reason: 'BadRequest', message: `invalid resource version: ${message}` });
    }
  });

  it('reads an Exact list at its resourceVersion, and answers one compacted away or not yet reached as upstream does', async () => {
    const store = clusterStore(wallClock);
    server = await startKubeApiServer({ store });
    const path = '/api/v1/namespaces/default/configmaps';
    await send(server.url, 'POST', path, JSON.stringify({ metadata: { name: 'a' }, data: { v: '1' } }));
    const before = store.resourceVersion;
    await send(server.url, 'POST', path, JSON.stringify({ metadata: { name: 'b' } }));
    store.modify('configmaps', { namespace: 'default', name: 'a' }, (cm) => void (cm.data = { v: '2' }), { internal: true });
    const current = store.resourceVersion;

    const exact = body(await send(server.url, 'GET', `${path}?resourceVersion=${before}&resourceVersionMatch=Exact`));
    expect(exact.metadata?.resourceVersion).toBe(before);
    expect(exact.items?.map((i) => i.metadata.name)).toEqual(['a']);
    expect(exact.items?.[0]).toMatchObject({ data: { v: '1' } });
    // The legacy rule: a limit and a resourceVersion other than 0, without resourceVersionMatch, is exact too.
    expect(body(await send(server.url, 'GET', `${path}?resourceVersion=${before}&limit=500`)).items?.map((i) => i.metadata.name)).toEqual(['a']);
    // NotOlderThan (or no resourceVersionMatch, without a limit) reads the current state.
    const notOlder = body(await send(server.url, 'GET', `${path}?resourceVersion=${before}&resourceVersionMatch=NotOlderThan`));
    expect(notOlder.metadata?.resourceVersion).toBe(current);
    expect(notOlder.items?.map((i) => i.metadata.name)).toEqual(['a', 'b']);

    const future = Number(current) + 5;
    const tooLarge = await send(server.url, 'GET', `${path}?resourceVersion=${future}`);
    expect(tooLarge.status).toBe(504);
    expect(body(tooLarge)).toMatchObject({ reason: 'Timeout', message: `Timeout: Too large resource version: ${future}, current: ${current}`, details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 } });
    const futureExact = await send(server.url, 'GET', `${path}?resourceVersion=${future}&resourceVersionMatch=Exact`);
    expect(futureExact.status).toBe(500);
    expect(body(futureExact).message).toBe('etcdserver: mvcc: required revision is a future revision');
  });

  it('answers 410 to an Exact list older than the history the server keeps', async () => {
    const { KubeStore } = await import('../../src/sim/kube-api/index.ts');
    const store = new KubeStore({ clock: wallClock, watchHistory: 1 });
    for (const name of ['default', 'kube-system', 'os-patch']) store.create('namespaces', { metadata: { name } }, { internal: true });
    server = await startKubeApiServer({ store });
    const gone = await send(server.url, 'GET', '/api/v1/namespaces?resourceVersion=1&resourceVersionMatch=Exact');
    expect(gone.status).toBe(410);
    expect(JSON.parse(gone.body)).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'The resourceVersion for the provided list is too old.', reason: 'Expired', code: 410 });
    expect(body(await send(server.url, 'GET', '/api/v1/namespaces?resourceVersion=2&resourceVersionMatch=Exact')).items?.map((i) => i.metadata.name)).toEqual(['default', 'kube-system']);
  });
});
