/**
 * One simulator run for `npm run bench`, in its own process so that its peak RSS is its own:
 * `node bench/sim.ts NODES [CONCURRENCY] [FAULT_RATE]` prints one JSON line with the figures (the cluster:
 * bench/scenario.ts, 2% faults by default). The engine and the simulator alone: sim-cli.ts measures the command.
 */
import { runScenario } from '../src/sim/runner.ts';
import { parseScenario } from '../src/sim/scenario.ts';
import { benchScenarioText } from './scenario.ts';

const nodes = Number(process.argv[2] ?? 1000);
const concurrency = Number(process.argv[3] ?? 50);
const faultRate = Number(process.argv[4] ?? 0.02);
const { text, faults } = benchScenarioText(nodes, concurrency, faultRate);
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
    faults,
    wallMs: Math.round(wallMs),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    makespanSeconds: run.makespanSeconds,
    lowerBoundSeconds: run.lowerBoundSeconds,
    outcome: run.outcome,
    tally,
    invariantsHold: run.invariants.filter((i) => i.name !== 'one-node-at-a-time').every((i) => i.ok),
  }),
);
