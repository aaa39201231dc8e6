/**
 * The node agent against real package managers: each scenario starts a fresh container of a node image
 * (fixtures/images/<os>/Dockerfile: apt/dpkg or dnf/rpm, signed local repositories, kubelet/kubeadm/kubectl held, no
 * systemd, no network) and runs the agent in it as root with exactly the arguments a patch Job gives it (agentArgs).
 *
 * Needs a container runtime (Docker, or Podman's Docker API). Without one the suite is skipped, with the reason printed,
 * before testcontainers is even imported: the check is one connection attempt to a socket.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenericContainer, StartedTestContainer } from 'testcontainers';
import { agentArgs, AGENT_MOUNT_PATH, AGENT_SCRIPT_KEY } from '../../src/cluster/kube/job-manifest.ts';
import { DEFAULT_HOLD_PACKAGES } from '../../src/engine/plan.ts';
import { parseAgentReport, type AgentReport } from '../../src/engine/report.ts';
import { probeContainerRuntime } from '../../src/harness/container-runtime.ts';

const runtime = await probeContainerRuntime();
if (!runtime.ok) console.warn(`[test/e2e/containers] skipped: ${runtime.reason}`);

const IMAGES_DIR = fileURLToPath(new URL('../../fixtures/images/', import.meta.url));
/** Where the Job mounts the script; the same path here, so logs read the same. */
const AGENT_PATH = `${AGENT_MOUNT_PATH}/${AGENT_SCRIPT_KEY}`;
const BUILD_TIMEOUT = 15 * 60_000;
const SCENARIO_TIMEOUT = 5 * 60_000;

interface NodeImage {
  os: 'ubuntu-22.04' | 'rocky-9';
  /** Prints the installed version of a package. */
  versionOf(pkg: string): string[];
  /** Lifts the image's own kubelet/kubeadm/kubectl holds, so that only the agent's hold protects them. */
  unhold: string[];
  /** The kernel stand-in, whose update asks for a reboot. */
  kernelPackage: string;
  removeKernel: string[];
  /** Files the agent may move aside while it works and must put back. */
  kubernetesSources: string;
}

const NODE_IMAGES: NodeImage[] = [
  {
    os: 'ubuntu-22.04',
    versionOf: (pkg) => ['dpkg-query', '-W', '-f=${Version}', pkg],
    unhold: ['apt-mark', 'unhold', 'kubelet', 'kubeadm', 'kubectl'],
    kernelPackage: 'linux-image-sim',
    removeKernel: ['dpkg', '--purge', 'linux-image-sim'],
    kubernetesSources: '/etc/apt/sources.list.d/kubernetes.list',
  },
  {
    os: 'rocky-9',
    versionOf: (pkg) => ['rpm', '-q', '--qf', '%{VERSION}', pkg],
    unhold: ['dnf', 'versionlock', 'clear'],
    kernelPackage: 'kernel',
    removeKernel: ['rpm', '-e', 'kernel'],
    kubernetesSources: '/etc/yum.repos.d/kubernetes.repo',
  },
];

/** What a patch Job passes for the default plan (security only, the default holds). */
const PATCH_ARGS = agentArgs({
  lockTimeoutSeconds: 60,
  holdPackages: [...DEFAULT_HOLD_PACKAGES],
  securityOnly: true,
  downloadOnly: false,
});

async function loadAgentScript(): Promise<string> {
  // Loaded through a computed specifier so that this file does not depend on src/agent/index.ts at type-check time.
  const specifier = new URL('../../src/agent/index.ts', import.meta.url).href;
  const agent = (await import(specifier)) as { agentScript?: () => string };
  if (typeof agent.agentScript !== 'function') throw new Error('src/agent/index.ts does not export agentScript()');
  return agent.agentScript();
}

describe.skipIf(!runtime.ok).each(NODE_IMAGES)('the agent on $os', (node) => {
  let image: GenericContainer;
  let script: string;
  const started: StartedTestContainer[] = [];

  beforeAll(async () => {
    script = await loadAgentScript();
    const { GenericContainer: Container } = await import('testcontainers');
    // Kept after the run (deleteOnExit: false) so the next run reuses the layers.
    const built = await Container.fromDockerfile(IMAGES_DIR, `${node.os}/Dockerfile`)
      .withBuildkit()
      .build(`patchpilot-test-node:${node.os}`, { deleteOnExit: false });
    image = built;
  }, BUILD_TIMEOUT);

  afterAll(async () => {
    await Promise.allSettled(started.map((c) => c.stop()));
  });

  async function exec(container: StartedTestContainer, command: string[]): Promise<string> {
    const result = await container.exec(command);
    if (result.exitCode !== 0) throw new Error(`${command.join(' ')} exited ${result.exitCode}: ${result.output}`);
    return result.stdout.trim();
  }

  /** A fresh node, prepared, then one agent run; returns the report and the node for inspection. */
  async function patch(prepare: string[][], args = PATCH_ARGS): Promise<{ report: AgentReport; container: StartedTestContainer }> {
    const container = await image
      .withCommand(['sleep', 'infinity'])
      .withCopyContentToContainer([{ content: script, target: AGENT_PATH, mode: 0o555 }])
      .start();
    started.push(container);
    for (const command of prepare) await exec(container, command);
    // As on a node: root, stdin closed, the script run by path with the Job's arguments.
    const run = await container.exec(['bash', '-c', 'exec bash "$0" "$@" </dev/null', AGENT_PATH, ...args]);
    let report: AgentReport;
    try {
      report = parseAgentReport(run.stdout);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- agent output (exit ${run.exitCode}) ---\n${run.output}`);
    }
    return { report, container };
  }

  const names = (report: AgentReport) => report.upgraded.map((u) => u.name);

  it(
    'applies the security update only, and needs no reboot when no kernel changed',
    async () => {
      const { report, container } = await patch([node.removeKernel]);
      expect(report).toMatchObject({ result: 'patched', error: null, rebootRequired: false });
      expect(names(report)).toContain('libfoo');
      expect(names(report)).not.toContain('bar');
      expect(await exec(container, node.versionOf('libfoo'))).toMatch(/^1\.1/);
      expect(await exec(container, node.versionOf('bar'))).toMatch(/^1\.0/);
      expect(await exec(container, node.versionOf('kubelet'))).toMatch(/^1\.30\.0/);
      await exec(container, ['test', '-f', node.kubernetesSources]);
    },
    SCENARIO_TIMEOUT,
  );

  it(
    'holds kubelet although a security update offers a new one',
    async () => {
      const { report, container } = await patch([node.unhold]);
      expect(report.result).toBe('patched');
      expect(report.held).toEqual(expect.arrayContaining(['kubelet', 'kubeadm', 'kubectl']));
      expect(names(report)).not.toContain('kubelet');
      expect(await exec(container, node.versionOf('kubelet'))).toMatch(/^1\.30\.0/);
      await exec(container, ['test', '-f', node.kubernetesSources]);
    },
    SCENARIO_TIMEOUT,
  );

  it(
    'reports that a reboot is required after a kernel update, and which package asked for it',
    async () => {
      const { report } = await patch([]);
      expect(report).toMatchObject({ result: 'patched', rebootRequired: true });
      expect(report.rebootPackages).toContain(node.kernelPackage);
    },
    SCENARIO_TIMEOUT,
  );
});
