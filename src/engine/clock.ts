/**
 * Clocks. The engine never reads the time itself: it is handed a Clock, the same interface XState's
 * `createActor(machine, { clock })` accepts, so real runs use wall time and tests and the simulator use virtual time.
 */

export type TimerId = number;

export interface Clock {
  now(): number;
  /**
   * A clock that only moves forward, in now()'s units (wall time can be stepped back by NTP or an operator). Leases
   * are judged by it; absent (virtual clocks, which never go back), now() serves.
   */
  monotonicNow?(): number;
  /** Runs `fn` once, when now() has reached the time of the call plus delayMs: late if it must, never early. */
  setTimeout(fn: () => void, delayMs: number): TimerId;
  clearTimeout(id: TimerId): void;
}

interface Timer {
  id: TimerId;
  dueAt: number;
  fn: () => void;
  cancelled: boolean;
}

const NOTHING = () => {};

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
  /** Timers not yet fired nor cancelled. A cancelled timer stays in the heap until it surfaces, but as an empty shell. */
  #live = new Map<TimerId, Timer>();
  #cancelledInHeap = 0;

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, delayMs: number): TimerId {
    const id = this.#nextId++;
    const timer: Timer = { id, dueAt: this.#now + Math.max(0, delayMs), fn, cancelled: false };
    this.#live.set(id, timer);
    this.#push(timer);
    return id;
  }

  clearTimeout(id: TimerId): void {
    const timer = this.#live.get(id);
    if (!timer) return;
    this.#live.delete(id);
    // Most timers are step deadlines cancelled long before they are due: release what the callback holds (a whole
    // actor, in practice) now, not when the deadline would have passed.
    timer.cancelled = true;
    timer.fn = NOTHING;
    this.#cancelledInHeap += 1;
    if (this.#cancelledInHeap > 1024 && this.#cancelledInHeap * 2 > this.#heap.length) this.#compact();
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
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) {
      this.#pop();
      this.#cancelledInHeap -= 1;
    }
  }

  /** Rebuilds the heap without cancelled timers once they are the majority. */
  #compact(): void {
    const live = this.#heap.filter((t) => !t.cancelled);
    this.#heap = [];
    this.#cancelledInHeap = 0;
    for (const timer of live) this.#push(timer);
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
