/** The JSON Patches the adapter sends to nodes, and the agent report read from a pod log: pure, so checked as data. */
import type { V1Node } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { lastReport } from '../../src/cluster/kube/agent-jobs.ts';
import { parseForbidden, statusText } from '../../src/cluster/kube/errors.ts';
import { cordonPatch, metadataPatch, pointer, toClusterNode, uncordonPatch } from '../../src/cluster/kube/node-patches.ts';

function node(labels?: Record<string, string>, annotations?: Record<string, string>): V1Node {
  return {
    metadata: { name: 'w1', resourceVersion: '42', ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
    spec: {},
    status: {
      conditions: [{ type: 'Ready', status: 'True' }],
      nodeInfo: { bootID: 'b1', kubeletVersion: 'v1.30.4', osImage: 'Ubuntu', architecture: '', containerRuntimeVersion: '', kernelVersion: '', kubeProxyVersion: '', machineID: '', operatingSystem: 'linux', systemUUID: '' },
    },
  };
}

const TASK = 'patchpilot.io/os-patch';

describe('node JSON Patches', () => {
  it('escapes label keys as RFC 6901 pointers', () => {
    expect(pointer('metadata', 'labels', 'task.cluster.spectrocloud.com/on-demand-os-patch')).toBe('/metadata/labels/task.cluster.spectrocloud.com~1on-demand-os-patch');
    expect(pointer('metadata', 'annotations', 'a~b/c')).toBe('/metadata/annotations/a~0b~1c');
  });

  it('cordons in one patch guarded by the resourceVersion, creating the annotations map when there is none', () => {
    expect(cordonPatch(node(), 'run-1')).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '42' },
      { op: 'add', path: '/spec/unschedulable', value: true },
      { op: 'add', path: '/metadata/annotations', value: { 'patchpilot.io/cordoned-by': 'run-1' } },
    ]);
    expect(cordonPatch(node({}, { other: 'x' }), 'run-1')[2]).toEqual({ op: 'add', path: '/metadata/annotations/patchpilot.io~1cordoned-by', value: 'run-1' });
  });

  it('uncordons only if the claim is still ours', () => {
    const ops = uncordonPatch(node({}, { 'patchpilot.io/cordoned-by': 'run-1' }), 'run-1');
    expect(ops).toContainEqual({ op: 'test', path: '/metadata/annotations/patchpilot.io~1cordoned-by', value: 'run-1' });
    expect(ops).toContainEqual({ op: 'remove', path: '/spec/unschedulable' });
  });

  it('leaves a kept label value alone and guards the labels it writes over with a test of what it read', () => {
    const disabled = metadataPatch(node({ [TASK]: 'disabled' }, {}), { labels: { [TASK]: 'h1' }, annotations: { s: 'patched' }, keepLabelValues: { [TASK]: 'disabled' } });
    expect(disabled).toEqual([{ op: 'add', path: '/metadata/annotations/s', value: 'patched' }]);
    const old = metadataPatch(node({ [TASK]: 'h0' }, {}), { labels: { [TASK]: 'h1' }, keepLabelValues: { [TASK]: 'disabled' } });
    expect(old).toEqual([
      { op: 'test', path: '/metadata/labels/patchpilot.io~1os-patch', value: 'h0' },
      { op: 'add', path: '/metadata/labels/patchpilot.io~1os-patch', value: 'h1' },
    ]);
    // Absence cannot be tested: the whole node's version is, instead.
    const none = metadataPatch(node({ other: 'x' }, {}), { labels: { [TASK]: 'h1' }, keepLabelValues: { [TASK]: 'disabled' } });
    expect(none[0]).toEqual({ op: 'test', path: '/metadata/resourceVersion', value: '42' });
  });

  it('removes only keys that exist, skips values already set, and sends nothing when nothing changes', () => {
    const n = node({ a: '1' }, { keep: 'v', gone: 'x' });
    expect(metadataPatch(n, { labels: { a: '1' }, annotations: { keep: 'v', gone: null, never: null } })).toEqual([
      { op: 'remove', path: '/metadata/annotations/gone' },
    ]);
    expect(metadataPatch(n, { labels: { a: '1' }, annotations: { never: null } })).toEqual([]);
    expect(metadataPatch(node(), { labels: { a: '1' } })).toEqual([{ op: 'add', path: '/metadata/labels', value: { a: '1' } }]);
  });

  it('maps a Node to what the engine reads', () => {
    const view = toClusterNode({ ...node({ l: 'v' }), spec: { unschedulable: true } });
    expect(view).toEqual({ name: 'w1', labels: { l: 'v' }, annotations: {}, unschedulable: true, ready: true, bootId: 'b1', kubeletVersion: 'v1.30.4', osImage: 'Ubuntu' });
    expect(toClusterNode({ metadata: { name: 'x' }, status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } }).ready).toBe(false);
  });
});

describe('the agent report in a pod log', () => {
  const report = { result: 'failed', upgraded: [], held: [], rebootRequired: false, rebootPackages: [], error: { code: 'LOCK_TIMEOUT', message: 'apt lock held' }, durationSeconds: 3 };

  it('is the last line that parses as JSON, whatever follows it', () => {
    const log = ['{"not":"the report"}', 'Reading package lists...', JSON.stringify(report), 'trailing stderr line', ''].join('\n');
    expect(lastReport(log)).toEqual({ report });
  });

  it('says why there is none', () => {
    expect(lastReport('')).toEqual({ problem: 'the agent printed nothing' });
    expect(lastReport('Killed\n')).toEqual({ problem: 'no agent report in its log' });
    expect(lastReport('{"result":"patched"}').problem).toMatch(/not a valid report/);
  });
});

describe('API server messages', () => {
  it('reads the verb and resource out of a Forbidden message', () => {
    const message = 'pods "web-0" is forbidden: User "system:serviceaccount:os-patch:patchpilot" cannot create resource "pods/eviction" in API group "" in the namespace "shop"';
    expect(parseForbidden(message)).toEqual({ verb: 'create', resource: 'pods/eviction', group: '' });
    expect(parseForbidden('something else')).toBeNull();
  });

  it('keeps the causes of a refusal (a PodDisruptionBudget names itself there)', () => {
    expect(statusText({ message: 'Cannot evict pod as it would violate the pod\'s disruption budget.', details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 2 currently' }] } })).toBe(
      "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget web needs 2 healthy pods and has 2 currently",
    );
  });
});
