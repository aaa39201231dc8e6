/**
 * Durations as scenario files write them: `90s`, `30m`, `2h`, `1d`, `1h30m`, or a bare number of seconds.
 * Virtual time is in milliseconds everywhere else.
 */
import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;

/** Milliseconds, or a message saying what is wrong. */
export function parseDuration(value: string | number): number | string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return 'must be a finite number of seconds';
    if (value < 0) return 'must not be negative';
    return bounded(Math.round(value * 1000));
  }
  const text = value.trim();
  if (text.startsWith('-')) return 'must not be negative';
  if (!WHOLE.test(text)) return `"${value}" is not a duration (write e.g. 90s, 30m, 2h, 1h30m)`;
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(PART)) ms += Number(amount) * UNIT_MS[unit!]!;
  return bounded(Math.round(ms));
}

/** Beyond 100 years a duration is a typo: it would only make a run wait out the simulator's horizon, or overflow. */
const MAX_MS = 100 * 365 * UNIT_MS.d!;
function bounded(ms: number): number | string {
  return ms > MAX_MS ? 'is too long (at most 100 years)' : ms;
}

/** A zod schema for a duration field; the output is milliseconds. */
export const durationMs = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const parsed = parseDuration(value);
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: parsed });
    return z.NEVER;
  }
  return parsed;
});

/** Whole seconds given as a number (faults' parameters): never negative. */
export const secondsParam = z.number().nonnegative('must not be negative');

/** `5400` -> `1h30m`; `42` -> `42s`. For messages and reports. */
export function formatSeconds(totalSeconds: number): string {
  const s = Math.round(totalSeconds);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', rest ? `${rest}s` : ''].join('') || '0s';
}
