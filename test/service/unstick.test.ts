/**
 * unstick on the sandbox: clears Palette's stuck timestamp through the fake Palette API, releases an expired Lease
 * (never a live one), cancels a run scheduled in the past that nobody drives; leaves alone what is alive; audits
 * each action; a second call changes nothing and says so.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PaletteClient } from '../../src/palette/index.ts';
import { doctor } from '../../src/service/doctor.ts';
import { hostname } from 'node:os';
import { holderIdentity } from '../../src/service/holder.ts';
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

  it('a run scheduled for a time that passed while its orchestrator was gone: cancels the run once, and leaves a Lease it cannot prove abandoned to expire', async () => {
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
    expect(first.actions).toEqual(["cancelled run run-1: scheduled for 2026-11-22T09:00:00.000Z, never started, and no orchestrator holds the cluster's Lease"]);
    // Its holder is no process of this host: expired by its record is not proof (another machine's clock may differ).
    expect(first.notes.join('\n')).toMatch(/Lease patchpilot-apt-lock-timeout of "test-orchestrator" \(not a patchpilot process identity\) looks expired \(last renewed at 2026-11-22T\S+ by its record\), but its holder cannot be proven gone/);
    expect(await b.time.run(b.target.cluster.readLease(leaseName('apt-lock-timeout')))).toMatchObject({ holder: ORCHESTRATOR });
    expect(b.store.getRun('run-1')).toMatchObject({ status: 'done', outcome: 'cancelled' });
    expect(b.store.getRun('run-1')!.reason).toContain('cancelled by unstick (bob)');
    expect(b.store.auditRows().filter((r) => r.actor === 'bob').map((r) => [r.action, r.details.cluster])).toEqual([['run.unstuck', 'apt-lock-timeout']]);

    const second = await b.time.run(unstick(b.target, { by: 'bob' }));
    expect(second).toMatchObject({ changed: false, actions: [] });
    // Only the expired Lease is left, which doctor reports as a warning the next run resolves by itself.
    const after = (await b.time.run(doctor(b.target))).findings.find((f) => f.id === 'run-in-progress')!;
    expect(after).toMatchObject({ status: 'warning', fix: expect.stringContaining('the next run takes the expired Lease over by itself') });
  });

  it('releases a Lease whose holder is a patchpilot process of this host that is gone, at once and audited', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    const b = bench;
    const gone = holderIdentity({ host: hostname(), pid: 4242, startedAt: b.time.clock.now(), suffix: 'dead01' });
    await b.time.run(b.target.cluster.acquireLease({ name: leaseName('apt-lock-timeout'), holder: gone, durationSeconds: 3600 }));
    const alive = await b.time.run(unstick(b.target, { by: 'carol', pidAlive: () => true }));
    expect(alive.changed).toBe(false);
    expect(alive.notes.join('\n')).toMatch(/Lease patchpilot-apt-lock-timeout is held by process 4242 on \S+ \(started \S+, dead01\) until \S+: that orchestrator is alive, left to it/);

    const result = await b.time.run(unstick(b.target, { by: 'carol', pidAlive: (pid) => pid !== 4242 }));
    expect(result.actions).toEqual([expect.stringMatching(/^released Lease patchpilot-apt-lock-timeout held by process 4242 on \S+ \(started \S+, dead01\) \(that process is gone from this host; last renewed at \S+ by its record\)$/)]);
    expect(await b.time.run(b.target.cluster.readLease(leaseName('apt-lock-timeout')))).toMatchObject({ holder: null });
    expect(b.store.auditRows().filter((r) => r.actor === 'carol').map((r) => r.action)).toEqual(['lease.released']);
  });

  it('never touches a live Lease of another orchestrator, nor the run it drives', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    const b = bench;
    const handle = await b.start({ notBefore: b.time.clock.now() + 3600_000 });
    const result = await b.time.run(unstick(b.target, { by: 'bob', pidAlive: () => false }));
    expect(result.changed).toBe(false);
    expect(result.notes.join('\n')).toMatch(/Lease patchpilot-apt-lock-timeout is held by "test-orchestrator" \(not a patchpilot process identity\) until \S+: that orchestrator is alive, left to it/);
    expect(result.notes).toContain('run run-1 is scheduled for 2026-11-22T09:00:00.000Z and an orchestrator holds the Lease: left as it is');
    expect(b.store.getRun('run-1')!.status).toBe('scheduled');
    handle.detach();
  });

  it('refuses without who asks', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    await expect(unstick(bench.target, { by: ' ' })).rejects.toThrow(/needs `by`/);
  });
});
