/**
 * Clocks. The engine never reads the time itself: it is handed a Clock, the same interface XState's
 * `createActor(machine, { clock })` accepts, so real runs use wall time and tests and the simulator use virtual time.
 */

export type TimerId = number;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, delayMs: number): TimerId;
  clearTimeout(id: TimerId): void;
}

interface Timer {
  id: TimerId;
  dueAt: number;
  fn: () => void;
}

/**
 * Virtual time, API-compatible with XState's SimulatedClock (`now`, `setTimeout`, `clearTimeout`, `increment`, `set`).
 *
 * Why not SimulatedClock itself: it re-sorts every pending timer on each advance (quadratic for 10,000 nodes), and a
 * timer callback reading `now()` sees the end of the jump rather than its own due time. Here timers live in a binary
 * heap and fire one at a time with `now()` equal to their due time; ties fire in the order they were set.
 */
export class VirtualClock implements Clock {
  #now: number;
  #nextId = 1;
  #heap: Timer[] = [];
  #live = new Set<TimerId>();
  #cancelled = new Set<TimerId>();

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, delayMs: number): TimerId {
    const id = this.#nextId++;
    this.#live.add(id);
    this.#push({ id, dueAt: this.#now + Math.max(0, delayMs), fn });
    return id;
  }

  clearTimeout(id: TimerId): void {
    if (this.#live.delete(id)) this.#cancelled.add(id);
  }

  /** Number of timers still waiting to fire. */
  get pending(): number {
    return this.#live.size;
  }

  /** Due time of the earliest live timer, or undefined when nothing is scheduled. */
  nextDueAt(): number | undefined {
    this.#dropCancelledTop();
    return this.#heap[0]?.dueAt;
  }

  /** Fires, in order, every timer due at or before `targetMs`, then leaves the clock at `targetMs`. */
  set(targetMs: number): void {
    if (targetMs < this.#now) throw new Error(`VirtualClock cannot go back in time (now ${this.#now}, asked ${targetMs})`);
    for (;;) {
      this.#dropCancelledTop();
      const top = this.#heap[0];
      if (top === undefined || top.dueAt > targetMs) break;
      this.#pop();
      this.#live.delete(top.id);
      this.#now = top.dueAt;
      top.fn();
    }
    this.#now = targetMs;
  }

  increment(ms: number): void {
    this.set(this.#now + ms);
  }

  /** Jumps to the earliest pending timer and fires it (and any due at the same instant). Returns false if none. */
  advanceToNext(): boolean {
    const due = this.nextDueAt();
    if (due === undefined) return false;
    this.set(due);
    return true;
  }

  #dropCancelledTop(): void {
    while (this.#heap.length > 0 && this.#cancelled.has(this.#heap[0]!.id)) {
      this.#cancelled.delete(this.#pop().id);
    }
  }

  #before(a: Timer, b: Timer): boolean {
    return a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.id < b.id);
  }

  #push(timer: Timer): void {
    const heap = this.#heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #pop(): Timer {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && this.#before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && this.#before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
        i = smallest;
      }
    }
    return top;
  }
}
