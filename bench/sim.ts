/**
 * One simulator run for `npm run bench`, in its own process so that its peak RSS is its own:
 * `node bench/sim.ts NODES [CONCURRENCY] [FAULT_RATE]` prints one JSON line with the figures.
 * The cluster: 3 control-plane nodes and NODES-3 workers over three zones and all five Linux OSes; a random 2% of the
 * nodes get one fault (lock contention, a kernel that needs a reboot, a slow or failed rejoin, a full disk, a PDB
 * that blocks the drain, an agent crash, an unreachable repository, API errors).
 */
import { Random } from '../src/sim/random.ts';
import { runScenario } from '../src/sim/runner.ts';
import { parseScenario } from '../src/sim/scenario.ts';

const nodes = Number(process.argv[2] ?? 1000);
const concurrency = Number(process.argv[3] ?? 50);
const faultRate = Number(process.argv[4] ?? 0.02);
const KINDS = [
  { kind: 'apt-lock', holdSeconds: 120 },
  { kind: 'reboot-required' },
  { kind: 'rejoin-slow', delaySeconds: 300 },
  { kind: 'rejoin-fails' },
  { kind: 'disk-full' },
  { kind: 'pdb-blocks-drain', forSeconds: 90 },
  { kind: 'agent-crash' },
  { kind: 'repo-unreachable' },
  { kind: 'api-errors', rate: 0.2 },
];
const OSES = ['ubuntu-22.04', 'ubuntu-24.04', 'debian-12', 'rocky-9', 'rhel-9'];
const random = new Random('bench');
const workers = nodes - 3;
const perOs = Math.ceil(workers / OSES.length);
const faults: object[] = [];
for (let i = 0; i < workers; i++) {
  if (!random.chance(faultRate)) continue;
  const os = OSES[Math.floor(i / perOs)]!;
  faults.push({ node: `${os.replace('.', '')}-${(i % perOs) + 1}`, ...random.pick(KINDS) });
}
const text = JSON.stringify({
  name: 'bench',
  seed: 1,
  cluster: {
    nodes: [
      { name: 'cp', os: 'ubuntu-22.04', role: 'control-plane', count: 3 },
      ...OSES.map((os, i) => ({ name: os.replace('.', ''), os, count: Math.max(1, Math.min(perOs, workers - i * perOs)) })),
    ],
  },
  updates: { security: ['openssl', 'curl', 'systemd'], other: ['vim'] },
  plan: { concurrency, maxFailures: nodes, retry: { attempts: 5, backoffSeconds: 5 } },
  faults,
});
const scenario = parseScenario(text, 'bench');
const started = performance.now();
const result = await runScenario(scenario);
const wallMs = performance.now() - started;
const run = result.runs[0]!;
const tally: Record<string, number> = {};
for (const node of run.nodes) tally[node.result] = (tally[node.result] ?? 0) + 1;
console.log(
  JSON.stringify({
    nodes: scenario.nodes.length,
    concurrency,
    faults: faults.length,
    wallMs: Math.round(wallMs),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    makespanSeconds: run.makespanSeconds,
    lowerBoundSeconds: run.lowerBoundSeconds,
    outcome: run.outcome,
    tally,
    invariantsHold: run.invariants.filter((i) => i.name !== 'one-node-at-a-time').every((i) => i.ok),
  }),
);
