/** SystemClock: wall time, with waits longer than Node's 24.8-day timer limit chained instead of firing at once. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SystemClock } from '../../src/service/system-clock.ts';

describe('SystemClock', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: Date.parse('2026-11-22T08:00:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires after the delay, and not when cleared', () => {
    const clock = new SystemClock();
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('a'), 1000);
    const b = clock.setTimeout(() => fired.push('b'), 1000);
    clock.clearTimeout(b);
    vi.advanceTimersByTime(999);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['a']);
    expect(clock.pending).toBe(0);
    expect(clock.now()).toBe(Date.parse('2026-11-22T08:00:01Z'));
  });

  it('waits the whole of a delay beyond 2^31-1 ms (a schedule 30 days away)', () => {
    const clock = new SystemClock();
    let fired = false;
    const thirtyDays = 30 * 86_400_000;
    clock.setTimeout(() => (fired = true), thirtyDays);
    vi.advanceTimersByTime(2 ** 31);
    expect(fired).toBe(false);
    vi.advanceTimersByTime(thirtyDays - 2 ** 31 - 1);
    expect(fired).toBe(false);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(true);
  });
});
