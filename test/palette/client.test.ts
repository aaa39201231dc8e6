/**
 * PaletteClient against a local fake Palette API: the exact path, method, headers and body of each call, the seed's
 * clearing of onDemandPatchAfter (other settings kept), and each error status naming the cluster and the status but
 * never the API key.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PaletteClient, PaletteError, paletteSettingsFromEnv } from '../../src/palette/index.ts';
import { startFakePalette, type FakePalette } from '../helpers/fake-palette.ts';

const KEY = 'pk-secret-0123456789abcdef';
let palette: FakePalette;

beforeEach(async () => {
  palette = await startFakePalette({
    apiKey: KEY,
    clusters: {
      c1: { projectUid: 'p1', osPatchConfig: { onDemandPatchAfter: '2026-01-08T17:32:08Z', rebootIfRequired: true, schedule: '0 0 * * SUN', patchOnBoot: false } },
      bare: {},
    },
  });
});

afterEach(async () => {
  await palette.close();
});

const client = (overrides: Partial<ConstructorParameters<typeof PaletteClient>[0]> = {}) =>
  new PaletteClient({ baseUrl: palette.url, apiKey: KEY, projectUid: 'p1', ...overrides });

async function failure(promise: Promise<unknown>): Promise<PaletteError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a PaletteError');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PaletteError);
  const error = err as PaletteError;
  expect(`${error.message} ${error.hint} ${String(error.stack)}`).not.toContain(KEY);
  return error;
}

describe('PaletteClient', () => {
  it('reads spec.clusterConfig.machineManagementConfig.osPatchConfig with GET /v1/spectroclusters/{uid}, ApiKey and ProjectUid headers', async () => {
    expect(await client().getOsPatchConfig('c1')).toEqual({ onDemandPatchAfter: '2026-01-08T17:32:08Z', rebootIfRequired: true, schedule: '0 0 * * SUN', patchOnBoot: false });
    const [request] = palette.requests;
    expect(request).toMatchObject({ method: 'GET', path: '/v1/spectroclusters/c1', body: undefined });
    expect(request!.headers.apikey).toBe(KEY);
    expect(request!.headers.projectuid).toBe('p1');
    expect(request!.headers.authorization).toBeUndefined();
  });

  it('answers {} for a cluster without OS patch settings, and sends no ProjectUid when none is configured', async () => {
    expect(await client({ projectUid: undefined }).getOsPatchConfig('bare')).toEqual({});
    expect(palette.requests[0]!.headers.projectuid).toBeUndefined();
  });

  it('writes with PATCH /v1/spectroclusters/{uid}/clusterConfig/osPatch and the V1OsPatchEntity wrapper', async () => {
    await client().setOsPatchConfig('c1', { onDemandPatchAfter: '2099-01-01T00:00:00Z', rebootIfRequired: false });
    const request = palette.requests[0]!;
    expect(request).toMatchObject({ method: 'PATCH', path: '/v1/spectroclusters/c1/clusterConfig/osPatch' });
    expect(request.body).toEqual({ osPatchConfig: { onDemandPatchAfter: '2099-01-01T00:00:00Z', rebootIfRequired: false } });
    expect(request.headers['content-type']).toBe('application/json');
    expect(palette.clusters.get('c1')!.osPatchConfig).toEqual({ onDemandPatchAfter: '2099-01-01T00:00:00Z', rebootIfRequired: false });
  });

  it('clears onDemandPatchAfter with "" as the seed does, keeping the schedule and reboot settings; a second clear sends nothing', async () => {
    expect(await client().clearOnDemandPatchAfter('c1')).toEqual({ previous: '2026-01-08T17:32:08Z', changed: true });
    const patch = palette.requests.find((r) => r.method === 'PATCH')!;
    expect(patch.body).toEqual({ osPatchConfig: { onDemandPatchAfter: '', rebootIfRequired: true, schedule: '0 0 * * SUN', patchOnBoot: false } });
    // Palette reads the cleared value back as Go's zero time: unset.
    expect(await client().getOsPatchConfig('c1')).toMatchObject({ onDemandPatchAfter: '0001-01-01T00:00:00.000Z', schedule: '0 0 * * SUN' });
    palette.requests.length = 0;
    expect(await client().clearOnDemandPatchAfter('c1')).toEqual({ previous: null, changed: false });
    expect(palette.requests.map((r) => r.method)).toEqual(['GET']);
  });

  it('401: a bad key, named as such, without the key', async () => {
    const err = await failure(client({ apiKey: 'wrong-key-zzz' }).getOsPatchConfig('c1'));
    expect(err).toMatchObject({ kind: 'unauthorized', status: 401, clusterUid: 'c1' });
    expect(err.message).toContain('cluster c1');
    expect(err.message).toContain('HTTP 401');
    expect(err.message).not.toContain('wrong-key-zzz');
    expect(err.hint).toContain('PALETTE_API_KEY');
  });

  it('403: the cluster is project-scoped and no (or another) ProjectUid was sent', async () => {
    const err = await failure(client({ projectUid: undefined }).getOsPatchConfig('c1'));
    expect(err).toMatchObject({ kind: 'forbidden', status: 403 });
    expect(err.hint).toContain('PALETTE_PROJECT_UID');
    const other = await failure(client({ projectUid: 'p2' }).setOsPatchConfig('c1', {}));
    expect(other.message).toContain('project p2');
  });

  it('404: an unknown cluster uid is named', async () => {
    const err = await failure(client().getOsPatchConfig('nope'));
    expect(err).toMatchObject({ kind: 'not-found', status: 404, clusterUid: 'nope' });
    expect(err.message).toContain('no cluster with uid nope');
  });

  it('5xx: Palette\'s own message, with the status', async () => {
    palette.failNext(503, 'maintenance');
    const err = await failure(client().getOsPatchConfig('c1'));
    expect(err).toMatchObject({ kind: 'server', status: 503 });
    expect(err.message).toMatch(/HTTP 503: InternalError: maintenance/);
  });

  it('a server that echoes the key back cannot put it in the error', async () => {
    palette.failNext(500, `bad header ApiKey=${KEY}`);
    const err = await failure(client().getOsPatchConfig('c1'));
    expect(err.message).toContain('[redacted]');
  });

  it('the seed\'s bare {"onDemandPatchAfter":""} body is what the fake (like the SDK\'s API) refuses; the client never sends it', async () => {
    const response = await fetch(`${palette.url}/v1/spectroclusters/c1/clusterConfig/osPatch`, {
      method: 'PATCH',
      headers: { ApiKey: KEY, ProjectUid: 'p1', 'Content-Type': 'application/json' },
      body: JSON.stringify({ onDemandPatchAfter: '' }),
    });
    expect(response.status).toBe(400);
  });

  it('network: nothing listening is a clear error naming the URL and the cluster', async () => {
    const url = palette.url;
    await palette.close();
    const err = await failure(new PaletteClient({ baseUrl: url, apiKey: KEY }).getOsPatchConfig('c1'));
    expect(err).toMatchObject({ kind: 'network', status: null });
    expect(err.message).toContain(url);
    expect(err.message).toContain('cluster c1');
    palette = await startFakePalette({ apiKey: KEY });
  });

  it('refuses bad input before sending anything', async () => {
    expect(() => new PaletteClient({ baseUrl: 'not a url', apiKey: KEY })).toThrow(/not a URL/);
    expect(() => new PaletteClient({ baseUrl: palette.url, apiKey: ' ' })).toThrow(/API key is empty/);
    expect(() => new PaletteClient({ baseUrl: palette.url, apiKey: `${KEY}\n` + 'X: y' })).toThrow(/API key contains a line break/);
    // The project uid goes into a header as well: a line break is named here, not deep in fetch.
    expect(() => new PaletteClient({ baseUrl: palette.url, apiKey: KEY, projectUid: 'p\r\nX: y' })).toThrow('the Palette project uid "p\\r\\nX: y" is not a uid');
    expect(new PaletteClient({ baseUrl: palette.url, apiKey: KEY, projectUid: ' 5f3a9c0e7b2d4a1e8c6f0b9d ' }).projectUid).toBe('5f3a9c0e7b2d4a1e8c6f0b9d');
    const err = await failure(client().getOsPatchConfig('../etc'));
    expect(err.kind).toBe('bad-input');
    expect(palette.requests).toEqual([]);
  });

  it('reads its settings from the environment; no key means not configured', () => {
    expect(paletteSettingsFromEnv({})).toBeNull();
    expect(paletteSettingsFromEnv({ PALETTE_API_KEY: 'k' })).toEqual({ baseUrl: 'https://api.spectrocloud.com', apiKey: 'k' });
    expect(paletteSettingsFromEnv({ PALETTE_API_KEY: 'k', PALETTE_API_URL: 'https://palette.example.com', PALETTE_PROJECT_UID: 'p' })).toEqual({
      baseUrl: 'https://palette.example.com',
      apiKey: 'k',
      projectUid: 'p',
    });
  });
});
