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
    const req = request(`${url}${path}`, { method, headers: body ? { 'Content-Type': 'application/json' } : {} }, (res) => {
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
