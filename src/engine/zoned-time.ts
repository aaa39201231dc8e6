/**
 * Wall-clock arithmetic in IANA time zones, on top of Intl. Intl is pure enough for the engine: it reads only its
 * arguments and the built-in tz database, never the clock. Instants are epoch milliseconds; wall times are plain
 * fields with month 1-12, so a schedule "at 02:30 in Europe/Berlin" never passes through the host's own zone.
 */
import { z } from 'zod';

export interface LocalDate {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
}

export interface TimeOfDay {
  hour: number;
  minute: number;
}

export interface WallTime extends LocalDate, TimeOfDay {}

export interface ZonedParts extends WallTime {
  second: number;
  /** 0 = Sunday .. 6 = Saturday */
  weekday: number;
}

const DAY_MS = 86_400_000;
/** 1970-01-01, epoch day 0, was a Thursday. */
const EPOCH_WEEKDAY = 4;

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Intl.DateTimeFormat is expensive to build and immutable, so one per zone lives for the whole process. */
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** True for any zone name Intl knows: canonical IANA names, their aliases (US/Eastern) and UTC. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatterFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

export const timeZoneSchema = z
  .string()
  .refine(isValidTimeZone, { error: (issue) => `unknown time zone ${JSON.stringify(issue.input)}` });

/** The wall clock in `timeZone` at instant `ms` (to the second). */
export function toZoned(ms: number, timeZone: string): ZonedParts {
  const parts = formatterFor(timeZone).formatToParts(ms);
  const field = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((part) => part.type === type)?.value);
  const date = { year: field('year'), month: field('month'), day: field('day') };
  return { ...date, hour: field('hour'), minute: field('minute'), second: field('second'), weekday: weekdayOf(date) };
}

/** The instant at which a UTC clock would show this wall time. Overflowing fields roll over, as in Date.UTC. */
function wallAsUtc(wall: WallTime, second = 0): number {
  // setUTCFullYear, unlike Date.UTC, does not read years 0-99 as 1900-1999 (Palette's zero value is year 1).
  const date = new Date(0);
  date.setUTCFullYear(wall.year, wall.month - 1, wall.day);
  date.setUTCHours(wall.hour, wall.minute, second);
  return date.getTime();
}

/** How far the zone's wall clock is ahead of UTC at instant `ms`. */
function offsetAt(ms: number, timeZone: string): number {
  const wholeSecond = Math.floor(ms / 1000) * 1000;
  const wall = toZoned(wholeSecond, timeZone);
  return wallAsUtc(wall, wall.second) - wholeSecond;
}

/**
 * The instant at which the wall clock in `timeZone` shows `wall`. Fields may overflow (hour 0, minute 1500 is 01:00 the
 * next day), so callers never do calendar arithmetic themselves.
 *
 * DST, using Temporal's `disambiguation: 'compatible'` rule:
 * - A wall time inside a spring-forward gap is read with the offset from before the gap, which moves it FORWARD by
 *   the gap's length: 02:30 on a 02:00 -> 03:00 night is 03:30 (and 02:15 on Lord Howe's 30-minute gap is 02:45).
 *   So a window opening or a patch due at 02:30 still happens that night, instead of being skipped.
 * - A wall time that occurs twice on fall-back night resolves to the EARLIER instant, so it happens once, not twice.
 */
export function fromZoned(wall: WallTime, timeZone: string): number {
  const local = wallAsUtc(wall);
  // Assumes at most one offset change within a day either side of the wall time.
  const offsetBefore = offsetAt(local - DAY_MS, timeZone);
  const offsetAfter = offsetAt(local + DAY_MS, timeZone);
  if (offsetBefore === offsetAfter) return local - offsetBefore;
  const readings = [local - offsetBefore, local - offsetAfter].filter((ms) => ms + offsetAt(ms, timeZone) === local);
  return readings.length > 0 ? Math.min(...readings) : local - offsetBefore;
}

/**
 * fromZoned for many wall times on one date. Most days have no offset change within a day either side, and then one
 * offset serves every time of the day: two Intl calls instead of two per time (a `* * * * *` day has 1440 times).
 */
export function fromZonedOnDate(date: LocalDate, times: readonly TimeOfDay[], timeZone: string): number[] {
  const midnight = wallAsUtc({ ...date, hour: 0, minute: 0 });
  const offset = offsetAt(midnight - DAY_MS, timeZone);
  if (offsetAt(midnight + 2 * DAY_MS, timeZone) !== offset) return times.map((time) => fromZoned({ ...date, ...time }, timeZone));
  return times.map((time) => wallAsUtc({ ...date, ...time }) - offset);
}

/** Days since 1970-01-01 of a calendar date (the date itself, in no particular zone). */
export function epochDayOf(date: LocalDate): number {
  return wallAsUtc({ ...date, hour: 0, minute: 0 }) / DAY_MS;
}

export function dateOfEpochDay(epochDay: number): LocalDate {
  const date = new Date(epochDay * DAY_MS);
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

export function addLocalDays(date: LocalDate, days: number): LocalDate {
  return dateOfEpochDay(epochDayOf(date) + days);
}

/** 0 = Sunday .. 6 = Saturday */
export function weekdayOf(date: LocalDate): number {
  return (((epochDayOf(date) + EPOCH_WEEKDAY) % 7) + 7) % 7;
}

export function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

export function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** `2026-03-08T10:00:00Z`, `2026-03-08T10:00:00.123+01:00`, `2026-03-08T10:00Z`: a date, a time and an explicit offset. */
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d+)?)?(?:Z|[+-]\d{2}:[0-5]\d)$/i;

/**
 * Parses an ISO-8601 instant with an offset or Z, or returns null. Date.parse alone is too lenient: it reads
 * 2026-02-30 as March 2, and a string without an offset in the host's zone.
 */
export function parseIsoInstant(text: string): number | null {
  const match = ISO_INSTANT.exec(text);
  if (!match) return null;
  const [year, month, day] = [match[1], match[2], match[3]].map(Number) as [number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  // An offset beyond ±23:59 (+24:00) matches the pattern and Date.parse gives NaN: not a time.
  const at = Date.parse(text);
  return Number.isFinite(at) ? at : null;
}
