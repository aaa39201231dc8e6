/** doctor-palette's findings from facts alone: a thousand-node report stays short, and what is wrong is always listed. */
import { describe, expect, it } from 'vitest';
import { NODE_TASK_ANNOTATIONS, PALETTE_TASK_LABEL, type PaletteJob, type PaletteTask } from '../../src/cluster/palette.ts';
import type { ClusterNode } from '../../src/cluster/port.ts';
import { paletteFindings } from '../../src/service/doctor-palette.ts';

const NOW = Date.parse('2026-11-22T08:00:00Z');
const HASH = 'a'.repeat(56);

function node(name: string, status: string, extra: Partial<ClusterNode> = {}): ClusterNode {
  return {
    name,
    labels: { 'kubernetes.io/os': 'linux', ...(status === 'Completed' ? { [PALETTE_TASK_LABEL]: HASH } : {}) },
    annotations: { [NODE_TASK_ANNOTATIONS.status]: status, [NODE_TASK_ANNOTATIONS.message]: status === 'Failed' ? 'gpg: keyserver receive failed: End of file' : 'patched' },
    unschedulable: status !== 'Completed',
    ready: true,
    bootId: 'b',
    kubeletVersion: 'v1.30.4',
    osImage: 'Ubuntu 22.04.5 LTS',
    ...extra,
  };
}

function job(n: string, status: PaletteJob['status'], log: string[]): PaletteJob {
  return { name: `apply-on-demand-os-patch-on-${n}`, node: n, status, startedAt: NOW - 3600_000, finishedAt: status === 'running' ? null : NOW - 3000_000, failure: status === 'failed' ? 'BackoffLimitExceeded' : null, pod: null, logTail: log };
}

const task: PaletteTask = {
  namespace: 'os-patch', name: 'on-demand-os-patch', createdAt: NOW - 86_400_000, version: 'v1', concurrency: 1,
  nodeSelector: { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] },
  latestVersion: 'v1', latestHash: HASH, applying: ['n-0999'],
  conditions: [{ type: 'Complete', status: 'False', reason: 'JobFailed', message: 'failed', lastUpdateTime: NOW - 3000_000 }],
};

describe('paletteFindings', () => {
  it('a thousand nodes: completed ones summarized, the failed one named everywhere', () => {
    const names = Array.from({ length: 1000 }, (_, i) => `n-${String(i).padStart(4, '0')}`);
    const nodes = names.map((n, i) => node(n, i === 999 ? 'Failed' : 'Completed'));
    const jobs = names.map((n, i) => (i === 999 ? job(n, 'failed', ['[x] gpg: keyserver receive failed: End of file']) : job(n, 'succeeded', ['[x] No reboot required.', '[x] OS Patching completed successfully'])));
    const findings = paletteFindings({
      artifacts: { ok: true, value: { managed: true, namespace: 'os-patch', tasks: [task], jobs, agentPods: [], agentNamespaces: [] } },
      nodes,
      now: NOW,
      command: (verb) => `npx patchpilot ${verb}`,
    });
    const byId = Object.fromEntries(findings.map((f) => [f.id, f]));
    expect(byId['palette-node-status']!.status).toBe('problem');
    expect(byId['palette-node-status']!.evidence.length).toBeLessThanOrEqual(7);
    expect(byId['palette-node-status']!.evidence).toContain('… and 994 more node(s) Completed');
    expect(byId['palette-node-status']!.evidence.at(-1)).toMatch(/^n-0999 \(cordoned\): status=Failed/);
    expect(byId['palette-jobs']!.evidence.length).toBeLessThanOrEqual(7);
    expect(byId['palette-jobs']!.evidence[0]).toBe('999 Jobs succeeded; the newest:');
    expect(byId['palette-keyserver']!.evidence[0]).toMatch(/^job apply-on-demand-os-patch-on-n-0999 on node n-0999: Failed/);
    expect(byId['palette-selection']!.evidence[0]).toMatch(/… and 980 more$/);
    expect(byId['palette-agent']!.status).toBe('skipped');
    // None of the 999 "No reboot required." lines is taken for a pending reboot.
    expect(byId['palette-reboot-pending']).toBeUndefined();
    expect(findings.map((f) => f.row).every(Boolean)).toBe(true);
  });

  it('an agent namespace without a pod is a problem, not "Ready"', () => {
    const findings = paletteFindings({
      artifacts: { ok: true, value: { managed: true, namespace: 'os-patch', tasks: [], jobs: [], agentPods: [], agentNamespaces: ['cluster-6851ddd04b1b188784c06291'] } },
      nodes: [node('n-1', 'Completed')],
      now: NOW,
      command: () => '',
    });
    expect(findings.find((f) => f.id === 'palette-agent')).toMatchObject({ status: 'problem', title: "Palette's cluster agent has no pod" });
  });

  it('an unreadable Palette (403) is skipped with the RBAC fix; a read error is never a problem', () => {
    const [only] = paletteFindings({ artifacts: { ok: false, why: "could not read Palette's objects: list spectrosystemtasks: HTTP 403: forbidden" }, nodes: [], now: NOW, command: () => '' });
    expect(only).toMatchObject({ id: 'palette-managed', status: 'skipped' });
    expect(only!.fix).toContain('deploy/clusterrole.yaml');
  });
});
