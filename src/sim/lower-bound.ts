/**
 * The shortest makespan any engine could reach for the nodes a run started, in the order it started them: each node
 * takes the time it took, a node starts as soon as a slot is free (at most `concurrency` in flight), strictly in
 * queue order, and a control-plane node waits for the previous one to finish. With equal node times this is the
 * sum, over the sequential batches, of each batch's time; with unequal times it is the (smaller) time of a
 * zero-overhead sliding window. makespan / lowerBound therefore measures exactly the idle time the engine adds.
 */
export interface ScheduledNode {
  position: number;
  durationMs: number;
  controlPlane: boolean;
}

export function lowerBoundMs(nodes: readonly ScheduledNode[], concurrency: number): number {
  const ordered = [...nodes].sort((a, b) => a.position - b.position);
  // End times of the slots, kept sorted ascending (concurrency is small; insertion is cheap).
  const slots: number[] = Array.from({ length: Math.max(1, Math.min(concurrency, nodes.length)) }, () => 0);
  let previousStart = 0;
  let controlPlaneFree = 0;
  let makespan = 0;
  for (const node of ordered) {
    const slotFree = slots.shift()!;
    const start = Math.max(slotFree, previousStart, node.controlPlane ? controlPlaneFree : 0);
    const end = start + node.durationMs;
    insertSorted(slots, end);
    if (node.controlPlane) controlPlaneFree = end;
    previousStart = start;
    makespan = Math.max(makespan, end);
  }
  return makespan;
}

function insertSorted(values: number[], value: number): void {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  values.splice(lo, 0, value);
}
