/**
 * The `sim` command on a large cluster, as a user runs it: `node bench/sim-cli.ts NODES` writes the bench scenario
 * (bench/scenario.ts, concurrency 50, 2% faults) to a file, runs `patchpilot sim FILE --json --record -` in this
 * process with standard output where the caller sent it (a file: the JSON is streamed there), and prints one JSON line
 * with its figures on standard error. Its peak RSS is the command's: the scenario, the run and the JSON together.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';
import { benchScenarioText } from './scenario.ts';

const nodes = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'patchpilot-bench-cli-'));
try {
  const file = join(dir, 'bench.json');
  writeFileSync(file, benchScenarioText(nodes, 50, 0.02).text);
  const started = performance.now();
  const code = await main([process.execPath, 'patchpilot', 'sim', file, '--json', '--record', '-']);
  const wallMs = Math.round(performance.now() - started);
  process.stderr.write(`${JSON.stringify({ nodes, exitCode: code, wallMs, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
