/**
 * ScaledClock: wall time sped up, for the sandbox and `bot --sim`. A timer must not fire before now() has reached its
 * due time. Node's timers count whole milliseconds from a truncated start, so a bare setTimeout fires up to a
 * millisecond early by the high-resolution clock: at 120x that is 120 virtual ms before the due time. The simulator's
 * boot timer then found the boot not yet due and did nothing, and unless something else looked at the node it never
 * came back (REJOIN_TIMEOUT in the bot tests, more often on loaded machines).
 */
import { describe, expect, it } from 'vitest';
import { ScaledClock } from '../../src/sim/scaled-clock.ts';

describe('ScaledClock', () => {
  it('never fires a timer before now() reaches its due time', async () => {
    const clock = new ScaledClock(120);
    const early: Array<{ delay: number; short: number }> = [];
    const fired: Array<Promise<void>> = [];
    // Boot-like delays: 45 to 90 virtual seconds, 375 to 750 wall ms, rarely a whole number of milliseconds.
    for (let i = 0; i < 200; i++) {
      const delay = 45_000 + ((i * 7_919) % 45_000);
      const due = clock.now() + delay;
      fired.push(new Promise((resolve) => clock.setTimeout(() => {
        if (clock.now() < due) early.push({ delay, short: due - clock.now() });
        resolve();
      }, delay)));
    }
    await Promise.all(fired);
    expect(early).toEqual([]);
  });

  it('runs time at the given speed, and cancels timers', async () => {
    const clock = new ScaledClock(50, Date.parse('2026-12-01T00:00:00Z'));
    expect(clock.now() - Date.parse('2026-12-01T00:00:00Z')).toBeLessThan(50 * 20);
    let cancelled = false;
    const id = clock.setTimeout(() => (cancelled = true), 1_000);
    clock.clearTimeout(id);
    const started = performance.now();
    await new Promise<void>((resolve) => clock.setTimeout(resolve, 2_500));
    // 2.5 virtual seconds at 50x is 50 wall milliseconds (at least; a loaded machine may take longer).
    expect(performance.now() - started).toBeGreaterThanOrEqual(49);
    expect(cancelled).toBe(false);
  });

  it('refuses a speed that is not a positive number', () => {
    expect(() => new ScaledClock(0)).toThrow('speed must be a number above 0, got 0');
    expect(() => new ScaledClock(Number.NaN)).toThrow(/got NaN/);
  });
});
