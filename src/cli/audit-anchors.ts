/**
 * The anchors `audit verify --kubeconfig` can reach: for each cluster the database's runs name (or the one given),
 * the audit head its ConfigMap keeps for this database. A cluster that keeps no anchor for this database is reported
 * (`notChecked`); one that cannot be read at all (its API server down, the credentials refused) is `failed`, which the
 * command turns into an error (exit 2): the check asked for was not made, and "intact" would say otherwise.
 */
import { KubeCluster } from '../cluster/kube/index.ts';
import { loadKubeConfig } from '../cluster/kube/kubeconfig.ts';
import type { AuditAnchor } from '../store/audit.ts';
import type { Store } from '../store/store.ts';
import { SystemClock } from '../service/system-clock.ts';
import { describeUnreachable } from './network-error.ts';

export interface ClusterAnchors {
  anchors: AuditAnchor[];
  /** Read, but no anchor of this database there (or none patchpilot wrote): said beside the result. */
  notChecked: string[];
  /** Could not be read: the API server unreachable, failing, or refusing. */
  failed: string[];
}

export async function clusterAnchors(store: Store, options: { kubeconfig: string; context?: string; cluster?: string }): Promise<ClusterAnchors> {
  const { kubeConfig } = loadKubeConfig({ path: options.kubeconfig, ...(options.context ? { context: options.context } : {}) });
  const names = options.cluster ? [options.cluster] : store.runClusters();
  const storeId = store.storeId();
  const result: ClusterAnchors = { anchors: [], notChecked: [], failed: [] };
  if (names.length === 0) result.notChecked.push("no cluster to read an anchor from: the database's runs name none (pass --cluster NAME)");
  for (const name of names) {
    const cluster = new KubeCluster({ kubeConfig, clock: new SystemClock(), name, retry: { attempts: 2 } });
    const where = `${cluster.auditAnchorLocation} (cluster ${name}, database ${storeId})`;
    try {
      const anchor = await cluster.readAuditAnchor(storeId);
      if (anchor === null) result.notChecked.push(`${where}: no anchor for this database there`);
      else if (anchor === 'unreadable') result.notChecked.push(`${where}: the anchor there is not one patchpilot wrote (unreadable)`);
      else result.anchors.push({ ...anchor, source: where });
    } catch (err) {
      // undici's bare "fetch failed" (a port fetch refuses, say) says nothing: name the server and the reason.
      const message = err instanceof Error ? err.message : String(err);
      const server = kubeConfig.getCurrentCluster()?.server ?? 'the kubeconfig\'s server';
      result.failed.push(`${where}: ${message === 'fetch failed' ? `cannot reach the Kubernetes API server at ${server}: ${describeUnreachable(err) ?? message}` : message}`);
    }
  }
  return result;
}
