/**
 * The anchors `audit verify --kubeconfig` can reach: for each cluster the database's runs name (or the one given),
 * the audit head its ConfigMap keeps for this database. A cluster that cannot be read is reported, not fatal.
 */
import { KubeCluster } from '../cluster/kube/index.ts';
import { loadKubeConfig } from '../cluster/kube/kubeconfig.ts';
import type { AuditAnchor } from '../store/audit.ts';
import type { Store } from '../store/store.ts';
import { SystemClock } from '../service/system-clock.ts';

export async function clusterAnchors(store: Store, options: { kubeconfig: string; context?: string; cluster?: string }): Promise<{ anchors: AuditAnchor[]; unreachable: string[] }> {
  const { kubeConfig } = loadKubeConfig({ path: options.kubeconfig, ...(options.context ? { context: options.context } : {}) });
  const names = options.cluster ? [options.cluster] : store.runClusters();
  const storeId = store.storeId();
  const anchors: AuditAnchor[] = [];
  const unreachable: string[] = [];
  for (const name of names) {
    const cluster = new KubeCluster({ kubeConfig, clock: new SystemClock(), name, retry: { attempts: 2 } });
    const where = `${cluster.auditAnchorLocation} (cluster ${name}, database ${storeId})`;
    try {
      const anchor = await cluster.readAuditAnchor(storeId);
      if (anchor === null) unreachable.push(`${where}: no anchor for this database there`);
      else if (anchor === 'unreadable') unreachable.push(`${where}: the anchor there is not one patchpilot wrote (unreadable)`);
      else anchors.push({ ...anchor, source: where });
    } catch (err) {
      unreachable.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { anchors, unreachable };
}
