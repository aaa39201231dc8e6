/**
 * A store that cannot be written (a read-only mount, chattr +i, a connection opened read-only) refuses reset, unstick
 * and scan before they change anything in the cluster: each audits or records after its change, and a change without
 * its record is what the project promises never to leave behind.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PaletteClient } from '../../src/palette/index.ts';
import { planReset, reset } from '../../src/service/reset.ts';
import { scanCluster } from '../../src/service/scan.ts';
import { unstick } from '../../src/service/unstick.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { isStoreError } from '../../src/store/errors.ts';
import { startFakePalette, type FakePalette } from '../helpers/fake-palette.ts';
import { sandboxTarget, type SandboxTarget } from '../helpers/sandbox-target.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const scratch = scratchDirs('read-only-store');
let bench: SandboxTarget | undefined;
let palette: FakePalette | undefined;
let readOnly: Store | undefined;

afterEach(async () => {
  readOnly?.close();
  await bench?.close();
  await palette?.close();
  bench = palette = readOnly = undefined;
});

/** A real database file, opened the way SQLite opens one it may not write: read-only, refusing the first write. */
function readOnlyStore(): Store {
  const path = join(scratch(), 'pp.db');
  openStore(path).close();
  readOnly = openStore(path, { readOnly: true });
  return readOnly;
}

const readOnlyError = (err: unknown) => isStoreError(err, 'DB_READONLY');

describe('a store that cannot be written', () => {
  it('assertWritable says so, and a writable store passes it without a trace', () => {
    expect(() => readOnlyStore().assertWritable()).toThrow(/is read-only/);
    const store = openStore(':memory:');
    const before = store.auditHead();
    store.assertWritable();
    expect(store.auditHead()).toEqual(before);
    store.close();
  });

  it('reset refuses before removing any node\'s label', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    const b = bench;
    await b.patch();
    const plan = await b.time.run(planReset(b.target));
    expect(plan.nodes.length).toBeGreaterThan(0);
    const labels = () => JSON.stringify(b.kube.list('nodes').items.map((n) => [n.metadata.labels, n.metadata.annotations]));
    const before = labels();
    const err = await b.time.run(reset({ ...b.target, store: readOnlyStore() }, plan, { by: 'dave', confirmed: true })).catch((e: unknown) => e);
    expect(readOnlyError(err), String(err)).toBe(true);
    expect(labels()).toBe(before);
  });

  it('unstick refuses before clearing Palette\'s timestamp', async () => {
    const key = 'k';
    palette = await startFakePalette({ apiKey: key, clusters: { 'uid-1': { osPatchConfig: { onDemandPatchAfter: '2026-01-08T17:32:08Z' } } } });
    bench = await sandboxTarget('sandbox-palette.yaml', { palette: { client: new PaletteClient({ baseUrl: palette.url, apiKey: key }), clusterUid: 'uid-1' } });
    const b = bench;
    const err = await b.time.run(unstick({ ...b.target, store: readOnlyStore() }, { by: 'alice' })).catch((e: unknown) => e);
    expect(readOnlyError(err), String(err)).toBe(true);
    expect(palette.clusters.get('uid-1')!.osPatchConfig?.onDemandPatchAfter).toBe('2026-01-08T17:32:08Z');
  });

  it('scan refuses before starting a Job or writing an annotation', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    const b = bench;
    const nodes = () => JSON.stringify(b.kube.list('nodes').items.map((n) => n.metadata.annotations));
    const before = nodes();
    const err = await b.time.run(scanCluster({ cluster: b.target.cluster, plan: b.target.plan, clock: b.time.clock, store: readOnlyStore() })).catch((e: unknown) => e);
    expect(readOnlyError(err), String(err)).toBe(true);
    expect(b.kube.list('jobs').items).toEqual([]);
    expect(nodes()).toBe(before);
  });
});
