import { describe, expect, it } from 'vitest';
import { PALETTE_LABEL_KEY, parsePlan } from '../../src/engine/plan.ts';
import { noMatchingNodes, selectNodes, type NodeView } from '../../src/engine/selection.ts';

const KEY = 'patchpilot.io/os-patch';
const HASH = 'abc123';

const linux = (name: string, labels: Record<string, string> = {}): NodeView => ({
  name,
  labels: { 'kubernetes.io/os': 'linux', ...labels },
});

describe('selectNodes: which nodes a run patches (seed: "Node Selection Logic")', () => {
  it.each([
    { name: 'a Linux node without the task label is selected', node: linux('n1'), selected: true, reason: null },
    { name: 'a node whose label is an older hash is selected', node: linux('n1', { [KEY]: 'old999' }), selected: true, reason: null },
    { name: 'a node already at the current hash is skipped', node: linux('n1', { [KEY]: HASH }), selected: false, reason: 'already-patched' },
    { name: '"disabled" excludes a node', node: linux('n1', { [KEY]: 'disabled' }), selected: false, reason: 'disabled' },
    { name: 'a node without the OS label is never selected', node: { name: 'n1', labels: {} }, selected: false, reason: 'not-linux' },
    { name: 'a Windows node is never selected', node: { name: 'w1', labels: { 'kubernetes.io/os': 'windows' } }, selected: false, reason: 'not-linux' },
  ])('$name', ({ node, selected, reason }) => {
    const result = selectNodes([node], { labelKey: KEY, hash: HASH });
    expect(result.selected.map((t) => t.name)).toEqual(selected ? [node.name] : []);
    expect(result.excluded.map((e) => e.reason)).toEqual(reason ? [reason] : []);
  });

  it('running the same trigger twice selects nothing the second time', () => {
    const nodes = [linux('a'), linux('b')];
    const first = selectNodes(nodes, { labelKey: KEY, hash: HASH });
    expect(first.selected).toHaveLength(2);
    const afterRun = nodes.map((n) => ({ ...n, labels: { ...n.labels, [KEY]: HASH } }));
    const second = selectNodes(afterRun, { labelKey: KEY, hash: HASH });
    expect(second.selected).toEqual([]);
    expect(noMatchingNodes(second)).toBe(false);
  });

  it('a node added after a run is the only one selected by the same trigger', () => {
    const patched = [linux('a', { [KEY]: HASH }), linux('b', { [KEY]: HASH })];
    const result = selectNodes([...patched, linux('new-1')], { labelKey: KEY, hash: HASH });
    expect(result.selected.map((t) => t.name)).toEqual(['new-1']);
  });

  it('orders control-plane nodes first, then workers round-robin across zones, whatever the input order', () => {
    const nodes = [
      linux('w-b2', { 'topology.kubernetes.io/zone': 'b' }),
      linux('w-a1', { 'topology.kubernetes.io/zone': 'a' }),
      linux('cp-2', { 'node-role.kubernetes.io/control-plane': '', 'topology.kubernetes.io/zone': 'b' }),
      linux('w-a10', { 'topology.kubernetes.io/zone': 'a' }),
      linux('w-a2', { 'topology.kubernetes.io/zone': 'a' }),
      linux('w-b1', { 'topology.kubernetes.io/zone': 'b' }),
      linux('cp-1', { 'node-role.kubernetes.io/master': '', 'topology.kubernetes.io/zone': 'a' }),
    ];
    const expected = ['cp-1', 'cp-2', 'w-a1', 'w-b1', 'w-a2', 'w-b2', 'w-a10'];
    expect(selectNodes(nodes, { labelKey: KEY, hash: HASH }).selected.map((t) => t.name)).toEqual(expected);
    expect(selectNodes([...nodes].reverse(), { labelKey: KEY, hash: HASH }).selected.map((t) => t.name)).toEqual(expected);
    expect(selectNodes(nodes, { labelKey: KEY, hash: HASH }).selected.slice(0, 2).map((t) => t.role)).toEqual(['control-plane', 'control-plane']);
  });

  it('applies the node selector and an explicit node list, and names node names that do not exist', () => {
    const nodes = [linux('a', { pool: 'gpu' }), linux('b', { pool: 'cpu' }), linux('c', { pool: 'gpu' })];
    const bySelector = selectNodes(nodes, { labelKey: KEY, hash: HASH, nodeSelector: { pool: 'gpu' } });
    expect(bySelector.selected.map((t) => t.name)).toEqual(['a', 'c']);
    expect(bySelector.excluded).toEqual([{ name: 'b', reason: 'selector-mismatch', detail: 'needs pool=gpu' }]);
    const byName = selectNodes(nodes, { labelKey: KEY, hash: HASH, nodes: ['c', 'zz-9'] });
    expect(byName.selected.map((t) => t.name)).toEqual(['c']);
    expect(byName.unknown).toEqual(['zz-9']);
  });

  it('reports "no matching nodes" only when no Linux node matches, not when everything is already done', () => {
    expect(noMatchingNodes(selectNodes([{ name: 'w', labels: { 'kubernetes.io/os': 'windows' } }], { labelKey: KEY, hash: HASH }))).toBe(true);
    expect(noMatchingNodes(selectNodes([], { labelKey: KEY, hash: HASH }))).toBe(true);
    expect(noMatchingNodes(selectNodes([linux('a', { [KEY]: 'disabled' })], { labelKey: KEY, hash: HASH }))).toBe(false);
  });

  it('uses Palette\'s label key in palette mode', () => {
    const plan = parsePlan({ mode: 'palette' });
    expect(plan.labelKey).toBe(PALETTE_LABEL_KEY);
    const result = selectNodes([linux('a', { [PALETTE_LABEL_KEY]: HASH }), linux('b', { [KEY]: HASH })], { labelKey: plan.labelKey, hash: HASH });
    expect(result.selected.map((t) => t.name)).toEqual(['b']);
    expect(parsePlan({ mode: 'palette', labelKey: 'example.com/patch' }).labelKey).toBe('example.com/patch');
  });
});

describe('a node another holder left mid-patch', () => {
  it('goes first, so that finishing it takes the first slot and cordons never exceed concurrency', () => {
    const nodes: NodeView[] = [
      { name: 'cp-1', labels: { 'node-role.kubernetes.io/control-plane': '', 'kubernetes.io/os': 'linux' } },
      { name: 'worker-1', labels: { 'kubernetes.io/os': 'linux' } },
      { name: 'worker-2', labels: { 'kubernetes.io/os': 'linux' }, unfinished: true },
    ];
    const selection = selectNodes(nodes, { labelKey: 'patchpilot.io/os-patch', hash: 'h' });
    expect(selection.selected.map((t) => t.name)).toEqual(['worker-2', 'cp-1', 'worker-1']);
    expect(selectNodes(nodes.map(({ unfinished: _u, ...n }) => n), { labelKey: 'patchpilot.io/os-patch', hash: 'h' }).selected.map((t) => t.name)).toEqual(['cp-1', 'worker-1', 'worker-2']);
  });

  it('is selected even when it already carries the hash: its leftover cordon must still be lifted', () => {
    const patched = { 'kubernetes.io/os': 'linux', 'patchpilot.io/os-patch': 'h' };
    const nodes: NodeView[] = [
      { name: 'worker-1', labels: patched },
      { name: 'worker-2', labels: patched, unfinished: true },
      { name: 'worker-3', labels: { 'kubernetes.io/os': 'linux' } },
    ];
    const selection = selectNodes(nodes, { labelKey: 'patchpilot.io/os-patch', hash: 'h' });
    expect(selection.selected.map((t) => t.name)).toEqual(['worker-2', 'worker-3']);
    expect(selection.excluded.map((e) => `${e.name}: ${e.reason}`)).toEqual(['worker-1: already-patched']);
  });
});
