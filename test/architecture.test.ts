/**
 * The layer arrows of ARCHITECTURE.md hold (dependency-cruiser with .dependency-cruiser.cjs, through
 * scripts/check-layers.ts), and the check fails on a violation: scratch trees with an engine file importing the CLI,
 * a store file importing the service, an engine file importing the service's types only, the agent and the Kubernetes
 * adapter importing each other, and the service building a KubeCluster itself.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLayers } from '../scripts/check-layers.ts';
import { scratchDirs } from './helpers/scratch.ts';

const ROOT = resolve(import.meta.dirname, '..');
const scratch = scratchDirs('layers');

/** A scratch project with this project's rules; `file` writes a source into it. */
function scratchProject() {
  const root = scratch();
  copyFileSync(join(ROOT, '.dependency-cruiser.cjs'), join(root, '.dependency-cruiser.cjs'));
  const file = (path: string, text: string) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  return { root, file };
}

describe('layer arrows', () => {
  it('src follows ARCHITECTURE.md', async () => {
    expect(await checkLayers(ROOT)).toEqual([]);
  });

  it('a violation is found and named', async () => {
    const { root, file } = scratchProject();
    file('src/cli/main.ts', "export const main = (argv: string[]): number => argv.length;\n");
    file('src/service/orchestrator.ts', "import { plan } from '../engine/plan.ts';\nexport const run = () => plan;\n");
    file('src/engine/plan.ts', "import { main } from '../cli/main.ts';\nexport const plan = { cluster: 'c', main };\n");
    file('src/store/store.ts', "import { run } from '../service/orchestrator.ts';\nexport const store = run;\n");
    expect(await checkLayers(root)).toEqual(
      expect.arrayContaining([
        { rule: 'engine-is-pure', from: 'src/engine/plan.ts', to: 'src/cli/main.ts' },
        { rule: 'store-below-service', from: 'src/store/store.ts', to: 'src/service/orchestrator.ts' },
      ]),
    );
    expect(await checkLayers(root)).toHaveLength(2);
  });

  it('a type-only import crosses an arrow as much as an import of code', async () => {
    const { root, file } = scratchProject();
    file('src/service/orchestrator.ts', "export interface RunHandle { runId: string }\nexport const run = 1;\n");
    file('src/engine/plan.ts', "import type { RunHandle } from '../service/orchestrator.ts';\nexport const plan = (h: RunHandle) => h.runId;\n");
    file('src/engine/fleet.ts', "import { type RunHandle as H } from '../service/orchestrator.ts';\nexport type Fleet = H;\nexport const fleet = 1;\n");
    file('src/engine/index.ts', "export type { RunHandle } from '../service/orchestrator.ts';\nexport const index = 1;\n");
    const violations = await checkLayers(root);
    expect(violations.map((v) => v.from).sort()).toEqual(['src/engine/fleet.ts', 'src/engine/index.ts', 'src/engine/plan.ts']);
    expect(new Set(violations.map((v) => v.rule))).toEqual(new Set(['engine-is-pure']));
  });

  it('the agent imports nothing of the cluster adapters, and the two form no cycle', async () => {
    const { root, file } = scratchProject();
    // The shape this rule ended: Job manifests in src/agent using the adapter's names, the adapter using the manifests.
    file('src/agent/job.ts', "import { jobName } from '../cluster/jobs.ts';\nexport const job = () => jobName;\n");
    file('src/cluster/jobs.ts', "export const jobName = 'apply';\n");
    file('src/cluster/kube/agent-jobs.ts', "import { job } from '../../agent/job.ts';\nexport const start = job;\n");
    expect(await checkLayers(root)).toEqual([{ rule: 'agent-is-a-leaf', from: 'src/agent/job.ts', to: 'src/cluster/jobs.ts' }]);

    // Closing the loop (the adapter's names reaching back for the Jobs) is also a cycle, whichever edge is named.
    file('src/cluster/jobs.ts', "import { start } from './kube/agent-jobs.ts';\nexport const jobName = 'apply';\nexport const again = start;\n");
    const violations = await checkLayers(root);
    expect(violations).toContainEqual({ rule: 'agent-is-a-leaf', from: 'src/agent/job.ts', to: 'src/cluster/jobs.ts' });
    expect(violations.filter((v) => v.rule === 'no-cycles-through-agent-or-cluster')).not.toEqual([]);
  });

  it('the service works on a ClusterPort: building the Kubernetes adapter is the CLI\'s wiring', async () => {
    const { root, file } = scratchProject();
    file('src/cluster/kube/index.ts', "export class KubeCluster {}\n");
    file('src/cli/targets.ts', "import { KubeCluster } from '../cluster/kube/index.ts';\nexport const target = () => new KubeCluster();\n");
    expect(await checkLayers(root)).toEqual([]);
    file('src/service/targets.ts', "import { KubeCluster } from '../cluster/kube/index.ts';\nexport const target = () => new KubeCluster();\n");
    expect(await checkLayers(root)).toEqual([{ rule: 'service-not-wiring', from: 'src/service/targets.ts', to: 'src/cluster/kube/index.ts' }]);
  });
});
