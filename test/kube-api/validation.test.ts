/**
 * The sandbox refuses what a real API server refuses, with the same codes and messages: undecodable bodies (types
 * from the upstream OpenAPI schema, MicroTime's six digits) are 400, a patch that does not decode is upstream's 422 on
 * `patch`, and semantic rules (labels, annotations, Event namespaces, Leases, Node taints) are 422 Invalid with causes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startKubeApiServer, type KubeApiServer, type KubeStore } from '../../src/sim/kube-api/index.ts';
import { clusterStore, node, wallClock } from './fixtures.ts';

let server: KubeApiServer | undefined;
let store: KubeStore;
let url: string;

async function serve(): Promise<void> {
  store = clusterStore(wallClock);
  store.create('nodes', node('n1'), { internal: true });
  server = await startKubeApiServer({ store });
  url = server.url;
}

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function call(method: string, path: string, body: unknown, contentType = 'application/json') {
  const response = await fetch(`${url}${path}`, { method, headers: { 'Content-Type': contentType }, body: JSON.stringify(body) });
  return { code: response.status, body: (await response.json()) as { reason?: string; message?: string; code?: number; details?: { causes?: { reason: string; field: string; message: string }[] } } };
}

const MERGE = 'application/merge-patch+json';
const lease = (spec: Record<string, unknown>) => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l1' }, spec });

describe('the sandbox refuses what Kubernetes refuses', () => {
  it('refuses a merge patch that makes labels a string (422 on patch), and the labels stay as they were', async () => {
    await serve();
    const answer = await call('PATCH', '/api/v1/nodes/n1', { metadata: { labels: 'not-a-map' } }, MERGE);
    expect(answer.code).toBe(422);
    expect(answer.body.reason).toBe('Invalid');
    expect(answer.body.message).toMatch(/^ "" is invalid: patch: Invalid value: ".*": metadata\.labels: must be object/);
    expect(answer.body.details?.causes?.[0]).toMatchObject({ reason: 'FieldValueInvalid', field: 'patch' });
    expect(store.get('nodes', { name: 'n1' }).metadata.labels).toMatchObject({ 'kubernetes.io/os': 'linux' });
  });

  it('refuses spec.unschedulable "yes" instead of dropping it', async () => {
    await serve();
    const answer = await call('PATCH', '/api/v1/nodes/n1', { spec: { unschedulable: 'yes' } }, MERGE);
    expect(answer.code).toBe(422);
    expect(answer.body.message).toContain('spec.unschedulable: must be boolean');
    expect((store.get('nodes', { name: 'n1' }).spec as Record<string, unknown>).unschedulable).toBeUndefined();
  });

  it('answers a create whose types are wrong with 400, as the decoder words it', async () => {
    await serve();
    const answer = await call('POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', lease({ leaseDurationSeconds: 'sixty' }));
    expect(answer).toMatchObject({ code: 400, body: { reason: 'BadRequest', message: 'Lease in version "v1" cannot be handled as a Lease: spec.leaseDurationSeconds: must be integer' } });
  });

  it('wants MicroTimes with exactly six fractional digits', async () => {
    await serve();
    const millis = await call('POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', lease({ renewTime: '2026-12-06T04:00:00.123Z' }));
    expect(millis.code).toBe(400);
    expect(millis.body.message).toContain('spec.renewTime: parsing time "2026-12-06T04:00:00.123Z"');
    const micros = await call('POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', lease({ renewTime: '2026-12-06T04:00:00.123456Z', leaseDurationSeconds: 15 }));
    expect(micros.code).toBe(201);
  });

  it('refuses a Lease whose duration is not positive (422 with the field)', async () => {
    await serve();
    const answer = await call('POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', lease({ leaseDurationSeconds: 0 }));
    expect(answer.code).toBe(422);
    expect(answer.body.message).toBe('Lease.coordination.k8s.io "l1" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0');
    expect(answer.body.details?.causes).toEqual([{ reason: 'FieldValueInvalid', field: 'spec.leaseDurationSeconds', message: 'Invalid value: 0: must be greater than 0' }]);
  });

  it('refuses label keys and values that are not qualified names', async () => {
    await serve();
    const answer = await call('PATCH', '/api/v1/nodes/n1', { metadata: { labels: { 'bad key!': 'x', ok: 'not ok' } } }, MERGE);
    expect(answer.code).toBe(422);
    expect(answer.body.details?.causes?.map((c) => `${c.field} ${c.message.split(',')[0]}`)).toEqual([
      "metadata.labels Invalid value: \"bad key!\": name part must consist of alphanumeric characters",
      "metadata.labels Invalid value: \"not ok\": a valid label must be an empty string or consist of alphanumeric characters",
    ]);
    expect(store.get('nodes', { name: 'n1' }).metadata.labels?.['bad key!']).toBeUndefined();
  });

  it('refuses annotations over 256 KiB in total', async () => {
    await serve();
    const answer = await call('PATCH', '/api/v1/nodes/n1', { metadata: { annotations: { big: 'x'.repeat(300 * 1024) } } }, MERGE);
    expect(answer.code).toBe(422);
    expect(answer.body.message).toBe('Node "n1" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes');
  });

  it('refuses an Event about a Node outside default, and one with eventTime that lacks the reporting fields', async () => {
    await serve();
    const base = { involvedObject: { kind: 'Node', name: 'n1', apiVersion: 'v1' }, reason: 'Test', message: 'm', type: 'Normal' };
    const misplaced = await call('POST', '/api/v1/namespaces/os-patch/events', { metadata: { name: 'n1.a' }, ...base });
    expect(misplaced.code).toBe(422);
    expect(misplaced.body.message).toBe('Event "n1.a" is invalid: involvedObject.namespace: Invalid value: "": does not match event.namespace');
    expect((await call('POST', '/api/v1/namespaces/default/events', { metadata: { name: 'n1.b' }, ...base })).code).toBe(201);
    const modern = await call('POST', '/api/v1/namespaces/default/events', { metadata: { name: 'n1.c' }, ...base, eventTime: '2026-12-06T04:00:00.000000Z' });
    expect(modern.code).toBe(422);
    expect(modern.body.details?.causes?.map((c) => c.field)).toEqual(['reportingController', 'reportingInstance', 'action']);
    const pod = { ...base, involvedObject: { kind: 'Pod', name: 'p', namespace: 'kube-system' } };
    expect((await call('POST', '/api/v1/namespaces/default/events', { metadata: { name: 'p.a' }, ...pod })).code).toBe(422);
  });

  it('refuses taints with an unknown effect, and a change of a Node providerID once set', async () => {
    await serve();
    const taint = await call('PATCH', '/api/v1/nodes/n1', { spec: { taints: [{ key: 'k', effect: 'Sometimes' }] } }, MERGE);
    expect(taint.code).toBe(422);
    expect(taint.body.message).toContain('spec.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"');
    expect((await call('PATCH', '/api/v1/nodes/n1', { spec: { providerID: 'aws:///i-1' } }, MERGE)).code).toBe(200);
    const moved = await call('PATCH', '/api/v1/nodes/n1', { spec: { providerID: 'aws:///i-2' } }, MERGE);
    expect(moved.code).toBe(422);
    expect(moved.body.message).toContain('spec.providerID: Forbidden: node updates may not change providerID except from "" to valid');
  });

  // As upstream's ValidateConfigMap (pkg/apis/core/validation): both bags' keys checked, a shared key reported once,
  // on the data side.
  it('refuses ConfigMap keys that are not config keys, and a key in both data and binaryData', async () => {
    await serve();
    const path = '/api/v1/namespaces/default/configmaps';
    const answer = await call('POST', path, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c1' }, data: { 'bad key!': 'v', '..x': 'v', ok: 'v' }, binaryData: { ok: 'dg==', 'b/x': 'dg==' } });
    expect(answer.code).toBe(422);
    expect(answer.body.message).toMatch(/^ConfigMap "c1" is invalid: \[data\[bad key!\]: Invalid value: "bad key!": a valid config key must consist of alphanumeric characters/);
    expect(answer.body.details?.causes?.map((c) => `${c.field} ${c.message}`)).toEqual([
      'data[bad key!] Invalid value: "bad key!": a valid config key must consist of alphanumeric characters, \'-\', \'_\' or \'.\' (e.g. \'key.name\',  or \'KEY_NAME\',  or \'key-name\', regex used for validation is \'[-._a-zA-Z0-9]+\')',
      'data[..x] Invalid value: "..x": must not start with \'..\'',
      'data[ok] Invalid value: "ok": duplicate of key present in binaryData',
      'binaryData[b/x] Invalid value: "b/x": a valid config key must consist of alphanumeric characters, \'-\', \'_\' or \'.\' (e.g. \'key.name\',  or \'KEY_NAME\',  or \'key-name\', regex used for validation is \'[-._a-zA-Z0-9]+\')',
    ]);
    expect((await fetch(`${url}${path}/c1`)).status).toBe(404);
    expect((await call('POST', path, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c2' }, data: { 'agent.sh': 'v', KEY_NAME: 'v' } })).code).toBe(201);
  });

  // ValidateConfigMap's size rule: data and binaryData (counted decoded) together at most core.MaxSecretSize, 1 MiB,
  // reported on the field path "" (rendered "[]") with field.TooLong's wording of Kubernetes 1.33 and later.
  it('refuses a ConfigMap holding more than 1 MiB in data and binaryData together, and takes one holding 1 MiB', async () => {
    await serve();
    const path = '/api/v1/namespaces/default/configmaps';
    const MiB = 1024 * 1024;
    const over = await call('POST', path, { metadata: { name: 'big' }, data: { a: 'x'.repeat(MiB - 2) }, binaryData: { b: Buffer.from('xyz').toString('base64') } });
    expect(over.code).toBe(422);
    expect(over.body.message).toBe('ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 bytes');
    expect(over.body.details?.causes).toEqual([{ reason: 'FieldValueTooLong', field: '[]', message: 'Too long: may not be more than 1048576 bytes' }]);
    expect((await fetch(`${url}${path}/big`)).status).toBe(404);
    // The same on replace.
    expect((await call('POST', path, { metadata: { name: 'small' }, data: { a: 'x' } })).code).toBe(201);
    expect((await call('PUT', `${path}/small`, { metadata: { name: 'small' }, data: { a: 'x'.repeat(MiB + 1) } })).code).toBe(422);
    const exact = await call('POST', path, { metadata: { name: 'exact' }, data: { a: 'x'.repeat(MiB - 3) }, binaryData: { b: Buffer.from('xyz').toString('base64') } });
    expect(exact.code).toBe(201);
  });

  it('refuses a Node named with upper case (DNS-1123 subdomain)', async () => {
    await serve();
    const answer = await call('POST', '/api/v1/nodes', { metadata: { name: 'Node_1' } });
    expect(answer.code).toBe(422);
    expect(answer.body.details?.causes?.[0]).toMatchObject({ field: 'metadata.name', reason: 'FieldValueInvalid' });
  });
});

// ?fieldValidation= as the create, update and patch handlers take it: the value is checked (ValidateCreateOptions and
// its siblings: 422), and fields the kind does not have are dropped by the decoder: refused under Strict (kubectl's
// default), named in a Warning header under Warn (the server's default), dropped silently under Ignore.
describe('fieldValidation', () => {
  const path = '/api/v1/namespaces/default/configmaps';
  const labelz = { metadata: { name: 'c1', labelz: { a: 'b' } }, data: { k: 'v' } };

  async function send(method: string, target: string, body: unknown, contentType = 'application/json') {
    const response = await fetch(`${url}${target}`, { method, headers: { 'Content-Type': contentType }, body: JSON.stringify(body) });
    return { code: response.status, warning: response.headers.get('warning'), body: (await response.json()) as { reason?: string; message?: string; metadata?: Record<string, unknown>; details?: unknown } };
  }

  it('refuses a value other than Ignore, Warn or Strict with 422, on create, update and patch', async () => {
    await serve();
    const supported = 'supported values: "", "Ignore", "Strict", "Warn"';
    const create = await send('POST', `${path}?fieldValidation=Bogus`, { metadata: { name: 'c1' } });
    expect(create.code).toBe(422);
    expect(create.body.message).toBe(`CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Bogus": ${supported}`);
    expect(create.body.details).toEqual({ group: 'meta.k8s.io', kind: 'CreateOptions', causes: [{ reason: 'FieldValueNotSupported', field: 'fieldValidation', message: `Unsupported value: "Bogus": ${supported}` }] });
    expect((await fetch(`${url}${path}/c1`)).status).toBe(404);
    expect((await send('POST', `${path}?fieldValidation=Strict`, { metadata: { name: 'c1' } })).code).toBe(201);
    const update = await send('PUT', `${path}/c1?fieldValidation=strict`, { metadata: { name: 'c1' }, data: { k: 'w' } });
    expect(update.body.message).toBe(`UpdateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": ${supported}`);
    const patch = await send('PATCH', `/api/v1/nodes/n1?fieldValidation=Bogus`, { metadata: { labels: { a: 'b' } } }, MERGE);
    expect(patch.body.message).toBe(`PatchOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Bogus": ${supported}`);
    expect(store.get('nodes', { name: 'n1' }).metadata.labels?.a).toBeUndefined();
  });

  it('Strict refuses an unknown field: 400 on create and update, as the decoder words it; 422 on patch', async () => {
    await serve();
    const create = await send('POST', `${path}?fieldValidation=Strict`, { ...labelz, datum: 1 });
    expect(create.code).toBe(400);
    expect(create.body).toMatchObject({ reason: 'BadRequest', message: 'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "metadata.labelz", unknown field "datum"' });
    expect((await fetch(`${url}${path}/c1`)).status).toBe(404);
    const pod = await send('POST', '/api/v1/namespaces/default/pods?fieldValidation=Strict', { metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'i', imagePullPolize: 'Always' }] } });
    expect(pod.body.message).toBe('Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].imagePullPolize"');
    expect((await send('POST', `${path}?fieldValidation=Strict`, { metadata: { name: 'c1' } })).code).toBe(201);
    const update = await send('PUT', `${path}/c1?fieldValidation=Strict`, labelz);
    expect(update.code).toBe(400);
    expect(update.body.message).toBe('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "metadata.labelz"');
    const patch = await send('PATCH', '/api/v1/nodes/n1?fieldValidation=Strict', { metadata: { labelz: { a: 'b' } }, spec: { unschedulable: true } }, MERGE);
    expect(patch.code).toBe(422);
    expect(patch.body.message).toMatch(/^ "" is invalid: patch: Invalid value: ".*": strict decoding error: unknown field "metadata\.labelz"$/);
    expect((store.get('nodes', { name: 'n1' }).spec as Record<string, unknown>).unschedulable).toBeUndefined();
  });

  it('Warn (the default) drops an unknown field and says so in a Warning header; Ignore drops it silently', async () => {
    await serve();
    const warned = await send('POST', path, labelz);
    expect(warned.code).toBe(201);
    expect(warned.warning).toBe('299 - "unknown field \\"metadata.labelz\\""');
    expect(warned.body.metadata).not.toHaveProperty('labelz');
    expect(store.get('configmaps', { namespace: 'default', name: 'c1' }).metadata).not.toHaveProperty('labelz');
    const patched = await send('PATCH', `${path}/c1?fieldValidation=Warn`, { datum: 1 }, MERGE);
    expect(patched.code).toBe(200);
    expect(patched.warning).toBe('299 - "unknown field \\"datum\\""');
    const ignored = await send('PUT', `${path}/c1?fieldValidation=Ignore`, { ...labelz, data: { k: 'w' } });
    expect(ignored.code).toBe(200);
    expect(ignored.warning).toBeNull();
    expect(store.get('configmaps', { namespace: 'default', name: 'c1' })).toMatchObject({ data: { k: 'w' } });
    expect(store.get('configmaps', { namespace: 'default', name: 'c1' }).metadata).not.toHaveProperty('labelz');
    const clean = await send('POST', `${path}?fieldValidation=Warn`, { metadata: { name: 'c2' } });
    expect(clean.warning).toBeNull();
  });
});

