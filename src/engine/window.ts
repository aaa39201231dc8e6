/**
 * Maintenance windows: the days and wall-clock hours in which patchpilot may start work on a node.
 *
 * Everything is wall clock in the window's time zone. On DST nights a 01:00-05:00 window is 3 hours of real time in
 * spring and 5 in autumn; that is what an operator who wrote "01:00-05:00" means. Wall times are turned into
 * instants with fromZoned: an opening inside the spring-forward gap moves forward by the gap, and a time that occurs
 * twice on fall-back night means its first occurrence (see zoned-time.ts).
 *
 * A window whose `end` is not after its `start` (22:00-04:00) crosses midnight, and `days` names the day on which it
 * STARTS: `days: [fri]` with 22:00-04:00 is open from Friday 22:00 to Saturday 04:00.
 *
 * Windows that touch (mon and tue, 00:00-24:00) form one window, Monday 00:00 to Wednesday 00:00: callers are told
 * about real openings and closings only, never a close and reopen at the same instant.
 */
import { z } from 'zod';
import { addLocalDays, fromZoned, timeZoneSchema, toZoned, weekdayOf, type LocalDate } from './zoned-time.ts';

/** Indexed by weekday number, 0 = Sunday, as toZoned reports it. */
export const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Day = (typeof DAYS)[number];

const MINUTES_PER_DAY = 24 * 60;
const START_TIME = /^([01]\d|2[0-3]):[0-5]\d$/;
const END_TIME = /^(([01]\d|2[0-3]):[0-5]\d|24:00)$/;

function isDay(value: string): value is Day {
  return (DAYS as readonly string[]).includes(value);
}

function clockTime(pattern: RegExp, range: string) {
  return z.string().regex(pattern, { error: (issue) => `expected HH:MM (${range}), got ${JSON.stringify(issue.input)}` });
}

export const maintenanceWindowSchema = z
  .strictObject({
    days: z
      .array(z.string())
      .min(1, 'must name at least one day (omit days for every day)')
      .superRefine((days, ctx) => {
        for (const day of days.filter((value) => !isDay(value))) {
          ctx.addIssue({ code: 'custom', message: `unknown day ${JSON.stringify(day)} (expected ${DAYS.join(', ')})`, input: day });
        }
      })
      .transform((days) => [...new Set(days.filter(isDay))])
      .default(() => [...DAYS]),
    start: clockTime(START_TIME, '00:00-23:59'),
    end: clockTime(END_TIME, '00:00-24:00'),
    timeZone: timeZoneSchema.default('UTC'),
  })
  .superRefine((window, ctx) => {
    if (window.start === window.end) {
      ctx.addIssue({
        code: 'custom',
        path: ['end'],
        message: `must differ from start (both are ${window.start}); for a whole day use start 00:00 and end 24:00`,
      });
    } else if (window.days.length === DAYS.length && window.start === '00:00' && window.end === '24:00') {
      ctx.addIssue({ code: 'custom', message: 'is always open (every day, 00:00-24:00); omit the window instead' });
    }
  });

export type MaintenanceWindowInput = z.input<typeof maintenanceWindowSchema>;
export type MaintenanceWindow = z.output<typeof maintenanceWindowSchema>;

/** A stretch of real time, opening instant included, closing instant excluded. */
export interface Span {
  opensAt: number;
  closesAt: number;
}

interface WindowRule {
  weekdays: ReadonlySet<number>;
  startMinute: number;
  /** Minutes after the start day's midnight; beyond 1440 for a window that crosses midnight. */
  endMinute: number;
  timeZone: string;
}

function minuteOfDay(time: string): number {
  const [hours = 0, minutes = 0] = time.split(':').map(Number);
  return hours * 60 + minutes;
}

function ruleOf(window: MaintenanceWindow): WindowRule {
  const startMinute = minuteOfDay(window.start);
  const end = minuteOfDay(window.end);
  return {
    weekdays: new Set(window.days.map((day) => DAYS.indexOf(day))),
    startMinute,
    endMinute: end > startMinute ? end : end + MINUTES_PER_DAY,
    timeZone: window.timeZone,
  };
}

/** The window that starts on `date`, or null if `date` is not one of its days. */
function spanStartingOn(rule: WindowRule, date: LocalDate): Span | null {
  if (!rule.weekdays.has(weekdayOf(date))) return null;
  const opensAt = fromZoned({ ...date, hour: 0, minute: rule.startMinute }, rule.timeZone);
  const closesAt = fromZoned({ ...date, hour: 0, minute: rule.endMinute }, rule.timeZone);
  // Both ends move forward if they fall in a spring-forward gap, so 02:10-02:50 becomes 03:10-03:50. But 02:30-03:15
  // would open at 03:30, after it closes: such a window has no time that night.
  return closesAt > opensAt ? { opensAt, closesAt } : null;
}

/**
 * A validated window is never open all week (the schema refuses it), so at most six days join; the bound keeps an
 * unvalidated always-open window from looping forever.
 */
const MAX_JOINED_DAYS = 7;

/** Extends `span`, which starts on `date`, over the windows on neighbouring days that touch or overlap it. */
function joinNeighbours(rule: WindowRule, date: LocalDate, span: Span): Span {
  let { opensAt, closesAt } = span;
  for (let back = 1; back <= MAX_JOINED_DAYS; back++) {
    const previous = spanStartingOn(rule, addLocalDays(date, -back));
    if (!previous || previous.closesAt < opensAt) break;
    opensAt = previous.opensAt;
  }
  for (let ahead = 1; ahead <= MAX_JOINED_DAYS; ahead++) {
    const next = spanStartingOn(rule, addLocalDays(date, ahead));
    if (!next || next.opensAt > closesAt) break;
    closesAt = Math.max(closesAt, next.closesAt);
  }
  return { opensAt, closesAt };
}

/** The window that `at` is in (opensAt <= at < closesAt), or null when the window is closed at `at`. */
export function windowContaining(window: MaintenanceWindow, at: number): Span | null {
  const rule = ruleOf(window);
  const today = toZoned(at, rule.timeZone);
  // Yesterday's window may cross midnight into today.
  for (const days of [-1, 0]) {
    const date = addLocalDays(today, days);
    const span = spanStartingOn(rule, date);
    if (span && span.opensAt <= at && at < span.closesAt) return joinNeighbours(rule, date, span);
  }
  return null;
}

export function isWithinWindow(window: MaintenanceWindow, at: number): boolean {
  return windowContaining(window, at) !== null;
}

/** A window opens at least weekly; a second week covers a night whose window spring-forward empties, plus the day before. */
const OPENING_SEARCH_DAYS = 15;

/**
 * The next instant >= `after` at which the window opens. If `after` is inside a window, that window's own opening is
 * behind us: the answer is the NEXT opening, after the current window closes.
 */
export function nextWindowOpening(window: MaintenanceWindow, after: number): number {
  const rule = ruleOf(window);
  const from = windowContaining(window, after)?.closesAt ?? after;
  // From the day before: an opening in a gap that ends at midnight moves onto the next date (Nuuk springs forward from
  // 23:00 to 00:00, so a 23:30 opening happens at 00:30).
  const firstDate = addLocalDays(toZoned(from, rule.timeZone), -1);
  for (let days = 0; days < OPENING_SEARCH_DAYS; days++) {
    const span = spanStartingOn(rule, addLocalDays(firstDate, days));
    if (span && span.opensAt >= from) return span.opensAt;
  }
  throw new Error(`maintenance window ${JSON.stringify(window)} never opens`);
}

/** The next time the window opens or closes: while open, its close; while closed, its next opening. */
export function nextWindowChange(window: MaintenanceWindow, at: number): { open: boolean; at: number } {
  const current = windowContaining(window, at);
  return current ? { open: false, at: current.closesAt } : { open: true, at: nextWindowOpening(window, at) };
}
