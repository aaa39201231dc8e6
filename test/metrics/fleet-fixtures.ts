/** Nodes with patchpilot's annotations, and a small fleet of them, for the metrics and status tests. */
import type { ClusterNode } from '../../src/cluster/port.ts';
import { ANNOTATIONS, scanMetadata } from '../../src/engine/metadata.ts';
import { clusterStatus } from '../../src/service/fleet-status.ts';

export function node(name: string, annotations: Record<string, string | null> = {}, extra: Partial<ClusterNode> = {}): ClusterNode {
  const clean = Object.fromEntries(Object.entries(annotations).filter((e): e is [string, string] => e[1] !== null));
  return { name, labels: { 'kubernetes.io/os': 'linux' }, annotations: clean, unschedulable: false, ready: true, bootId: 'b', kubeletVersion: 'v1.30.0', osImage: 'Ubuntu 22.04.5 LTS', kernelVersion: '5.15.0-1', ...extra };
}

export const AT = Date.parse('2026-12-01T10:00:00Z');

export function sampleFleet(cluster: string) {
  return clusterStatus(
    cluster,
    [
      node('n1', scanMetadata({ at: AT, pending: ['openssl', 'libc6'], rebootRequired: false, error: null })),
      node('n2', { ...scanMetadata({ at: AT, pending: [], rebootRequired: true, error: null }), [ANNOTATIONS.status]: 'patched', [ANNOTATIONS.time]: '2026-11-30T08:00:00.000Z', [ANNOTATIONS.run]: 'r1' }),
      node('n3', scanMetadata({ at: AT, pending: [], rebootRequired: false, error: null })),
      node('n4'),
    ],
    { labelKey: 'patchpilot.io/task', now: AT },
  );
}

