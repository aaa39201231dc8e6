/**
 * kind (Kubernetes in Docker) driven with execa: real multi-node clusters whose nodes are Debian containers with apt,
 * systemd, containerd and a kubelet, so the patch Job and the node agent run there exactly as on a VM.
 *
 *   const kind = await kindAvailable();                  // { ok: false, reason } without the binary or a Docker engine
 *   const cluster = await createKindCluster({ name: 'patchpilot-e2e' });
 *   const report = (await runAgentJob(cluster.kubeConfig, { node: 'patchpilot-e2e-worker' })).report;
 *   await cluster.delete();
 *
 * The cluster's kubeconfig goes to a file of its own, never to ~/.kube/config: a test run must not switch the
 * developer's current context.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { execa } from 'execa';
import { probeContainerRuntime } from './container-runtime.ts';

export { runAgentJob, type AgentJobRequest, type AgentJobResult } from './agent-job.ts';

export type KindAvailability = { ok: true; version: string } | { ok: false; reason: string };

export interface KindOptions {
  /** The kind binary; default `kind` on PATH. */
  kindPath?: string;
  env?: NodeJS.ProcessEnv;
}

/** Is kind installed, and is there a Docker engine for it to create nodes in? */
export async function kindAvailable(options: KindOptions = {}): Promise<KindAvailability> {
  const kind = options.kindPath ?? 'kind';
  const env = options.env ?? process.env;
  const result = await execa(kind, ['version'], { reject: false, env, extendEnv: false, timeout: 10_000 });
  if (result.failed) {
    const code = (result as { code?: string }).code;
    if (code === 'ENOENT') return { ok: false, reason: `kind is not installed (${kind}: ENOENT, not on PATH)` };
    const why = String(result.stderr || result.shortMessage || `exit ${result.exitCode}`).split('\n')[0];
    return { ok: false, reason: `\`${kind} version\` failed: ${why}` };
  }
  // `kind v0.27.0 go1.23.6 linux/amd64`
  const version = /\bv\d+\.\d+\.\d+\S*/.exec(result.stdout)?.[0] ?? result.stdout.trim();
  const runtime = await probeContainerRuntime(env);
  if (!runtime.ok) return { ok: false, reason: `kind ${version} is installed, but ${runtime.reason}` };
  return { ok: true, version };
}

export interface KindClusterRequest extends KindOptions {
  name: string;
  /** The node image (`kindest/node:vX.Y.Z`); default: the one this kind release was built for. */
  image?: string;
  /** Worker nodes besides the control plane; default 1 (the agent runs on a worker, as it would in production). */
  workers?: number;
  /** How long `kind create cluster --wait` waits for the control plane; default 180. */
  waitSeconds?: number;
  /** Streams kind's progress to this process's stderr; default true (a cluster takes a minute or two to come up). */
  verbose?: boolean;
}

export interface KindCluster {
  name: string;
  /** The kubeconfig text (server on the host's loopback). */
  kubeconfig: string;
  kubeConfig: KubeConfig;
  /** Deletes the cluster; safe to call twice. */
  delete(): Promise<void>;
  /** The kind binary and environment the cluster was made with (loadImage and nodeNames use them too). */
  readonly kind: { path: string; env: NodeJS.ProcessEnv };
}

function clusterConfig(workers: number): string {
  const nodes = ['- role: control-plane', ...Array.from({ length: workers }, () => '- role: worker')];
  return ['kind: Cluster', 'apiVersion: kind.x-k8s.io/v1alpha4', 'nodes:', ...nodes, ''].join('\n');
}

export async function createKindCluster(request: KindClusterRequest): Promise<KindCluster> {
  const kind = request.kindPath ?? 'kind';
  const env = request.env ?? process.env;
  const dir = mkdtempSync(join(tmpdir(), `patchpilot-kind-${request.name}-`));
  const configPath = join(dir, 'cluster.yaml');
  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(configPath, clusterConfig(request.workers ?? 1));
  const waitSeconds = request.waitSeconds ?? 180;
  const args = ['create', 'cluster', '--name', request.name, '--config', configPath, '--kubeconfig', kubeconfigPath, '--wait', `${waitSeconds}s`];
  if (request.image) args.push('--image', request.image);
  const stdio = request.verbose === false ? 'pipe' : (['ignore', 'inherit', 'inherit'] as const);

  let deleted = false;
  const remove = async () => {
    if (deleted) return;
    deleted = true;
    // reject: false: a cluster that was never created deletes as "no nodes found", which is the outcome we want.
    await execa(kind, ['delete', 'cluster', '--name', request.name, '--kubeconfig', kubeconfigPath], { reject: false, env, extendEnv: false, stdio });
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    // Pulling a node image the first time takes minutes; the --wait applies after the nodes exist.
    await execa(kind, args, { env, extendEnv: false, stdio, timeout: (waitSeconds + 600) * 1000 });
    const kubeconfig = (await execa(kind, ['get', 'kubeconfig', '--name', request.name], { env, extendEnv: false })).stdout;
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(kubeconfig);
    return { name: request.name, kubeconfig, kubeConfig, delete: remove, kind: { path: kind, env } };
  } catch (e) {
    // A half-made cluster (nodes created, control plane not ready) would block the next run of the same name.
    await remove();
    throw e;
  }
}

/** Copies an image from the host's Docker engine into every node, so Jobs use it without pulling. */
export async function loadImage(cluster: KindCluster, image: string): Promise<void> {
  await execa(cluster.kind.path, ['load', 'docker-image', image, '--name', cluster.name], { env: cluster.kind.env, extendEnv: false });
}

/** The cluster's node names (kind names the node containers after the nodes). */
export async function nodeNames(cluster: KindCluster): Promise<string[]> {
  const { stdout } = await execa(cluster.kind.path, ['get', 'nodes', '--name', cluster.name], { env: cluster.kind.env, extendEnv: false });
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .sort();
}
