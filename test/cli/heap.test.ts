import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capHeapGrowthFor, LARGE_SIMULATION_HEAP_GROWTH, LARGE_SIMULATION_NODES } from '../../src/cli/heap.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** Runs `code` in a fresh Node (the flag is process-wide: never in the test runner's own process). */
function node(code: string) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' });
}

describe('the heap growth of a large simulation', () => {
  it('is capped from LARGE_SIMULATION_NODES nodes on, and only then', () => {
    const asked: string[] = [];
    expect(capHeapGrowthFor(LARGE_SIMULATION_NODES - 1, (flags) => asked.push(flags))).toBe(false);
    expect(asked).toEqual([]);
    expect(capHeapGrowthFor(LARGE_SIMULATION_NODES, (flags) => asked.push(flags))).toBe(true);
    expect(capHeapGrowthFor(100_000, (flags) => asked.push(flags))).toBe(true);
    expect(asked).toEqual([`--heap-growing-percent=${LARGE_SIMULATION_HEAP_GROWTH}`, `--heap-growing-percent=${LARGE_SIMULATION_HEAP_GROWTH}`]);
  });

  it('uses a flag this Node knows, set at run time (V8 says so on stderr when it does not)', () => {
    const set = node(`const { capHeapGrowthFor } = await import('./src/cli/heap.ts'); console.log(capHeapGrowthFor(${LARGE_SIMULATION_NODES}));`);
    expect(set.stderr).toBe('');
    expect(set.stdout.trim()).toBe('true');
    // The same check sees a flag V8 does not know.
    const unknown = node(`const { setFlagsFromString } = await import('node:v8'); setFlagsFromString('--heap-growing-percentage=80');`);
    expect(unknown.stderr).toMatch(/unrecognized flag/);
  });
});
