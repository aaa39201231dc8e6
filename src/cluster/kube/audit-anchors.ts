/**
 * The audit head of each patchpilot database that drives this cluster, kept in a ConfigMap in patchpilot's namespace
 * (`patchpilot-audit-<cluster>`, one key per database id). Whoever can rewrite a database cannot rewrite this without
 * the cluster's credentials too, so `audit verify` can tell a log cut short, appended to or recomputed. An anchor only
 * moves forward: of two processes on one database the later head wins, whichever writes last.
 */
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';
import { boundedName } from '../jobs.ts';
import type { StoredAuditAnchor } from '../port.ts';
import { isNotFound, type KubeRequests } from './requests.ts';

export function auditAnchorConfigMapName(cluster: string): string {
  return boundedName(`patchpilot-audit-${cluster}`);
}

/** ConfigMap keys must match [-._a-zA-Z0-9]+. */
const keyOf = (storeId: string) => `db-${storeId.replace(/[^-._a-zA-Z0-9]/g, '_')}`;

function parse(value: string | undefined): StoredAuditAnchor | null {
  if (value === undefined) return null;
  try {
    const anchor = JSON.parse(value) as Partial<StoredAuditAnchor>;
    if (Number.isSafeInteger(anchor.seq) && typeof anchor.hash === 'string' && Number.isFinite(anchor.at)) return anchor as StoredAuditAnchor;
  } catch {
    // Unreadable: reported as such by the reader, overwritten by the next writer.
  }
  return null;
}

export class AuditAnchors {
  readonly #core: CoreV1Api;
  readonly #requests: KubeRequests;
  readonly #namespace: string;

  constructor(ctx: { core: CoreV1Api; requests: KubeRequests; namespace: string }) {
    this.#core = ctx.core;
    this.#requests = ctx.requests;
    this.#namespace = ctx.namespace;
  }

  async write(cluster: string, storeId: string, anchor: StoredAuditAnchor, signal?: AbortSignal): Promise<void> {
    const namespace = this.#namespace;
    const name = auditAnchorConfigMapName(cluster);
    const key = keyOf(storeId);
    const request = { verb: 'update', resource: 'configmaps', group: '', namespace, name } as const;
    await this.#requests.untilNoConflict(
      request,
      async () => {
        const current = await this.#read(name, signal);
        const value = JSON.stringify(anchor);
        if (current === null) {
          const body: V1ConfigMap = {
            metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'patchpilot', 'app.kubernetes.io/component': 'audit-anchor' } },
            data: { [key]: value },
          };
          await this.#requests.send({ ...request, verb: 'create' }, (o) => this.#core.createNamespacedConfigMap({ namespace, body }, o), { signal });
          return;
        }
        const previous = parse(current.data?.[key]);
        if (previous && previous.seq >= anchor.seq) return;
        const body: V1ConfigMap = { ...current, data: { ...current.data, [key]: value } };
        await this.#requests.send(request, (o) => this.#core.replaceNamespacedConfigMap({ name, namespace, body }, o), { signal });
      },
      signal,
    );
  }

  /** The anchor of one database, or null (no ConfigMap, no key); `unreadable` when the key holds no anchor. */
  async read(cluster: string, storeId: string, signal?: AbortSignal): Promise<StoredAuditAnchor | 'unreadable' | null> {
    const current = await this.#read(auditAnchorConfigMapName(cluster), signal);
    const raw = current?.data?.[keyOf(storeId)];
    if (raw === undefined) return null;
    return parse(raw) ?? 'unreadable';
  }

  async #read(name: string, signal?: AbortSignal): Promise<V1ConfigMap | null> {
    const namespace = this.#namespace;
    try {
      return await this.#requests.send({ verb: 'get', resource: 'configmaps', group: '', namespace, name }, (o) => this.#core.readNamespacedConfigMap({ name, namespace }, o), { signal });
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }
}
