/**
 * Nodes as the engine sees them, and the JSON Patches (RFC 6902) that change them. Every patch that decides from
 * what it read carries a `test` of that reading, so the API server applies it only if nothing changed in between
 * (422 otherwise, and the caller reads again): a cordon is never claimed over someone else's, a label an operator
 * set to "disabled" meanwhile is never overwritten.
 */
import type { V1Node } from '@kubernetes/client-node';
import { ANNOTATIONS } from '../../engine/metadata.ts';
import type { ClusterNode, MetadataPatch } from '../port.ts';

export type JsonPatchOp =
  | { op: 'test'; path: string; value: unknown }
  | { op: 'add' | 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

export function toClusterNode(node: V1Node): ClusterNode {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  const info = node.status?.nodeInfo;
  return {
    name: node.metadata?.name ?? '',
    labels: { ...node.metadata?.labels },
    annotations: { ...node.metadata?.annotations },
    unschedulable: node.spec?.unschedulable === true,
    ready: ready?.status === 'True',
    bootId: info?.bootID ?? '',
    kubeletVersion: info?.kubeletVersion ?? '',
    osImage: info?.osImage ?? '',
    ...(info?.kernelVersion ? { kernelVersion: info.kernelVersion } : {}),
  };
}

/** RFC 6901: `~` and `/` in a key (every label key with a prefix has one) are escaped. */
export function pointer(...segments: string[]): string {
  return segments.map((s) => `/${s.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

function testResourceVersion(node: V1Node): JsonPatchOp {
  return { op: 'test', path: '/metadata/resourceVersion', value: node.metadata?.resourceVersion ?? '' };
}

/** Ops that set `key` in a metadata map that may not exist yet (adding into a missing map fails). */
function setInMap(node: V1Node, map: 'labels' | 'annotations', entries: Record<string, string>): JsonPatchOp[] {
  if (Object.keys(entries).length === 0) return [];
  if (node.metadata?.[map] === undefined) return [{ op: 'add', path: pointer('metadata', map), value: entries }];
  return Object.entries(entries).map(([key, value]) => ({ op: 'add' as const, path: pointer('metadata', map, key), value }));
}

/** Unschedulable and the cordoned-by annotation, in one patch, only if the node is still as read. */
export function cordonPatch(node: V1Node, owner: string, generation?: number): JsonPatchOp[] {
  const annotations: Record<string, string> = { [ANNOTATIONS.cordonedBy]: owner };
  if (generation !== undefined) annotations[ANNOTATIONS.cordonGeneration] = String(generation);
  return [testResourceVersion(node), { op: 'add', path: '/spec/unschedulable', value: true }, ...setInMap(node, 'annotations', annotations)];
}

/** Lifts our cordon: the annotation is tested too, so someone else's cordon (or one they re-made) is never lifted. */
export function uncordonPatch(node: V1Node, owner: string): JsonPatchOp[] {
  const annotation = pointer('metadata', 'annotations', ANNOTATIONS.cordonedBy);
  return [
    testResourceVersion(node),
    { op: 'test', path: annotation, value: owner },
    { op: 'remove', path: '/spec/unschedulable' },
    { op: 'remove', path: annotation },
    ...(node.metadata?.annotations?.[ANNOTATIONS.cordonGeneration] !== undefined
      ? [{ op: 'remove' as const, path: pointer('metadata', 'annotations', ANNOTATIONS.cordonGeneration) }]
      : []),
  ];
}

/**
 * The JSON Patch for a MetadataPatch against the node as read. A label in `keepLabelValues` whose current value is
 * the kept one is left out; one that is about to be written is guarded by a `test` of its current value (or of the
 * resourceVersion when it has none, since absence cannot be tested), so an operator's "disabled" set after our read
 * fails the patch instead of being overwritten. Deleting a key that is not there is left out, too (it would fail).
 * Returns [] when there is nothing to change.
 */
export function metadataPatch(node: V1Node, patch: MetadataPatch): JsonPatchOp[] {
  const labels = node.metadata?.labels ?? {};
  const annotations = node.metadata?.annotations ?? {};
  const keep = patch.keepLabelValues ?? {};
  const guards: JsonPatchOp[] = [];
  const changes: JsonPatchOp[] = [];
  let guardVersion = false;

  const plan = (map: 'labels' | 'annotations', current: Record<string, string>, wanted: Record<string, string | null> | undefined) => {
    const sets: Record<string, string> = {};
    for (const [key, value] of Object.entries(wanted ?? {})) {
      const kept = map === 'labels' ? keep[key] : undefined;
      if (kept !== undefined && current[key] === kept) continue;
      if (value === null) {
        if (!(key in current)) continue;
        changes.push({ op: 'remove', path: pointer('metadata', map, key) });
      } else {
        if (current[key] === value) continue;
        sets[key] = value;
      }
      if (kept === undefined) continue;
      if (key in current) guards.push({ op: 'test', path: pointer('metadata', map, key), value: current[key] });
      else guardVersion = true;
    }
    changes.push(...setInMap(node, map, sets));
  };
  plan('labels', labels, patch.labels);
  plan('annotations', annotations, patch.annotations);
  if (changes.length === 0) return [];
  return [...(guardVersion ? [testResourceVersion(node)] : []), ...guards, ...changes];
}
