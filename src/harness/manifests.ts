/**
 * Applies a folder of Kubernetes manifests (deploy/*.yaml) to a test cluster with client-node, as `kubectl create -f`
 * would: every document of every file, Namespaces first so that the namespaced objects have somewhere to go, objects
 * that already exist left as they are.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiException, KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

export interface AppliedObject {
  file: string;
  kind: string;
  name: string;
  namespace?: string;
  created: boolean;
}

/** The manifests of `dir` in the order they would be applied; empty when the folder does not exist. */
export function readManifests(dir: string): { file: string; object: KubernetesObject }[] {
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort();
  const objects = files.flatMap((file) =>
    // Not client-node's loadAllYaml: it throws on an empty document (a trailing `---`, a comment-only part).
    parseAllDocuments(readFileSync(join(dir, file), 'utf8'))
      .map((doc) => {
        if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
        return doc.toJS() as KubernetesObject | null;
      })
      .filter((o): o is KubernetesObject => o !== null && typeof o === 'object' && typeof o.kind === 'string')
      .map((object) => ({ file, object })),
  );
  // Stable: within each group the files' own order holds.
  return [...objects.filter((o) => o.object.kind === 'Namespace'), ...objects.filter((o) => o.object.kind !== 'Namespace')];
}

export async function applyManifests(kubeConfig: KubeConfig, dir: string): Promise<AppliedObject[]> {
  const api = KubernetesObjectApi.makeApiClient(kubeConfig);
  const applied: AppliedObject[] = [];
  for (const { file, object } of readManifests(dir)) {
    const entry: AppliedObject = {
      file,
      kind: object.kind!,
      name: object.metadata?.name ?? '?',
      ...(object.metadata?.namespace ? { namespace: object.metadata.namespace } : {}),
      created: true,
    };
    try {
      await api.create(object);
    } catch (e) {
      if (!(e instanceof ApiException && e.code === 409)) {
        throw new Error(`${file}: cannot create ${entry.kind} ${entry.name}: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`);
      }
      entry.created = false;
    }
    applied.push(entry);
  }
  return applied;
}
