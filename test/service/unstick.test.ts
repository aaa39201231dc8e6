/**
 * unstick on the sandbox: clears Palette's stuck timestamp through the fake Palette API, releases an expired Lease
 * (never a live one), cancels a run scheduled in the past that nobody drives; leaves alone what is alive; audits
 * each action; a second call changes nothing and says so.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PaletteClient } from '../../src/palette/index.ts';
import { doctor } from '../../src/service/doctor.ts';
import { leaseName } from '../../src/service/orchestrator.ts';
import { unstick } from '../../src/service/unstick.ts';
import { startFakePalette, type FakePalette } from '../helpers/fake-palette.ts';
import { ORCHESTRATOR, sandboxTarget, type SandboxTarget } from '../helpers/sandbox-target.ts';

let bench: SandboxTarget | undefined;
let palette: FakePalette | undefined;

afterEach(async () => {
  await bench?.close();
  await palette?.close();
  bench = undefined;
  palette = undefined;
});

const KEY = 'unstick-key-secret';

describe('unstick', () => {
  it('clears a stuck onDemandPatchAfter through the Palette API, keeping the other settings; audited; the second call changes nothing', async () => {
    palette = await startFakePalette({ apiKey: KEY, clusters: { 'uid-1': { osPatchConfig: { onDemandPatchAfter: '2026-01-08T17:32:08Z', rebootIfRequired: true, schedule: '0 0 * * SUN' } } } });
    bench = await sandboxTarget('sandbox-palette.yaml', { palette: { client: new PaletteClient({ baseUrl: palette.url, apiKey: KEY }), clusterUid: 'uid-1' } });
    const b = bench;
    const first = await b.time.run(unstick(b.target, { by: 'alice' }));
    expect(first.changed).toBe(true);
    expect(first.actions).toEqual(["cleared Palette's onDemandPatchAfter of cluster uid-1 (was 2026-01-08T17:32:08Z, in the past): On-Demand Update works again"]);
    expect(palette.clusters.get('uid-1')!.osPatchConfig).toEqual({ onDemandPatchAfter: '0001-01-01T00:00:00.000Z', rebootIfRequired: true, schedule: '0 0 * * SUN' });
    const audit = b.store.auditRows().filter((r) => r.action === 'palette.on-demand-cleared');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'alice', details: { cluster: 'sandbox-palette', clusterUid: 'uid-1', previous: '2026-01-08T17:32:08Z' } });
    expect(JSON.stringify(b.store.auditRows())).not.toContain(KEY);

    const second = await b.time.run(unstick(b.target, { by: 'alice' }));
    expect(second).toMatchObject({ changed: false, actions: [] });
    expect(second.notes[0]).toBe('nothing to unstick');
    expect(second.notes).toContain("Palette's onDemandPatchAfter of cluster uid-1 is unset: nothing to clear");
    expect(palette.requests.filter((r) => r.method === 'PATCH')).toHaveLength(1);
    expect(b.store.auditRows().filter((r) => r.action === 'palette.on-demand-cleared')).toHaveLength(1);
    // doctor agrees.
    expect((await b.time.run(doctor(b.target))).findings.find((f) => f.id === 'on-demand-timestamp')!.status).toBe('ok');
  });

  it('leaves a pending On-Demand Update alone', async () => {
    palette = await startFakePalette({ apiKey: KEY, clusters: { 'uid-1': {} } });
    bench = await sandboxTarget('sandbox-palette.yaml', { palette: { client: new PaletteClient({ baseUrl: palette.url, apiKey: KEY }), clusterUid: 'uid-1' } });
    const future = new Date(bench.time.clock.now() + 600_000).toISOString();
    palette.clusters.get('uid-1')!.osPatchConfig = { onDemandPatchAfter: future };
    const result = await bench.time.run(unstick(bench.target, { by: 'alice' }));
    expect(result.changed).toBe(false);
    expect(result.notes).toContain(`Palette's onDemandPatchAfter of cluster uid-1 is ${future}, in the future: an On-Demand Update is scheduled, left as it is`);
  });

  it('a run scheduled for a time that passed while its orchestrator was gone: releases the expired Lease, cancels the run, once', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    const b = bench;
    const start = b.time.clock.now();
    const handle = await b.start({ notBefore: start + 3600_000 });
    // The orchestrator dies (nothing drives the run, nobody renews the Lease); two hours pass.
    handle.detach();
    b.time.clock.set(start + 2 * 3600_000);

    const before = await b.time.run(doctor(b.target));
    const progress = before.findings.find((f) => f.id === 'run-in-progress')!;
    expect(progress.status).toBe('problem');
    expect(progress.fix).toContain('npx patchpilot unstick --cluster apt-lock-timeout cancels a scheduled run whose start has passed');

    const first = await b.time.run(unstick(b.target, { by: 'bob' }));
    expect(first.changed).toBe(true);
    expect(first.actions[0]).toMatch(/^released Lease patchpilot-apt-lock-timeout held by test-orchestrator \(it expired at 2026-11-22T\S+\)$/);
    expect(first.actions[1]).toBe('cancelled run run-1: scheduled for 2026-11-22T09:00:00.000Z, never started, and no orchestrator holds the cluster\'s Lease');
    expect(b.store.getRun('run-1')).toMatchObject({ status: 'done', outcome: 'cancelled' });
    expect(b.store.getRun('run-1')!.reason).toContain('cancelled by unstick (bob)');
    expect(await b.time.run(b.target.cluster.readLease(leaseName('apt-lock-timeout')))).toMatchObject({ holder: null });
    const actions = b.store.auditRows().filter((r) => r.actor === 'bob').map((r) => [r.action, r.details.cluster]);
    expect(actions).toEqual([
      ['lease.released', 'apt-lock-timeout'],
      ['run.unstuck', 'apt-lock-timeout'],
    ]);

    const second = await b.time.run(unstick(b.target, { by: 'bob' }));
    expect(second).toMatchObject({ changed: false, actions: [] });
    expect(second.notes).toContain('Lease patchpilot-apt-lock-timeout is free');
    expect((await b.time.run(doctor(b.target))).findings.find((f) => f.id === 'run-in-progress')!.status).toBe('ok');
  });

  it('never touches a live Lease of another orchestrator, nor the run it drives', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    const b = bench;
    const handle = await b.start({ notBefore: b.time.clock.now() + 3600_000 });
    const result = await b.time.run(unstick(b.target, { by: 'bob', holder: 'patchpilot@another-host' }));
    expect(result.changed).toBe(false);
    expect(result.notes.join('\n')).toMatch(/Lease patchpilot-apt-lock-timeout is held by test-orchestrator until \S+: that orchestrator is alive, left to it/);
    expect(result.notes).toContain('run run-1 is scheduled for 2026-11-22T09:00:00.000Z and an orchestrator holds the Lease: left as it is');
    expect(b.store.getRun('run-1')!.status).toBe('scheduled');
    handle.detach();
  });

  it('leaves a live Lease bearing this host\'s name alone even with no active run in its store (another process may hold it)', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    const b = bench;
    await b.time.run(b.target.cluster.acquireLease({ name: leaseName('apt-lock-timeout'), holder: ORCHESTRATOR, durationSeconds: 3600 }));
    const result = await b.time.run(unstick(b.target, { by: 'carol', holder: ORCHESTRATOR }));
    expect(result.changed).toBe(false);
    expect(result.notes.join('\n')).toMatch(/held by test-orchestrator \(this host's name\) until \S+ with no active run in this store/);
    expect(await b.time.run(b.target.cluster.readLease(leaseName('apt-lock-timeout')))).toMatchObject({ holder: ORCHESTRATOR });
  });

  it('refuses without who asks', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    await expect(unstick(bench.target, { by: ' ' })).rejects.toThrow(/needs `by`/);
  });
});
