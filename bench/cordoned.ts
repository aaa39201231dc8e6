/**
 * Cordoned time per node: today's path (cordon, then the agent refreshes, downloads and installs) against scan first
 * plus prefetch (the dry run decides before any cordon; packages are downloaded before it), in the simulator. Figures,
 * never assertions. Run alone: `node bench/cordoned.ts`; `npm run bench` prints it too.
 *
 * The fleet: 70 Ubuntu/Debian/Rocky workers with two Deployment pods each; 20 have nothing applicable (their
 * security updates are already installed), 10 get a kernel update (and reboot). Same seed every way. What prefetch
 * saves inside the maintenance: the download, and most of the package-list refresh (the prefetch Job refreshed the
 * same security-only lists; the patch's `apt-get update` then only gets "Hit").
 */
import { runScenario, type SimNodeResult } from '../src/sim/runner.ts';
import { parseScenario } from '../src/sim/scenario.ts';

function scenario(scanFirst: boolean, prefetch: boolean): string {
  return `
name: cordoned-${scanFirst ? 'scan' : 'today'}${prefetch ? '-prefetch' : ''}
seed: 77
cluster:
  nodes:
    - { name: u, os: ubuntu-22.04, count: 20 }
    - { name: d, os: debian-12, count: 10 }
    - { name: r, os: rocky-9, count: 10 }
    - { name: k, os: ubuntu-24.04, count: 10, updates: { security: [openssl, curl, linux-image, libssl3] } }
    - { name: idle, os: ubuntu-22.04, count: 20, updates: { security: [] } }
updates: { security: [openssl, curl, libssl3, openssh-server, bash, sudo], other: [vim] }
plan: { concurrency: 5, maxFailures: 0, rebootIfRequired: true, scanFirst: ${scanFirst}, prefetch: ${prefetch} }
`;
}

export interface CordonedFigures {
  label: string;
  nodes: number;
  meanCordonedSeconds: number;
  meanCordonedWithUpdates: number;
  cordonedNodes: number;
  makespanSeconds: number;
}

async function measure(label: string, scanFirst: boolean, prefetch: boolean): Promise<CordonedFigures> {
  const result = await runScenario(parseScenario(scenario(scanFirst, prefetch)));
  const run = result.runs[0]!;
  if (run.outcome !== 'succeeded') throw new Error(`${label}: run ${run.outcome}: ${run.reason}`);
  const nodes = run.nodes.filter((n) => n.result === 'patched' || n.result === 'no-updates');
  const mean = (list: SimNodeResult[]) => list.reduce((sum, n) => sum + n.cordonedSeconds, 0) / Math.max(1, list.length);
  return {
    label,
    nodes: nodes.length,
    meanCordonedSeconds: mean(nodes),
    meanCordonedWithUpdates: mean(nodes.filter((n) => n.result === 'patched')),
    cordonedNodes: nodes.filter((n) => n.cordonedSeconds > 0).length,
    makespanSeconds: run.makespanSeconds,
  };
}

export async function benchCordoned(): Promise<{ today: CordonedFigures; scan: CordonedFigures; scanPrefetch: CordonedFigures }> {
  return {
    today: await measure("today's path (no scan, no prefetch)", false, false),
    scan: await measure('scan first', true, false),
    scanPrefetch: await measure('scan first + prefetch', true, true),
  };
}

if (import.meta.main) {
  const figures = await benchCordoned();
  console.log(JSON.stringify(figures));
}
