import { describe, expect, it } from 'vitest';
import { jsonPatch, mergePatch, strategicMergePatch } from '../../src/sim/kube-api/patch.ts';
import { StatusError } from '../../src/sim/kube-api/status.ts';

function statusOf(fn: () => unknown): StatusError['status'] | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof StatusError) return error.status;
    throw error;
  }
  return undefined;
}

describe('JSON merge patch (RFC 7386)', () => {
  it('merges maps, deletes with null and replaces lists', () => {
    const doc = { metadata: { labels: { a: '1', b: '2' } }, spec: { unschedulable: true, taints: [{ key: 'x' }] } };
    const patched = mergePatch(structuredClone(doc), { metadata: { labels: { b: null, c: '3' } }, spec: { unschedulable: null, taints: [{ key: 'y' }] } });
    expect(patched).toEqual({ metadata: { labels: { a: '1', c: '3' } }, spec: { taints: [{ key: 'y' }] } });
  });

  it('replaces the document with a non-object patch, as the RFC says', () => {
    expect(mergePatch({ a: 1 }, ['x'])).toEqual(['x']);
  });
});

describe('strategic merge patch', () => {
  const pod = {
    metadata: { finalizers: ['a', 'b'], ownerReferences: [{ uid: 'u1', name: 'rs1', kind: 'ReplicaSet', apiVersion: 'apps/v1' }] },
    spec: {
      containers: [
        { name: 'main', image: 'app:1', env: [{ name: 'A', value: '1' }] },
        { name: 'sidecar', image: 'proxy:1' },
      ],
      tolerations: [{ key: 't1' }],
    },
    status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'PodScheduled', status: 'True' }] },
  };

  it('merges containers by name, env by name and conditions by type', () => {
    const patched = strategicMergePatch(structuredClone(pod), {
      spec: { containers: [{ name: 'main', image: 'app:2', env: [{ name: 'B', value: '2' }] }, { name: 'new', image: 'n:1' }] },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    }) as typeof pod;
    expect(patched.spec.containers).toEqual([
      { name: 'main', image: 'app:2', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] },
      { name: 'sidecar', image: 'proxy:1' },
      { name: 'new', image: 'n:1' },
    ]);
    expect(patched.status.conditions).toEqual([{ type: 'Ready', status: 'True' }, { type: 'PodScheduled', status: 'True' }]);
  });

  it('replaces lists without a merge key (tolerations)', () => {
    const patched = strategicMergePatch(structuredClone(pod), { spec: { tolerations: [{ key: 't2' }] } }) as typeof pod;
    expect(patched.spec.tolerations).toEqual([{ key: 't2' }]);
  });

  it('deletes a list item with $patch: delete and merges taints by key', () => {
    const node = { spec: { taints: [{ key: 'a', effect: 'NoSchedule' }, { key: 'b', effect: 'NoSchedule' }] } };
    const patched = strategicMergePatch(structuredClone(node), {
      spec: { taints: [{ key: 'a', $patch: 'delete' }, { key: 'b', effect: 'NoExecute' }, { key: 'c', effect: 'NoSchedule' }] },
    });
    expect(patched).toEqual({ spec: { taints: [{ key: 'b', effect: 'NoExecute' }, { key: 'c', effect: 'NoSchedule' }] } });
  });

  it('unions finalizers and removes them with $deleteFromPrimitiveList', () => {
    const added = strategicMergePatch(structuredClone(pod), { metadata: { finalizers: ['b', 'c'] } }) as typeof pod;
    expect(added.metadata.finalizers).toEqual(['a', 'b', 'c']);
    const deleted = strategicMergePatch(structuredClone(pod), { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } }) as typeof pod;
    expect(deleted.metadata.finalizers).toEqual(['b']);
  });

  it('merges ownerReferences by uid and replaces a map with $patch: replace', () => {
    const patched = strategicMergePatch(structuredClone(pod), {
      metadata: { ownerReferences: [{ uid: 'u1', $patch: 'delete' }] },
      spec: { $patch: 'replace', containers: [{ name: 'only', image: 'o:1' }] },
    }) as { metadata: { ownerReferences: unknown[] }; spec: unknown };
    expect(patched.metadata.ownerReferences).toEqual([]);
    expect(patched.spec).toEqual({ containers: [{ name: 'only', image: 'o:1' }] });
  });

  it('cordons and uncordons the way kubectl sends it', () => {
    const cordoned = strategicMergePatch({ spec: { podCIDR: 'x' } }, { spec: { unschedulable: true } });
    expect(cordoned).toEqual({ spec: { podCIDR: 'x', unschedulable: true } });
    expect(strategicMergePatch(cordoned, { spec: { unschedulable: null } })).toEqual({ spec: { podCIDR: 'x' } });
  });
});

describe('JSON patch (RFC 6902)', () => {
  const doc = () => ({ metadata: { labels: { a: '1' } }, spec: { list: [1, 2, 3] } });

  it('applies add, remove, replace, move, copy and test in order', () => {
    const patched = jsonPatch(doc(), [
      { op: 'test', path: '/metadata/labels/a', value: '1' },
      { op: 'add', path: '/metadata/labels/b~1c', value: '2' },
      { op: 'replace', path: '/metadata/labels/a', value: '9' },
      { op: 'add', path: '/spec/list/-', value: 4 },
      { op: 'add', path: '/spec/list/0', value: 0 },
      { op: 'remove', path: '/spec/list/1' },
      { op: 'copy', from: '/metadata/labels/a', path: '/spec/copied' },
      { op: 'move', from: '/spec/copied', path: '/spec/moved' },
    ]);
    expect(patched).toEqual({ metadata: { labels: { a: '9', 'b/c': '2' } }, spec: { list: [0, 2, 3, 4], moved: '9' } });
  });

  it('answers a failing test with 422 Invalid, as the API server does', () => {
    expect(statusOf(() => jsonPatch(doc(), [{ op: 'test', path: '/metadata/labels/a', value: '2' }, { op: 'add', path: '/x', value: 1 }]))).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'the server rejected our request due to an error in our request',
      reason: 'Invalid',
      details: {},
      code: 422,
    });
  });

  it('answers an operation on a missing path with 422 and a malformed patch with 400', () => {
    expect(statusOf(() => jsonPatch(doc(), [{ op: 'remove', path: '/metadata/annotations/x' }]))?.code).toBe(422);
    expect(statusOf(() => jsonPatch(doc(), [{ op: 'replace', path: '/spec/nothing', value: 1 }]))?.code).toBe(422);
    expect(statusOf(() => jsonPatch(doc(), { op: 'add' }))?.code).toBe(400);
    expect(statusOf(() => jsonPatch(doc(), [{ op: 'frobnicate', path: '/a' }]))?.code).toBe(400);
  });
});
