/**
 * Wiring for doctor, unstick, reset, scan/status and the bot: a ClusterTarget (src/service/targets.ts) built from a
 * kubeconfig, the plan, the CLI's database and the Palette settings of the environment. The service never reads the
 * environment or a kubeconfig itself; this is where they are read.
 */
import { existsSync } from 'node:fs';
import { KubeCluster } from '../cluster/kube/index.ts';
import { loadKubeConfig } from '../cluster/kube/kubeconfig.ts';
import type { Clock } from '../engine/clock.ts';
import { parsePlan, type Plan } from '../engine/plan.ts';
import { DEFAULT_PALETTE_API_URL, PaletteClient, PaletteError, checkUid, paletteSettingsFromEnv, type FetchLike } from '../palette/index.ts';
import type { ClusterTarget, PaletteTarget } from '../service/targets.ts';
import { SystemClock } from '../service/system-clock.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/store.ts';
import { DEFAULT_DB } from './paths.ts';

export interface PaletteTargetOptions {
  clusterUid: string;
  /** Default: PALETTE_API_URL, else https://api.spectrocloud.com. */
  baseUrl?: string;
  /** Default: PALETTE_API_KEY. */
  apiKey?: string;
  /** Default: PALETTE_PROJECT_UID. */
  projectUid?: string;
  fetch?: FetchLike;
}

export interface KubeTargetOptions {
  kubeconfig?: string;
  context?: string;
  /** A parsed plan (the CLI's --plan file, the bot's cluster config); default: every default, named after the context's cluster. */
  plan?: Plan;
  /** A store path, an open Store, or null for none. Default: the CLI's database if it exists, else none. */
  db?: string | Store | null;
  /** The cluster in Palette; default: PALETTE_CLUSTER_UID when set, else not Palette-managed. */
  palette?: PaletteTargetOptions | null;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
}

export interface KubeTarget extends ClusterTarget {
  cluster: KubeCluster;
  /** Where the kubeconfig came from, for messages. */
  source: string;
  /** Closes the store if this target opened it. */
  close(): void;
}

export function kubeTarget(options: KubeTargetOptions = {}): KubeTarget {
  const env = options.env ?? process.env;
  const { kubeConfig, source } = loadKubeConfig({ path: options.kubeconfig, context: options.context, env });
  const plan = options.plan ?? parsePlan({ cluster: kubeConfig.getCurrentCluster()?.name ?? 'default' });
  const clock = options.clock ?? new SystemClock();
  const palette = paletteTarget(options.palette === undefined ? fromEnv(env) : options.palette, env);
  const cluster = new KubeCluster({ kubeConfig, clock, name: plan.cluster });
  let store: Store | null = null;
  let owned = false;
  if (typeof options.db === 'string') {
    store = openStore(options.db, { create: false });
    owned = true;
  } else if (options.db === undefined) {
    if (existsSync(DEFAULT_DB)) {
      store = openStore(DEFAULT_DB, { create: false });
      owned = true;
    }
  } else {
    store = options.db;
  }
  return {
    name: plan.cluster,
    cluster,
    store,
    plan,
    clock,
    palette,
    source,
    close: () => {
      if (owned) store?.close();
    },
  };
}

function fromEnv(env: NodeJS.ProcessEnv): PaletteTargetOptions | null {
  const uid = env.PALETTE_CLUSTER_UID?.trim();
  return uid ? { clusterUid: uid } : null;
}

/** A Palette client for the cluster, or null when none is asked for; a cluster uid without a key is an error. */
export function paletteTarget(options: PaletteTargetOptions | null, env: NodeJS.ProcessEnv = process.env): PaletteTarget | null {
  if (options === null) return null;
  // A mistyped uid (or an empty --palette-cluster) is named as such, before the missing key or any request.
  checkUid(options.clusterUid);
  const settings = paletteSettingsFromEnv(env);
  const apiKey = options.apiKey ?? settings?.apiKey;
  if (!apiKey) {
    throw new PaletteError('bad-input', `Palette cluster ${options.clusterUid} is configured but no Palette API key is`, {
      clusterUid: options.clusterUid,
      hint: 'set PALETTE_API_KEY (Tenant Settings → API Keys in Palette), and PALETTE_PROJECT_UID for a project-scoped cluster',
    });
  }
  const projectUid = options.projectUid ?? settings?.projectUid;
  const client = new PaletteClient({
    baseUrl: options.baseUrl ?? settings?.baseUrl ?? env.PALETTE_API_URL ?? DEFAULT_PALETTE_API_URL,
    apiKey,
    ...(projectUid ? { projectUid } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  return { client, clusterUid: options.clusterUid };
}
