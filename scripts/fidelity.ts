/**
 * `npm run fidelity`: every fault the real-OS harness supports, on real apt/dnf and in the simulator, side by side.
 * Exit 0 when every row agrees, 1 on any disagreement, 2 when the harness cannot run on this machine (and why).
 */
import { formatRow, runFidelity } from '../src/harness/fidelity.ts';
import { harnessAvailable, prepareHarness } from '../src/harness/index.ts';

const available = harnessAvailable();
if (!available.ok) {
  console.error(`fidelity: the real-OS harness cannot run here: ${available.reason}`);
  process.exit(2);
}
const started = Date.now();
const harness = await prepareHarness((message) => console.error(`[harness] ${message}`));
try {
  const rows = await runFidelity(harness, (row) => console.log(formatRow(row)));
  const disagreements = rows.filter((r) => r.differences.length > 0).length;
  console.log(`\n${rows.length - disagreements} of ${rows.length} rows agree${disagreements ? `, ${disagreements} DISAGREE` : ''} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  process.exitCode = disagreements === 0 ? 0 : 1;
} finally {
  await harness.close();
}
