/**
 * Applies a folder of Kubernetes manifests (deploy/) to a test cluster with client-node, as `kubectl create -k` (or
 * `-f`, without a kustomization.yaml) would: the files the kustomization lists, in its order (else every YAML file by
 * name), every document of each, Namespaces first so that the namespaced objects have somewhere to go, objects that
 * already exist left as they are.
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

export interface ManifestOptions {
  /** Kinds to leave out (a test cluster may not want the orchestrator's own Deployment running beside the tests). */
  excludeKinds?: readonly string[];
}

function documents(dir: string, file: string): unknown[] {
  // Not client-node's loadAllYaml: it throws on an empty document (a trailing `---`, a comment-only part).
  return parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    return doc.toJS() as unknown;
  });
}

/** The files to apply: the kustomization's local resources when there is one, else every YAML file by name. */
function manifestFiles(dir: string): string[] {
  const kustomization = ['kustomization.yaml', 'kustomization.yml'].find((f) => existsSync(join(dir, f)));
  if (kustomization) {
    const [spec] = documents(dir, kustomization) as ({ resources?: unknown } | null)[];
    const resources = Array.isArray(spec?.resources) ? spec.resources.map(String) : [];
    const missing = resources.filter((r) => !existsSync(join(dir, r)));
    if (missing.length > 0) throw new Error(`${kustomization} lists ${missing.join(', ')}, which this harness cannot find as local files`);
    return resources;
  }
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort();
}

/** The manifests of `dir` in the order they would be applied; empty when the folder does not exist. */
export function readManifests(dir: string, options: ManifestOptions = {}): { file: string; object: KubernetesObject }[] {
  if (!existsSync(dir)) return [];
  const exclude = new Set(options.excludeKinds ?? []);
  const objects = manifestFiles(dir).flatMap((file) =>
    documents(dir, file)
      .filter((o): o is KubernetesObject => o !== null && typeof o === 'object' && typeof (o as KubernetesObject).kind === 'string')
      .filter((object) => !exclude.has(object.kind!))
      .map((object) => ({ file, object })),
  );
  // Stable: within each group the files' own order holds.
  return [...objects.filter((o) => o.object.kind === 'Namespace'), ...objects.filter((o) => o.object.kind !== 'Namespace')];
}

export async function applyManifests(kubeConfig: KubeConfig, dir: string, options: ManifestOptions = {}): Promise<AppliedObject[]> {
  const api = KubernetesObjectApi.makeApiClient(kubeConfig);
  const applied: AppliedObject[] = [];
  for (const { file, object } of readManifests(dir, options)) {
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
