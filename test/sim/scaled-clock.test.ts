/**
 * ScaledClock: wall time sped up, for the sandbox and `bot --sim`. A timer must not fire before now() has reached its
 * due time. Node's timers count whole milliseconds from a truncated start, so a bare setTimeout fires up to a
 * millisecond early by the high-resolution clock: at 120x that is 120 virtual ms before the due time. The simulator's
 * boot timer then found the boot not yet due and did nothing, and unless something else looked at the node it never
 * came back (REJOIN_TIMEOUT in the bot tests, more often on loaded machines).
 */
import { describe, expect, it, vi } from 'vitest';
import { MAX_SPEED, ScaledClock, speedProblem } from '../../src/sim/scaled-clock.ts';

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
    const start = Date.parse('2026-12-01T00:00:00Z');
    const wallBefore = performance.now();
    const clock = new ScaledClock(50, start);
    const elapsed = clock.now() - start;
    // However long the machine took between the two readings, the clock moved at most 50 times as far.
    expect(elapsed).toBeGreaterThanOrEqual(0);
    expect(elapsed).toBeLessThanOrEqual((performance.now() - wallBefore) * 50 + 1);
    let cancelled = false;
    const id = clock.setTimeout(() => (cancelled = true), 1_000);
    clock.clearTimeout(id);
    const started = performance.now();
    await new Promise<void>((resolve) => clock.setTimeout(resolve, 2_500));
    // 2.5 virtual seconds at 50x is 50 wall milliseconds (at least; a loaded machine may take longer).
    expect(performance.now() - started).toBeGreaterThanOrEqual(49);
    expect(cancelled).toBe(false);
  });

  it('waits the whole of a delay beyond Node\'s 24.8-day timer limit at speed 1 (a schedule a month away)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    try {
      const clock = new ScaledClock(1);
      let fired = false;
      const thirtyDays = 30 * 86_400_000;
      clock.setTimeout(() => (fired = true), thirtyDays);
      vi.advanceTimersByTime(2 ** 31);
      expect(fired).toBe(false);
      expect(clock.pending).toBe(1);
      vi.advanceTimersByTime(thirtyDays - 2 ** 31 + 1);
      expect(fired).toBe(true);
      expect(clock.pending).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a speed that is not a positive number, or beyond MAX_SPEED (at 1e11 the clock left the range of a Date)', () => {
    expect(() => new ScaledClock(0)).toThrow('speed must be a number above 0 and at most 1000, got 0');
    expect(() => new ScaledClock(Number.NaN)).toThrow(/got NaN/);
    expect(() => new ScaledClock(99999999999)).toThrow('speed must be a number above 0 and at most 1000, got 99999999999');
    expect(() => new ScaledClock(MAX_SPEED + 0.5)).toThrow(RangeError);
    expect(new ScaledClock(MAX_SPEED).speed).toBe(1000);
    expect(speedProblem(MAX_SPEED)).toBeUndefined();
    expect(speedProblem(Number.POSITIVE_INFINITY)).toMatch(/^expected a number above 0 and at most 1000 /);
  });

  it('skips ahead: timers due within the jump fire at once in due order, never early; later ones keep their time', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    try {
      const clock = new ScaledClock(10, 0);
      const fired: Array<{ name: string; at: number; due: number }> = [];
      const at = (name: string, due: number) => clock.setTimeout(() => fired.push({ name, at: clock.now(), due }), due - clock.now());
      at('ten-minutes', 600_000);
      at('one-minute', 60_000);
      at('an-hour', 3_600_000);
      clock.skip(700_000);
      expect(clock.now()).toBe(700_000);
      vi.advanceTimersByTime(0);
      expect(fired.map((f) => f.name)).toEqual(['one-minute', 'ten-minutes']);
      expect(fired.every((f) => f.at >= f.due)).toBe(true);
      expect(clock.pending).toBe(1);
      // The hour's timer still waits for the rest: 2,900 virtual seconds, 290 wall seconds at 10x.
      vi.advanceTimersByTime(289_000);
      expect(fired).toHaveLength(2);
      vi.advanceTimersByTime(1_000);
      expect(fired.map((f) => f.name)).toEqual(['one-minute', 'ten-minutes', 'an-hour']);
      expect(() => clock.skip(-1)).toThrow(RangeError);
    } finally {
      vi.useRealTimers();
    }
  });
});
