/**
 * Patch schedules as data, and their fire times as pure functions of an instant. The kinds are Palette's: presets
 * (weekly, every two weeks, monthly, every two months), a custom yearly date and time, a cron expression (Palette's
 * `schedule` field), patch on boot, and on-demand (Palette's `onDemandPatchAfter`).
 *
 * Fire times are wall clock in the schedule's zone, with one DST rule for every kind (fromZoned's): a wall time that
 * does not exist that day fires at the instant it is moved forward to (02:30 in a 02:00 -> 03:00 gap fires at 03:30),
 * and a wall time that occurs twice fires once, at the earlier instant. croner's nextRun does neither: it fires a
 * gap time at the end of the gap (03:00), skips gap times for jobs with a wildcard or list in the minute or hour, and
 * fires those twice on fall-back night. So croner only parses and validates expressions, and fire times are found by
 * walking wall times day by day.
 */
import { CronPattern } from 'croner';
import { z } from 'zod';
import {
  dateOfEpochDay,
  daysInMonth,
  epochDayOf,
  fromZonedOnDate,
  parseIsoInstant,
  timeZoneSchema,
  toZoned,
  weekdayOf,
  type LocalDate,
  type TimeOfDay,
} from './zoned-time.ts';

export class ScheduleError extends Error {
  override readonly name = 'ScheduleError';
}

export const PRESETS = ['weekly', 'biweekly', 'monthly', 'bimonthly'] as const;
export type Preset = (typeof PRESETS)[number];

const MONTH_NAMES = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
] as const;

/** Any leap year: the custom schema accepts a day if it exists in some year, so February 29 is allowed. */
const LEAP_YEAR = 2000;
const SUNDAY = 0;
/** Epoch day of Sunday 1970-01-04, the first Sunday after the epoch: biweekly fires on Sundays a multiple of 14 days from it. */
const BIWEEKLY_ANCHOR_DAY = 3;
/** Palette schedules an On-Demand Update about ten minutes after the click. */
export const ON_DEMAND_DELAY_MS = 10 * 60_000;
const ISO_EXAMPLE = '2026-03-08T10:00:00Z';

const defaultedTimeZone = timeZoneSchema.default('UTC');

function wholeNumber(min: number, max: number) {
  return z.number().refine((value) => Number.isInteger(value) && value >= min && value <= max, {
    error: (issue) => `expected a whole number from ${min} to ${max}, got ${JSON.stringify(issue.input)}`,
  });
}

const presetScheduleSchema = z.strictObject({
  kind: z.literal('preset'),
  preset: z.enum(PRESETS, { error: (issue) => `expected one of ${PRESETS.join(', ')}, got ${JSON.stringify(issue.input)}` }),
  timeZone: defaultedTimeZone,
});

const customScheduleSchema = z
  .strictObject({
    kind: z.literal('custom'),
    month: wholeNumber(1, 12),
    day: wholeNumber(1, 31),
    hour: wholeNumber(0, 23),
    minute: wholeNumber(0, 59),
    timeZone: defaultedTimeZone,
  })
  .superRefine(({ month, day }, ctx) => {
    const longest = daysInMonth(LEAP_YEAR, month);
    if (day > longest) {
      ctx.addIssue({ code: 'custom', path: ['day'], message: `${MONTH_NAMES[month - 1]} has at most ${longest} days, got ${day}` });
    }
  });

const cronScheduleSchema = z.strictObject({
  kind: z.literal('cron'),
  expression: z.string().superRefine((expression, ctx) => {
    try {
      parseCron(expression);
    } catch (error) {
      if (!(error instanceof ScheduleError)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
    }
  }),
  timeZone: defaultedTimeZone,
});

const onBootScheduleSchema = z.strictObject({ kind: z.literal('on-boot') });

const onDemandScheduleSchema = z.strictObject({
  kind: z.literal('on-demand'),
  notBefore: z
    .string()
    .refine((text) => parseIsoInstant(text) !== null, {
      error: (issue) => `expected an ISO-8601 time with an offset or Z (e.g. ${ISO_EXAMPLE}), got ${JSON.stringify(issue.input)}`,
    })
    .optional(),
});

export const scheduleSchema = z.discriminatedUnion('kind', [
  presetScheduleSchema,
  customScheduleSchema,
  cronScheduleSchema,
  onBootScheduleSchema,
  onDemandScheduleSchema,
]);

export type ScheduleInput = z.input<typeof scheduleSchema>;
export type Schedule = z.output<typeof scheduleSchema>;
type CalendarSchedule = Extract<Schedule, { kind: 'preset' | 'custom' | 'cron' }>;

interface CronFields {
  minutes: readonly number[];
  hours: readonly number[];
  daysOfMonth: ReadonlySet<number>;
  months: ReadonlySet<number>;
  weekdays: ReadonlySet<number>;
  /** Both day fields are restricted, so a day matching either fires (as in robfig/cron and Vixie cron). */
  eitherDay: boolean;
}

/** Indexes of the entries croner marked as selected, plus `first` (1 for days of the month and months). */
function selected(flags: readonly number[], first = 0): number[] {
  return flags.flatMap((flag, index) => (flag ? [index + first] : []));
}

const MONTH_AND_DAY_NAMES = /\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat)\b/gi;

/** croner also reads L, W, # and +, which Palette's parser (robfig/cron ParseStandard) rejects. */
function usesCronerExtensions(expression: string): boolean {
  const trimmed = expression.trim();
  return !trimmed.startsWith('@') && /[^\d*?,/\-\s]/.test(trimmed.replace(MONTH_AND_DAY_NAMES, ''));
}

/** Parses a standard 5-field expression (or @weekly and friends); throws ScheduleError naming the expression. */
function parseCron(expression: string): CronFields {
  const quoted = JSON.stringify(expression);
  let pattern: CronPattern;
  try {
    pattern = new CronPattern(expression, undefined, { mode: '5-part' });
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).replace(/^CronPattern: /, '');
    throw new ScheduleError(`invalid cron expression ${quoted}: ${reason}`);
  }
  if (usesCronerExtensions(expression)) {
    throw new ScheduleError(`cron expression ${quoted} uses L, W, # or +, which standard 5-field cron (and Palette) does not support`);
  }
  const fields: CronFields = {
    minutes: selected(pattern.minute),
    hours: selected(pattern.hour),
    daysOfMonth: new Set(selected(pattern.day, 1)),
    months: new Set(selected(pattern.month, 1)),
    weekdays: new Set(selected(pattern.dayOfWeek)),
    eitherDay: !pattern.starDOM && !pattern.starDOW,
  };
  if (!canEverFire(fields)) throw new ScheduleError(`cron expression ${quoted} never fires: none of its months has its day of the month`);
  return fields;
}

function canEverFire(fields: CronFields): boolean {
  const monthHasDay = (month: number) => [...fields.daysOfMonth].some((day) => day <= daysInMonth(LEAP_YEAR, month));
  return fields.eitherDay || [...fields.months].some(monthHasDay);
}

/** What every calendar schedule comes down to: on which local dates it fires, and at which wall times. */
interface FireRule {
  timeZone: string;
  times: readonly TimeOfDay[];
  firesOn(date: LocalDate): boolean;
}

const MIDNIGHT: readonly TimeOfDay[] = [{ hour: 0, minute: 0 }];

const PRESET_DAYS: Record<Preset, (date: LocalDate) => boolean> = {
  weekly: (date) => weekdayOf(date) === SUNDAY,
  biweekly: (date) => (epochDayOf(date) - BIWEEKLY_ANCHOR_DAY) % 14 === 0,
  monthly: (date) => date.day === 1,
  bimonthly: (date) => date.day === 1 && date.month % 2 === 1,
};

function cronRule(expression: string, timeZone: string): FireRule {
  const cron = parseCron(expression);
  const dayMatches = (date: LocalDate) => {
    const byDayOfMonth = cron.daysOfMonth.has(date.day);
    const byWeekday = cron.weekdays.has(weekdayOf(date));
    return cron.eitherDay ? byDayOfMonth || byWeekday : byDayOfMonth && byWeekday;
  };
  return {
    timeZone,
    times: cron.hours.flatMap((hour) => cron.minutes.map((minute) => ({ hour, minute }))),
    firesOn: (date) => cron.months.has(date.month) && dayMatches(date),
  };
}

function fireRuleOf(schedule: CalendarSchedule): FireRule {
  switch (schedule.kind) {
    case 'preset':
      return { timeZone: schedule.timeZone, times: MIDNIGHT, firesOn: PRESET_DAYS[schedule.preset] };
    case 'custom': {
      const { month, day, hour, minute, timeZone } = schedule;
      return { timeZone, times: [{ hour, minute }], firesOn: (date) => date.month === month && date.day === day };
    }
    case 'cron':
      return cronRule(schedule.expression, schedule.timeZone);
  }
}

/** February 29 comes round at most eight years apart (2096, then 2104): the longest wait of any valid schedule. */
const SEARCH_DAYS = 8 * 366 + 2;

/** The earliest fire on local date `epochDay` that is after `after`. */
function firstFireOnDay(rule: FireRule, epochDay: number, after: number): number | null {
  const date = dateOfEpochDay(epochDay);
  if (!rule.firesOn(date)) return null;
  const fires = fromZonedOnDate(date, rule.times, rule.timeZone).filter((at) => at > after);
  return fires.length > 0 ? Math.min(...fires) : null;
}

function nextRuleFire(rule: FireRule, after: number): number | null {
  // A fire in a gap that ends at midnight moves onto the next date: Nuuk springs forward from 23:00 to 00:00, so 23:30
  // fires at 00:30. So the walk starts a day early, and once a day has a fire the next day is checked too: Pyongyang's
  // 23:30 -> 00:00 in 2018 moved a 23:40 fire to 00:10, after that date's own 00:00.
  const firstDay = epochDayOf(toZoned(after, rule.timeZone)) - 1;
  for (let day = firstDay; day < firstDay + SEARCH_DAYS; day++) {
    const fire = firstFireOnDay(rule, day, after);
    if (fire !== null) return Math.min(fire, firstFireOnDay(rule, day + 1, after) ?? fire);
  }
  return null;
}

/** An ISO-8601 instant, or a ScheduleError naming the text. */
function instantOf(text: string, what: string): number {
  const at = parseIsoInstant(text);
  if (at === null) {
    throw new ScheduleError(`${what} ${JSON.stringify(text)} is not an ISO-8601 time with an offset or Z (e.g. ${ISO_EXAMPLE})`);
  }
  return at;
}

/**
 * The first fire time strictly after `after`, or null if there is none: on-boot is event-driven, and on-demand
 * fires once, at `notBefore` (a trigger without one gets its time from resolveOnDemandNotBefore).
 */
export function nextFireTime(schedule: Schedule, after: number): number | null {
  switch (schedule.kind) {
    case 'on-boot':
      return null;
    case 'on-demand': {
      if (schedule.notBefore === undefined) return null;
      const notBefore = instantOf(schedule.notBefore, 'on-demand notBefore');
      return notBefore > after ? notBefore : null;
    }
    default:
      return nextRuleFire(fireRuleOf(schedule), after);
  }
}

/** Up to `count` fire times after `after`, in order. */
export function fireTimes(schedule: Schedule, after: number, count: number): number[] {
  const fires: number[] = [];
  for (let at = nextFireTime(schedule, after); at !== null && fires.length < count; at = nextFireTime(schedule, at)) {
    fires.push(at);
  }
  return fires;
}

const PRESET_CRON: Record<Preset, string | null> = {
  weekly: '0 0 * * 0',
  // Cron has no "every other week": its fields cannot count weeks.
  biweekly: null,
  monthly: '0 0 1 * *',
  bimonthly: '0 0 1 */2 *',
};

/** The cron form of a preset, for display, or null where cron cannot express it. */
export function presetToCron(preset: Preset): string | null {
  return PRESET_CRON[preset];
}

const PRESET_DESCRIPTIONS: Record<Preset, string> = {
  weekly: 'every Sunday',
  biweekly: 'every second Sunday',
  monthly: 'on the 1st of every month',
  bimonthly: 'on the 1st of January, March, May, July, September and November',
};

const twoDigits = (value: number) => String(value).padStart(2, '0');

export function describeSchedule(schedule: Schedule): string {
  switch (schedule.kind) {
    case 'preset':
      return `${PRESET_DESCRIPTIONS[schedule.preset]} at 00:00 (${schedule.timeZone})`;
    case 'custom': {
      const { month, day, hour, minute, timeZone } = schedule;
      const leapOnly = month === 2 && day === 29 ? ', in leap years only' : '';
      return `every year on ${MONTH_NAMES[month - 1]} ${day} at ${twoDigits(hour)}:${twoDigits(minute)} (${timeZone})${leapOnly}`;
    }
    case 'cron':
      return `cron "${schedule.expression}" (${schedule.timeZone})`;
    case 'on-boot':
      return 'when a node first boots';
    case 'on-demand':
      return schedule.notBefore === undefined ? 'on demand' : `on demand, not before ${schedule.notBefore}`;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** How far ahead an on-demand run may be requested: patches come monthly, and 9999-12-31 waits forever. */
export const MAX_ON_DEMAND_AHEAD_MS = 366 * 24 * 3600 * 1000;

/**
 * When an on-demand trigger may start, as Palette decides it: without a requested time, ten minutes from now. A
 * requested time in the past is refused, as Palette's API refuses it, rather than quietly run at once; so is one more
 * than a year away.
 */
export function resolveOnDemandNotBefore(requested: string | undefined, now: number): number {
  if (requested === undefined) return now + ON_DEMAND_DELAY_MS;
  const at = instantOf(requested, 'on-demand notBefore');
  if (at < now) {
    throw new ScheduleError(
      `on-demand notBefore ${iso(at)} is in the past (now is ${iso(now)}); ` +
        'omit it, or pick a future time',
    );
  }
  if (at - now > MAX_ON_DEMAND_AHEAD_MS) {
    throw new ScheduleError(
      `on-demand notBefore ${iso(at)} is more than a year away (now is ${iso(now)}); check the year: ` +
        'a run that waits that long is a typo, not a plan',
    );
  }
  return at;
}

export type StoredOnDemand = { state: 'unset' } | { state: 'pending'; at: number } | { state: 'stuck'; at: number; reason: string };

/**
 * Go's zero time.Time, 0001-01-01T00:00:00Z, is what Palette reads back after `onDemandPatchAfter` is cleared and what
 * Terraform sends for "unset". Printed with a positive offset it falls in year 0, so any year up to 1 counts.
 */
const isGoZeroTime = (ms: number) => new Date(ms).getUTCFullYear() <= 1;

/**
 * Reads Palette's stored `onDemandPatchAfter`. A past value is "stuck": it is the "On-Demand Update does nothing"
 * failure, and the reason says how to clear it.
 */
export function classifyStoredOnDemand(stored: string | null | undefined, now: number): StoredOnDemand {
  if (stored === null || stored === undefined || stored.trim() === '') return { state: 'unset' };
  const at = instantOf(stored.trim(), 'stored onDemandPatchAfter');
  if (isGoZeroTime(at)) return { state: 'unset' };
  if (at >= now) return { state: 'pending', at };
  return {
    state: 'stuck',
    at,
    reason:
      `onDemandPatchAfter is ${iso(at)}, in the past (now is ${iso(now)}). Palette keeps the old timestamp after a run ` +
      'and then refuses to register a new On-Demand Update, so the button does nothing. Clear it first ' +
      '(PATCH /v1/spectroclusters/{uid}/clusterConfig/osPatch with {"osPatchConfig":{"onDemandPatchAfter":"", ...the other settings}}, ' +
      'as patchpilot unstick does), then trigger again.',
  };
}

/**
 * When a run of this trigger may start, and the trigger id that makes its version hash: on demand, at once (or at its
 * notBefore; a past one is refused) with a trigger id that does not depend on the clock, so that `plan check`,
 * `run --dry-run` and `run` name the same hash and a repeated run finishes only the nodes still without it (a new
 * `--trigger` patches every node again); a schedule, its next fire time; on boot, at once. Palette's ten-minute
 * grace belongs to Palette's own button (the simulator models it there). Use deriveRunStart (run-start.ts).
 */
export function resolveTriggerStart(trigger: Schedule, now: number): { notBefore: number | null; triggerId: string } {
  switch (trigger.kind) {
    case 'on-demand': {
      if (trigger.notBefore === undefined) return { notBefore: null, triggerId: 'on-demand' };
      const notBefore = resolveOnDemandNotBefore(trigger.notBefore, now);
      return { notBefore, triggerId: `on-demand@${iso(notBefore)}` };
    }
    case 'on-boot':
      return { notBefore: null, triggerId: 'on-boot' };
    default: {
      const next = nextFireTime(trigger, now);
      if (next === null) throw new ScheduleError(`${describeSchedule(trigger)} never fires after ${iso(now)}`);
      return { notBefore: next, triggerId: `${trigger.kind}@${iso(next)}` };
    }
  }
}
