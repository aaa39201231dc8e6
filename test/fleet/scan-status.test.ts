/**
 * Scan and status on the sandbox, through the real KubeCluster over HTTP, in virtual time: the scan annotates every
 * Linux node with what its repositories offer (the simulated cluster's truth), keeps history in the store, and a node
 * whose scan fails or whose Job never reports is never counted compliant; a run then makes its nodes compliant.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterPort } from '../../src/cluster/port.ts';
import { ANNOTATIONS, SCAN_ANNOTATIONS, scanMetadata } from '../../src/engine/metadata.ts';
import { statusText } from '../../src/cli/status.ts';
import { CLOCK_SKEW_MS, clusterStatus, readClusterStatus, statusJson, triggerOfRun } from '../../src/service/fleet-status.ts';
import { node } from '../metrics/fleet-fixtures.ts';
import { scanCluster, rebootPendingNow } from '../../src/service/scan.ts';
import { sandboxTarget, type SandboxTarget } from '../helpers/sandbox-target.ts';

let bench: SandboxTarget | undefined;
afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

const annotationsOf = (b: SandboxTarget, node: string) => (b.kube.get('nodes', { name: node }).metadata as { annotations?: Record<string, string> }).annotations ?? {};

describe('scan and status on the sandbox', () => {
  it('annotates every Linux node, skips Windows, records history; a run then makes its nodes compliant', { timeout: 60_000 }, async () => {
    bench = await sandboxTarget('demo.yaml');
    const b = bench;
    const { cluster, plan, store } = b.target;
    const before = await b.time.run(readClusterStatus(cluster, { labelKey: plan.labelKey, now: b.time.clock.now() }));
    // Before any scan: nothing is known, nothing is compliant.
    expect(before).toMatchObject({ compliant: 0, total: 5, lastScanAt: null });
    expect(before.nodes.every((n) => n.securityUpdatesPending === null && !n.compliant)).toBe(true);

    // Bounded concurrency: never more than two scan Jobs at once, and two at once at some point.
    let inFlight = 0;
    let most = 0;
    const counted = new Proxy(cluster, {
      get(target, prop, receiver) {
        if (prop === 'scanNode') {
          return async (spec: Parameters<ClusterPort['scanNode']>[0], signal: AbortSignal) => {
            most = Math.max(most, ++inFlight);
            try {
              return await target.scanNode(spec, signal);
            } finally {
              inFlight -= 1;
            }
          };
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const summary = await b.time.run(scanCluster({ cluster: counted, plan, clock: b.time.clock, store, concurrency: 2 }));
    expect(most).toBe(2);
    expect(summary.skipped).toEqual(['win-1']);
    expect(summary.nodes.map((n) => n.node).sort()).toEqual(['cp-1', 'rocky-1', 'rocky-2', 'ubuntu-1', 'ubuntu-2']);
    for (const n of summary.nodes) expect(n.annotateError).toBeNull();
    // No node was cordoned and no patch Job ran.
    expect(b.sandbox.sim.invariants.stats.patchJobs.size).toBe(0);
    expect(b.kube.list('nodes').items.every((n) => (n.spec as { unschedulable?: boolean } | undefined)?.unschedulable !== true)).toBe(true);

    // What the annotations say is what the simulated repositories offer each node.
    // demo.yaml offers openssl and curl everywhere, and a kernel where a reboot-required fault is.
    const offered: Record<string, string[]> = { 'cp-1': ['curl', 'openssl'], 'rocky-1': ['curl', 'openssl'], 'ubuntu-2': ['curl', 'linux-image-generic', 'openssl'], 'rocky-2': ['curl', 'kernel', 'openssl'] };
    for (const [node, packages] of Object.entries(offered)) {
      const a = annotationsOf(b, node);
      expect(a[SCAN_ANNOTATIONS.result]).toBe('ok');
      expect(a[SCAN_ANNOTATIONS.securityUpdates]?.split(',').sort()).toEqual(packages);
      expect(Number(a[SCAN_ANNOTATIONS.securityUpdatesPending])).toBe(packages.length);
    }
    const scanned = await b.time.run(readClusterStatus(cluster, { labelKey: plan.labelKey, now: b.time.clock.now() }));
    expect(scanned.compliant).toBe(0);
    expect(scanned.lastScanAt).toBe(new Date(Math.max(...summary.nodes.map((n) => n.findings.at))).toISOString());
    const ubuntu2 = scanned.nodes.find((n) => n.name === 'ubuntu-2')!;
    expect(ubuntu2).toMatchObject({ os: 'Ubuntu 24.04.1 LTS', securityUpdatesPending: 3, rebootRequired: false, compliant: false, reason: '3 security update(s) pending' });
    expect(ubuntu2.kernel).toMatch(/^6\.8/);
    expect(scanned.nodes.find((n) => n.name === 'win-1')).toMatchObject({ linux: false, compliant: false });
    expect(store!.scanHistory(plan.cluster)).toHaveLength(5);

    const output = await b.patch({ triggerId: 'patch-tuesday' });
    expect(output.outcome).toBe('partial');
    const after = await b.time.run(readClusterStatus(cluster, { labelKey: plan.labelKey, triggerOf: (id) => triggerOfRun(store!, id), now: b.time.clock.now() }));
    expect(after.compliant).toBe(4);
    const cp = after.nodes.find((n) => n.name === 'cp-1')!;
    expect(cp).toMatchObject({ securityUpdatesPending: 0, compliant: true, lastPatch: { status: 'patched', trigger: 'patch-tuesday', runId: 'run-1' } });
    expect(cp.lastPatch?.hash).toMatch(/^[0-9a-f]{10,}$/);
    // rocky-2 never came back from its reboot: still behind, cordoned by the run.
    const rocky2 = after.nodes.find((n) => n.name === 'rocky-2')!;
    expect(rocky2).toMatchObject({ compliant: false, cordoned: true, cordonedBy: 'run-1' });
    expect(after.oldestUnpatched?.name).toBe('rocky-2');

    // The JSON contract: exactly these keys.
    const json = statusJson([after]) as { clusters: Record<string, unknown>[] };
    expect(Object.keys(json.clusters[0]!)).toEqual(['name', 'compliant', 'total', 'lastScanAt', 'nodes']);
    expect(Object.keys((json.clusters[0]!.nodes as object[])[0]!)).toEqual(['name', 'os', 'kernel', 'securityUpdatesPending', 'rebootRequired', 'lastPatchedAt', 'cordoned', 'compliant', 'reason']);

    // A second scan: the patched nodes have nothing left; history has both scans.
    await b.time.run(scanCluster({ cluster, plan, clock: b.time.clock, store }));
    const rescanned = await b.time.run(readClusterStatus(cluster, { labelKey: plan.labelKey, now: b.time.clock.now() }));
    expect(rescanned.nodes.find((n) => n.name === 'cp-1')).toMatchObject({ securityUpdatesPending: 0, compliant: true });
    expect(new Set(store!.scanHistory(plan.cluster).map((r) => r.scanId)).size).toBe(2);
  });

  it('a failed scan and a Job that never reports are recorded as such, the other nodes go on, nothing is compliant unscanned', { timeout: 60_000 }, async () => {
    bench = await sandboxTarget('repo-unreachable.yaml', { plan: { concurrency: 1 } });
    const b = bench;
    const { cluster, plan, store } = b.target;
    // worker-3's scan Job never reports (its pod is never scheduled, say): only the timeout ends it.
    const stuck = new Proxy(cluster, {
      get(target, prop, receiver) {
        if (prop === 'scanNode') {
          return (spec: Parameters<ClusterPort['scanNode']>[0], signal: AbortSignal) =>
            spec.node === 'worker-3'
              ? new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))))
              : target.scanNode(spec, signal);
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const started = b.time.clock.now();
    const summary = await b.time.run(scanCluster({ cluster: stuck, plan, clock: b.time.clock, store, timeoutSeconds: 300 }));
    const byNode = new Map(summary.nodes.map((n) => [n.node, n.findings]));
    expect(byNode.get('worker-2')).toMatchObject({ pending: null, error: expect.stringMatching(/^REPO_UNREACHABLE: /) });
    expect(byNode.get('worker-3')).toMatchObject({ pending: null, error: 'the scan Job did not report within 300 s' });
    expect(byNode.get('worker-3')!.at - started).toBeGreaterThanOrEqual(300_000);
    expect(byNode.get('worker-1')?.pending?.sort()).toEqual(['curl', 'openssl']);
    const status = await b.time.run(readClusterStatus(cluster, { labelKey: plan.labelKey, now: b.time.clock.now() }));
    expect(status.compliant).toBe(0);
    expect(status.nodes.find((n) => n.name === 'worker-3')).toMatchObject({ securityUpdatesPending: null, compliant: false, reason: 'last scan failed', scanError: 'the scan Job did not report within 300 s' });
    expect(status.nodes.find((n) => n.name === 'worker-2')).toMatchObject({ securityUpdatesPending: null, rebootRequired: null, compliant: false, reason: 'last scan failed' });
    expect(store!.scanHistory(plan.cluster).filter((r) => r.pending === null).map((r) => r.node).sort()).toEqual(['worker-2', 'worker-3']);
  });
});

describe('rebootPendingNow', () => {
  const report = (rebootRequired: boolean, rebootPackages: string[], upgraded: string[]) => ({
    result: 'patched' as const,
    upgraded: upgraded.map((name) => ({ name, from: '1', to: '2' })),
    held: [],
    rebootRequired,
    rebootPackages,
    error: null,
    durationSeconds: 1,
  });
  it.each([
    ['no reboot at all', report(false, [], ['openssl']), false],
    ['only the reboot the pending kernel would need', report(true, ['linux-image-generic'], ['linux-image-generic', 'openssl']), false],
    ['a reboot pending already (no package named)', report(true, [], ['openssl']), true],
    ['a reboot pending for a package already installed', report(true, ['glibc'], ['openssl']), true],
  ])('%s', (_, r, expected) => expect(rebootPendingNow(r)).toBe(expected));
});

/**
 * A scan or patch time later than now is no evidence: a node whose last-patch-time said 2099 was counted compliant,
 * "patched 0s ago", although its scan said security updates were pending (and year 99999 showed as "+099999-..." in
 * --json). Beyond CLOCK_SKEW_MS ahead, or not a time at all, the annotation is named and the node is not compliant.
 */
describe('scan and patch times in the future are no evidence', () => {
  const NOW = Date.parse('2026-12-07T02:00:00Z');
  const scanned = (pending: string[]) => scanMetadata({ at: NOW - 3_600_000, pending, rebootRequired: false, error: null });
  const patched = (time: string) => ({ [ANNOTATIONS.status]: 'patched', [ANNOTATIONS.time]: time, [ANNOTATIONS.run]: 'run-1' });
  const status = clusterStatus(
    'prod',
    [
      node('future', { ...scanned(['openssl', 'curl']), ...patched('2099-01-01T00:00:00Z') }),
      node('far-future', { ...scanned(['openssl']), ...patched('+099999-01-01T00:00:00Z') }),
      node('future-clean', { ...scanned([]), ...patched('2099-01-01T00:00:00Z') }),
      node('not-a-time', { ...scanned([]), ...patched('yesterday') }),
      node('future-scan', { ...scanMetadata({ at: Date.parse('2099-01-01T00:00:00Z'), pending: [], rebootRequired: false, error: null }) }),
      node('skewed', { ...scanned(['openssl']), ...patched(new Date(NOW + CLOCK_SKEW_MS - 1_000).toISOString()) }),
      node('patched', { ...scanned(['openssl']), ...patched(new Date(NOW - 60_000).toISOString()) }),
    ],
    { labelKey: 'patchpilot.io/task', now: NOW },
  );
  const byName = (name: string) => status.nodes.find((n) => n.name === name)!;

  it('a patch time in the future: not compliant, the annotation named, the scan\'s pending updates shown', () => {
    expect(byName('future')).toMatchObject({
      compliant: false,
      securityUpdatesPending: 2,
      lastPatchedAt: null,
      lastPatch: null,
      reason: 'patchpilot.io/last-patch-time is "2099-01-01T00:00:00Z", in the future: no evidence of a patch; 2 security update(s) pending',
    });
    expect(byName('far-future')).toMatchObject({ compliant: false, lastPatchedAt: null, reason: expect.stringMatching(/^patchpilot\.io\/last-patch-time is "\+099999-01-01T00:00:00Z", in the future/) });
    // Even a clean scan does not make a node with an impossible annotation compliant.
    expect(byName('future-clean')).toMatchObject({ compliant: false, securityUpdatesPending: 0, reason: 'patchpilot.io/last-patch-time is "2099-01-01T00:00:00Z", in the future: no evidence of a patch' });
    expect(byName('not-a-time')).toMatchObject({ compliant: false, reason: 'patchpilot.io/last-patch-time is "yesterday", not a time: no evidence of a patch' });
    expect(byName('future-scan')).toMatchObject({ compliant: false, securityUpdatesPending: null, scannedAt: null, reason: 'patchpilot.io/scan-time is "2099-01-01T00:00:00.000Z", in the future: no evidence of a scan' });
  });

  it('within the clock-skew allowance, or in the past, a patch still counts', () => {
    expect(byName('skewed')).toMatchObject({ compliant: true, securityUpdatesPending: 0, reason: '' });
    expect(byName('patched')).toMatchObject({ compliant: true, reason: '' });
    expect(status.compliant).toBe(2);
  });

  it('the text and --json say so', () => {
    const text = statusText(status, NOW);
    expect(text).toMatch(/^future .* 2 \(openssl, curl\) +no +unknown +no +no: patchpilot\.io\/last-patch-time is "2099-01-01T00:00:00Z", in the future: no evidence of a patch; 2 security update\(s\) pending$/m);
    expect(text).not.toMatch(/^future.*0s ago/m);
    const json = statusJson([status]) as { clusters: { nodes: { name: string; compliant: boolean; lastPatchedAt: string | null; reason: string | null }[] }[] };
    const nodes = json.clusters[0]!.nodes;
    expect(nodes.find((n) => n.name === 'far-future')).toMatchObject({ compliant: false, lastPatchedAt: null, reason: expect.stringContaining('patchpilot.io/last-patch-time') });
    expect(nodes.find((n) => n.name === 'patched')).toMatchObject({ compliant: true, reason: null });
    expect(nodes.map((n) => n.lastPatchedAt).filter((t) => t !== null && !/^\d{4}-/.test(t)), 'no "+099999-..." time').toEqual([]);
  });
});
