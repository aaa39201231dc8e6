/**
 * How far V8 may grow its heap in a large simulation. On a machine with memory to spare, V8 lets the heap grow to up
 * to four times what survived the last full collection before it collects again. A 100,000-node simulation keeps
 * about 300 MB alive, so it peaked above 2 GB, most of it garbage (issue 13: at most 1.5 GB). From
 * LARGE_SIMULATION_NODES nodes on, the simulator asks V8 for at most LARGE_SIMULATION_HEAP_GROWTH percent growth
 * instead. V8 reads this flag at each collection, so setting it once the process runs takes effect (checked in
 * test/cli/heap.test.ts); it costs some time in more frequent collections, measured by `BENCH_LARGE=1 npm run bench`.
 * The flag is process-wide, and the process is the simulator's for the rest of the command.
 */
import { setFlagsFromString } from 'node:v8';

export const LARGE_SIMULATION_NODES = 20_000;
export const LARGE_SIMULATION_HEAP_GROWTH = 80;

/** Caps the heap's growth for a simulation of `nodes` nodes when it is large; says whether it did. */
export function capHeapGrowthFor(nodes: number, setFlags: (flags: string) => void = setFlagsFromString): boolean {
  if (nodes < LARGE_SIMULATION_NODES) return false;
  setFlags(`--heap-growing-percent=${LARGE_SIMULATION_HEAP_GROWTH}`);
  return true;
}
