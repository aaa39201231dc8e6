import { Cron } from 'croner';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ON_DEMAND_DELAY_MS,
  PRESETS,
  ScheduleError,
  classifyStoredOnDemand,
  describeSchedule,
  fireTimes,
  nextFireTime,
  presetToCron,
  resolveOnDemandNotBefore,
  scheduleSchema,
  type ScheduleInput,
} from '../../src/engine/schedule.ts';

const iso = (ms: number) => new Date(ms).toISOString();
const instant = (text: string) => iso(Date.parse(text));
const scheduleOf = (input: ScheduleInput) => scheduleSchema.parse(input);
const fires = (input: ScheduleInput, after: string, count: number) => fireTimes(scheduleOf(input), Date.parse(after), count).map(iso);

const NEW_YORK = 'America/New_York';
const BERLIN = 'Europe/Berlin';

describe('scheduleSchema', () => {
  it('defaults the time zone to UTC', () => {
    expect(scheduleOf({ kind: 'preset', preset: 'weekly' })).toEqual({ kind: 'preset', preset: 'weekly', timeZone: 'UTC' });
  });

  it.each([
    { name: 'an unknown kind', input: { kind: 'hourly' }, path: 'kind', message: "Invalid discriminator value. Expected 'preset' | 'custom' | 'cron' | 'on-boot' | 'on-demand'" },
    { name: 'an unknown preset', input: { kind: 'preset', preset: 'daily' }, path: 'preset', message: 'expected one of weekly, biweekly, monthly, bimonthly, got "daily"' },
    { name: 'an unknown time zone', input: { kind: 'preset', preset: 'weekly', timeZone: 'Mars/Olympus' }, path: 'timeZone', message: 'unknown time zone "Mars/Olympus"' },
    { name: 'April 31', input: { kind: 'custom', month: 4, day: 31, hour: 0, minute: 0 }, path: 'day', message: 'April has at most 30 days, got 31' },
    { name: 'February 30', input: { kind: 'custom', month: 2, day: 30, hour: 0, minute: 0 }, path: 'day', message: 'February has at most 29 days, got 30' },
    { name: 'month 13', input: { kind: 'custom', month: 13, day: 1, hour: 0, minute: 0 }, path: 'month', message: 'expected a whole number from 1 to 12, got 13' },
    { name: 'hour 24', input: { kind: 'custom', month: 1, day: 1, hour: 24, minute: 0 }, path: 'hour', message: 'expected a whole number from 0 to 23, got 24' },
    { name: 'a fractional minute', input: { kind: 'custom', month: 1, day: 1, hour: 0, minute: 1.5 }, path: 'minute', message: 'expected a whole number from 0 to 59, got 1.5' },
    {
      name: 'a cron minute out of range',
      input: { kind: 'cron', expression: '61 * * * *' },
      path: 'expression',
      message: 'invalid cron expression "61 * * * *": Invalid value for minute: 61',
    },
    {
      name: 'a cron expression with seconds',
      input: { kind: 'cron', expression: '0 0 0 * * *' },
      path: 'expression',
      message: "invalid cron expression \"0 0 0 * * *\": mode '5-part' requires exactly 5 parts, but pattern '0 0 0 * * *' has 6 parts.",
    },
    {
      name: "croner's L extension, which Palette rejects",
      input: { kind: 'cron', expression: '0 0 L * *' },
      path: 'expression',
      message: 'cron expression "0 0 L * *" uses L, W, # or +, which standard 5-field cron (and Palette) does not support',
    },
    {
      name: "croner's # extension",
      input: { kind: 'cron', expression: '0 0 * * FRI#2' },
      path: 'expression',
      message: 'cron expression "0 0 * * FRI#2" uses L, W, # or +, which standard 5-field cron (and Palette) does not support',
    },
    {
      name: 'a cron expression that never fires',
      input: { kind: 'cron', expression: '0 0 31 2 *' },
      path: 'expression',
      message: 'cron expression "0 0 31 2 *" never fires: none of its months has its day of the month',
    },
    {
      name: 'an on-demand time without an offset',
      input: { kind: 'on-demand', notBefore: '2026-03-08T10:00:00' },
      path: 'notBefore',
      message: 'expected an ISO-8601 time with an offset or Z (e.g. 2026-03-08T10:00:00Z), got "2026-03-08T10:00:00"',
    },
    { name: 'an unknown key', input: { kind: 'on-boot', at: 'boot' }, path: '', message: 'Unrecognized key: "at"' },
  ])('refuses $name', ({ input, path, message }) => {
    const issues = scheduleSchema.safeParse(input).error?.issues ?? [];
    expect(issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }))).toEqual([{ path, message }]);
  });

  it.each([
    { name: 'month and day names', expression: '0 0 * JUL WED' },
    { name: 'ranges, lists and steps', expression: '*/15 8-17 1,15 */2 MON-FRI' },
    { name: '?', expression: '0 0 ? * 0' },
    { name: '@weekly', expression: '@weekly' },
    { name: 'February 29', expression: '0 0 29 2 *' },
  ])('accepts cron with $name', ({ expression }) => {
    expect(scheduleSchema.safeParse({ kind: 'cron', expression }).success).toBe(true);
  });
});

describe('nextFireTime: presets', () => {
  it.each([
    { name: 'weekly: the coming Sunday', input: { preset: 'weekly' }, after: '2026-03-02T12:00:00Z', expected: ['2026-03-08T00:00:00Z', '2026-03-15T00:00:00Z'] },
    { name: 'weekly: strictly after a fire', input: { preset: 'weekly' }, after: '2026-03-08T00:00:00Z', expected: ['2026-03-15T00:00:00Z'] },
    { name: 'weekly: a millisecond before a fire', input: { preset: 'weekly' }, after: '2026-03-07T23:59:59.999Z', expected: ['2026-03-08T00:00:00Z'] },
    { name: 'biweekly: the anchor Sunday 1970-01-04', input: { preset: 'biweekly' }, after: '1970-01-01T00:00:00Z', expected: ['1970-01-04T00:00:00Z', '1970-01-18T00:00:00Z'] },
    {
      name: 'biweekly: skips the Sunday between (2026-03-08)',
      input: { preset: 'biweekly' },
      after: '2026-03-02T00:00:00Z',
      expected: ['2026-03-15T00:00:00Z', '2026-03-29T00:00:00Z'],
    },
    { name: 'monthly: the 1st', input: { preset: 'monthly' }, after: '2026-03-02T00:00:00Z', expected: ['2026-04-01T00:00:00Z', '2026-05-01T00:00:00Z'] },
    { name: 'monthly: over the year end', input: { preset: 'monthly' }, after: '2026-12-15T00:00:00Z', expected: ['2027-01-01T00:00:00Z'] },
    {
      name: 'bimonthly: odd months only',
      input: { preset: 'bimonthly' },
      after: '2026-01-01T00:00:00Z',
      expected: ['2026-03-01T00:00:00Z', '2026-05-01T00:00:00Z', '2026-07-01T00:00:00Z'],
    },
    { name: 'bimonthly: November to January', input: { preset: 'bimonthly' }, after: '2026-11-01T00:00:00Z', expected: ['2027-01-01T00:00:00Z'] },
    {
      name: 'weekly in New York: EST, then EDT after spring-forward',
      input: { preset: 'weekly', timeZone: NEW_YORK },
      after: '2026-03-02T00:00:00Z',
      expected: ['2026-03-08T05:00:00Z', '2026-03-15T04:00:00Z'],
    },
    {
      name: 'weekly in New York: EDT, then EST after fall-back',
      input: { preset: 'weekly', timeZone: NEW_YORK },
      after: '2026-10-26T00:00:00Z',
      expected: ['2026-11-01T04:00:00Z', '2026-11-08T05:00:00Z'],
    },
    {
      name: 'monthly in Berlin: CEST, then CET after fall-back',
      input: { preset: 'monthly', timeZone: BERLIN },
      after: '2026-09-15T00:00:00Z',
      expected: ['2026-09-30T22:00:00Z', '2026-10-31T23:00:00Z'],
    },
    {
      name: 'bimonthly in Berlin: CET, then CEST after spring-forward',
      input: { preset: 'bimonthly', timeZone: BERLIN },
      after: '2026-02-01T00:00:00Z',
      expected: ['2026-02-28T23:00:00Z', '2026-04-30T22:00:00Z'],
    },
    {
      name: 'weekly in Santiago: Sunday 00:00 falls in the spring gap and fires at 01:00',
      input: { preset: 'weekly', timeZone: 'America/Santiago' },
      after: '2026-09-01T00:00:00Z',
      expected: ['2026-09-06T04:00:00Z', '2026-09-13T03:00:00Z'],
    },
  ] as const)('$name', ({ input, after, expected }) => {
    expect(fires({ kind: 'preset', ...input }, after, expected.length)).toEqual(expected.map(instant));
  });
});

describe('nextFireTime: custom', () => {
  it.each([
    { name: 'later this year', input: { month: 3, day: 15, hour: 2, minute: 30 }, after: '2026-01-01T00:00:00Z', expected: ['2026-03-15T02:30:00Z', '2027-03-15T02:30:00Z'] },
    { name: 'strictly after a fire: next year', input: { month: 3, day: 15, hour: 2, minute: 30 }, after: '2026-03-15T02:30:00Z', expected: ['2027-03-15T02:30:00Z'] },
    { name: 'February 29: leap years only', input: { month: 2, day: 29, hour: 0, minute: 0 }, after: '2026-01-01T00:00:00Z', expected: ['2028-02-29T00:00:00Z', '2032-02-29T00:00:00Z'] },
    { name: 'February 29: 2100 is not a leap year', input: { month: 2, day: 29, hour: 0, minute: 0 }, after: '2096-03-01T00:00:00Z', expected: ['2104-02-29T00:00:00Z'] },
    {
      name: 'US spring-forward: 02:30 fires at 03:30 EDT',
      input: { month: 3, day: 8, hour: 2, minute: 30, timeZone: NEW_YORK },
      after: '2026-01-01T00:00:00Z',
      expected: ['2026-03-08T07:30:00Z', '2027-03-08T07:30:00Z'],
    },
    {
      name: 'US fall-back: 01:30 fires once, at 01:30 EDT',
      input: { month: 11, day: 1, hour: 1, minute: 30, timeZone: NEW_YORK },
      after: '2026-10-01T00:00:00Z',
      expected: ['2026-11-01T05:30:00Z', '2027-11-01T05:30:00Z'],
    },
    {
      name: 'EU spring-forward: 02:30 fires at 03:30 CEST',
      input: { month: 3, day: 29, hour: 2, minute: 30, timeZone: BERLIN },
      after: '2026-01-01T00:00:00Z',
      expected: ['2026-03-29T01:30:00Z'],
    },
    {
      name: 'EU fall-back: 02:30 fires once, at 02:30 CEST',
      input: { month: 10, day: 25, hour: 2, minute: 30, timeZone: BERLIN },
      after: '2026-10-01T00:00:00Z',
      expected: ['2026-10-25T00:30:00Z', '2027-10-25T00:30:00Z'],
    },
    {
      name: 'Lord Howe: 02:15 in the 30-minute gap fires at 02:45',
      input: { month: 10, day: 4, hour: 2, minute: 15, timeZone: 'Australia/Lord_Howe' },
      after: '2026-01-01T00:00:00Z',
      expected: ['2026-10-03T15:45:00Z'],
    },
  ])('$name', ({ input, after, expected }) => {
    expect(fires({ kind: 'custom', ...input }, after, expected.length)).toEqual(expected.map(instant));
  });
});

describe('nextFireTime: cron', () => {
  it.each([
    { name: '@weekly', input: { expression: '@weekly' }, after: '2026-03-02T12:00:00Z', expected: ['2026-03-08T00:00:00Z', '2026-03-15T00:00:00Z'] },
    { name: '@monthly', input: { expression: '@monthly' }, after: '2026-12-15T00:00:00Z', expected: ['2027-01-01T00:00:00Z'] },
    { name: '@daily', input: { expression: '@daily' }, after: '2026-03-02T12:00:00Z', expected: ['2026-03-03T00:00:00Z'] },
    { name: '@hourly', input: { expression: '@hourly' }, after: '2026-03-02T12:00:00Z', expected: ['2026-03-02T13:00:00Z'] },
    { name: '@yearly', input: { expression: '@yearly' }, after: '2026-03-02T12:00:00Z', expected: ['2027-01-01T00:00:00Z'] },
    { name: 'weekdays only: Saturday waits for Monday', input: { expression: '0 0 * * 1-5' }, after: '2026-03-07T12:00:00Z', expected: ['2026-03-09T00:00:00Z'] },
    {
      name: 'both day fields restricted: either matches (Monday the 13th, then Friday)',
      input: { expression: '0 0 13 * 5' },
      after: '2026-04-11T00:00:00Z',
      expected: ['2026-04-13T00:00:00Z', '2026-04-17T00:00:00Z'],
    },
    {
      name: 'US spring-forward: 30 2 * * * fires once, at 03:30 EDT',
      input: { expression: '30 2 * * *', timeZone: NEW_YORK },
      after: '2026-03-07T12:00:00Z',
      expected: ['2026-03-08T07:30:00Z', '2026-03-09T06:30:00Z'],
    },
    {
      name: 'US fall-back: 30 1 * * * fires once, at 01:30 EDT',
      input: { expression: '30 1 * * *', timeZone: NEW_YORK },
      after: '2026-10-31T12:00:00Z',
      expected: ['2026-11-01T05:30:00Z', '2026-11-02T06:30:00Z'],
    },
    {
      name: 'US fall-back: no second fire during the repeated hour',
      input: { expression: '30 1 * * *', timeZone: NEW_YORK },
      after: '2026-11-01T05:45:00Z',
      expected: ['2026-11-02T06:30:00Z'],
    },
    {
      name: 'US spring-forward: */30 2 * * * fires at 03:00 and 03:30 EDT',
      input: { expression: '*/30 2 * * *', timeZone: NEW_YORK },
      after: '2026-03-07T12:00:00Z',
      expected: ['2026-03-08T07:00:00Z', '2026-03-08T07:30:00Z', '2026-03-09T06:00:00Z'],
    },
    {
      name: 'US fall-back: 0,30 1 * * * fires each time once',
      input: { expression: '0,30 1 * * *', timeZone: NEW_YORK },
      after: '2026-10-31T12:00:00Z',
      expected: ['2026-11-01T05:00:00Z', '2026-11-01T05:30:00Z', '2026-11-02T06:00:00Z'],
    },
    {
      name: 'EU spring-forward: 30 2 * * * fires at 03:30 CEST',
      input: { expression: '30 2 * * *', timeZone: BERLIN },
      after: '2026-03-28T12:00:00Z',
      expected: ['2026-03-29T01:30:00Z', '2026-03-30T00:30:00Z'],
    },
    {
      name: 'EU fall-back: 30 2 * * * fires once, at 02:30 CEST',
      input: { expression: '30 2 * * *', timeZone: BERLIN },
      after: '2026-10-24T12:00:00Z',
      expected: ['2026-10-25T00:30:00Z', '2026-10-26T01:30:00Z'],
    },
    {
      name: 'Lord Howe: 15 2 * * * fires at 02:45 on its 30-minute spring-forward night',
      input: { expression: '15 2 * * *', timeZone: 'Australia/Lord_Howe' },
      after: '2026-10-03T00:00:00Z',
      expected: ['2026-10-03T15:45:00Z', '2026-10-04T15:15:00Z'],
    },
    {
      name: 'Nuuk: 23:30 in a gap that ends at midnight fires at 00:30 on the next date',
      input: { expression: '30 23 * * *', timeZone: 'America/Nuuk' },
      after: '2026-03-29T01:10:00Z',
      expected: ['2026-03-29T01:30:00Z', '2026-03-30T00:30:00Z'],
    },
    {
      name: "Pyongyang 2018: the next date's 00:00 comes before the previous date's 23:40, moved to 00:10",
      input: { expression: '0,40 0,23 * * *', timeZone: 'Asia/Pyongyang' },
      after: '2018-05-04T14:45:00Z',
      expected: ['2018-05-04T15:00:00Z', '2018-05-04T15:10:00Z', '2018-05-04T15:40:00Z'],
    },
  ])('$name', ({ input, after, expected }) => {
    expect(fires({ kind: 'cron', ...input }, after, expected.length)).toEqual(expected.map(instant));
  });

  // croner's own nextRun follows a different DST rule, which is why schedule.ts only parses with croner. If these
  // start to agree, croner's nextRun could replace the wall-time walk.
  it.each([
    { name: 'a gap time', expression: '30 2 * * *', after: '2026-03-07T12:00:00Z', croner: '2026-03-08T07:00:00Z', ours: '2026-03-08T07:30:00Z' },
    { name: 'a list in the repeated hour', expression: '0,30 1 * * *', after: '2026-11-01T05:45:00Z', croner: '2026-11-01T06:00:00Z', ours: '2026-11-02T06:00:00Z' },
    { name: 'a step over the gap', expression: '*/30 2 * * *', after: '2026-03-07T12:00:00Z', croner: '2026-03-09T06:00:00Z', ours: '2026-03-08T07:00:00Z' },
  ])("croner's nextRun disagrees on $name in New York", ({ expression, after, croner, ours }) => {
    const cronerRun = new Cron(expression, { timezone: NEW_YORK, mode: '5-part', paused: true }).nextRun(new Date(Date.parse(after)));
    expect(cronerRun?.toISOString()).toBe(instant(croner));
    expect(fires({ kind: 'cron', expression, timeZone: NEW_YORK }, after, 1)).toEqual([instant(ours)]);
  });

  it('matches croner in UTC, where no DST rule applies', () => {
    const field = (min: number, max: number) =>
      fc.oneof(
        fc.constant('*'),
        fc.integer({ min, max }).map(String),
        fc.tuple(fc.integer({ min, max }), fc.integer({ min, max })).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
        fc.integer({ min: 2, max: Math.max(2, Math.floor((max - min) / 2)) }).map((step) => `*/${step}`),
        fc.uniqueArray(fc.integer({ min, max }), { minLength: 2, maxLength: 4 }).map((values) => values.join(',')),
      );
    const expression = fc
      .tuple(field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 6))
      .map((fields) => fields.join(' '))
      .filter((text) => scheduleSchema.safeParse({ kind: 'cron', expression: text }).success);
    const wholeSecond = fc.integer({ min: Date.parse('2025-01-01T00:00:00Z') / 1000, max: Date.parse('2030-01-01T00:00:00Z') / 1000 });
    fc.assert(
      fc.property(expression, wholeSecond, (text, second) => {
        const after = second * 1000;
        const croner = new Cron(text, { timezone: 'UTC', mode: '5-part', paused: true }).nextRun(new Date(after));
        expect(nextFireTime(scheduleOf({ kind: 'cron', expression: text }), after)).toBe(croner?.getTime() ?? null);
      }),
      { numRuns: 300 },
    );
  });
});

describe('presetToCron', () => {
  it.each([
    { name: 'weekly', preset: 'weekly', cron: '0 0 * * 0' },
    { name: 'biweekly has no cron form', preset: 'biweekly', cron: null },
    { name: 'monthly', preset: 'monthly', cron: '0 0 1 * *' },
    { name: 'bimonthly', preset: 'bimonthly', cron: '0 0 1 */2 *' },
  ] as const)('$name', ({ preset, cron }) => {
    expect(presetToCron(preset)).toBe(cron);
  });

  it.each(PRESETS.filter((preset) => presetToCron(preset) !== null).map((preset) => ({ name: preset, preset })))(
    '$name fires when its cron form does, across DST in New York',
    ({ preset }) => {
      const expression = presetToCron(preset) ?? '';
      const after = '2026-01-15T00:00:00Z';
      expect(fires({ kind: 'preset', preset, timeZone: NEW_YORK }, after, 12)).toEqual(fires({ kind: 'cron', expression, timeZone: NEW_YORK }, after, 12));
    },
  );
});

describe('nextFireTime: event-driven kinds', () => {
  it.each([
    { name: 'on-boot never fires by time', input: { kind: 'on-boot' }, after: '2026-03-08T09:00:00Z', expected: null },
    { name: 'on-demand without notBefore has no time of its own', input: { kind: 'on-demand' }, after: '2026-03-08T09:00:00Z', expected: null },
    { name: 'on-demand fires at a later notBefore', input: { kind: 'on-demand', notBefore: '2026-03-08T11:00:00+01:00' }, after: '2026-03-08T09:00:00Z', expected: '2026-03-08T10:00:00Z' },
    { name: 'on-demand is done once notBefore has passed', input: { kind: 'on-demand', notBefore: '2026-03-08T10:00:00Z' }, after: '2026-03-08T10:00:00Z', expected: null },
  ] as const)('$name', ({ input, after, expected }) => {
    const fire = nextFireTime(scheduleOf(input), Date.parse(after));
    expect(fire === null ? null : iso(fire)).toBe(expected === null ? null : instant(expected));
  });
});

describe('fireTimes properties', () => {
  const zones = ['UTC', NEW_YORK, BERLIN, 'Australia/Lord_Howe'];
  const calendarSchedule = fc.oneof(
    fc.record({ kind: fc.constant('preset' as const), preset: fc.constantFrom(...PRESETS), timeZone: fc.constantFrom(...zones) }),
    fc.record({
      kind: fc.constant('custom' as const),
      month: fc.integer({ min: 1, max: 12 }),
      day: fc.integer({ min: 1, max: 28 }),
      hour: fc.integer({ min: 0, max: 23 }),
      minute: fc.constantFrom(0, 15, 30, 45),
      timeZone: fc.constantFrom(...zones),
    }),
    fc.record({
      kind: fc.constant('cron' as const),
      expression: fc.constantFrom('30 2 * * *', '0,30 1-3 * * *', '*/20 * * * 0', '0 2 1,15 * *', '15 2 * 3,10 0'),
      timeZone: fc.constantFrom(...zones),
    }),
  );
  const in2026 = fc.integer({ min: Date.parse('2026-01-01T00:00:00Z'), max: Date.parse('2027-01-01T00:00:00Z') });

  it('fire times are strictly increasing, and nothing fires between them', () => {
    fc.assert(
      fc.property(calendarSchedule, in2026, fc.double({ min: 0, max: 1, noNaN: true }), (input, after, fraction) => {
        const schedule = scheduleOf(input);
        const [first, second, ...rest] = fireTimes(schedule, after, 4);
        expect(first).toBeGreaterThan(after);
        const times = [first!, second!, ...rest];
        times.slice(1).forEach((time, index) => expect(time).toBeGreaterThan(times[index]!));
        const between = Math.floor(after + (first! - after) * fraction);
        expect(nextFireTime(schedule, Math.min(between, first! - 1))).toBe(first);
      }),
      { numRuns: 200 },
    );
  });
});

describe('describeSchedule', () => {
  it.each([
    { name: 'weekly', input: { kind: 'preset', preset: 'weekly' }, text: 'every Sunday at 00:00 (UTC)' },
    { name: 'biweekly', input: { kind: 'preset', preset: 'biweekly', timeZone: BERLIN }, text: 'every second Sunday at 00:00 (Europe/Berlin)' },
    { name: 'monthly', input: { kind: 'preset', preset: 'monthly' }, text: 'on the 1st of every month at 00:00 (UTC)' },
    {
      name: 'bimonthly',
      input: { kind: 'preset', preset: 'bimonthly' },
      text: 'on the 1st of January, March, May, July, September and November at 00:00 (UTC)',
    },
    { name: 'custom', input: { kind: 'custom', month: 3, day: 8, hour: 2, minute: 5, timeZone: NEW_YORK }, text: 'every year on March 8 at 02:05 (America/New_York)' },
    { name: 'custom February 29', input: { kind: 'custom', month: 2, day: 29, hour: 0, minute: 0 }, text: 'every year on February 29 at 00:00 (UTC), in leap years only' },
    { name: 'cron', input: { kind: 'cron', expression: '30 2 * * *', timeZone: NEW_YORK }, text: 'cron "30 2 * * *" (America/New_York)' },
    { name: 'on-boot', input: { kind: 'on-boot' }, text: 'when a node first boots' },
    { name: 'on-demand', input: { kind: 'on-demand' }, text: 'on demand' },
    { name: 'on-demand with a time', input: { kind: 'on-demand', notBefore: '2026-03-08T10:00:00Z' }, text: 'on demand, not before 2026-03-08T10:00:00Z' },
  ] as const)('$name', ({ input, text }) => {
    expect(describeSchedule(scheduleOf(input))).toBe(text);
  });
});

describe('resolveOnDemandNotBefore', () => {
  const now = Date.parse('2026-03-08T10:00:00Z');

  it.each([
    { name: 'omitted: now + 10 minutes', requested: undefined, expected: '2026-03-08T10:10:00Z' },
    { name: 'a future time with an offset', requested: '2026-03-08T12:00:00+01:00', expected: '2026-03-08T11:00:00Z' },
    { name: 'exactly now is not in the past', requested: '2026-03-08T10:00:00Z', expected: '2026-03-08T10:00:00Z' },
  ])('$name', ({ requested, expected }) => {
    expect(iso(resolveOnDemandNotBefore(requested, now))).toBe(instant(expected));
  });

  it('the default delay is ten minutes', () => {
    expect(ON_DEMAND_DELAY_MS).toBe(600_000);
  });

  it('refuses a past time, showing both times and how to fix it', () => {
    const attempt = () => resolveOnDemandNotBefore('2026-03-08T09:59:59Z', now);
    expect(attempt).toThrow(ScheduleError);
    expect(attempt).toThrow(
      'on-demand notBefore 2026-03-08T09:59:59.000Z is in the past (now is 2026-03-08T10:00:00.000Z); ' +
        'omit it, or pick a future time',
    );
  });

  it('refuses a time more than a year away (a typo in the year), and takes one just within it', () => {
    expect(iso(resolveOnDemandNotBefore('2027-03-08T10:00:00Z', now))).toBe(instant('2027-03-08T10:00:00Z'));
    for (const requested of ['2027-03-09T10:00:01Z', '9999-12-31T00:00:00Z']) {
      const attempt = () => resolveOnDemandNotBefore(requested, now);
      expect(attempt).toThrow(ScheduleError);
      expect(attempt).toThrow(`on-demand notBefore ${new Date(requested).toISOString()} is more than a year away (now is 2026-03-08T10:00:00.000Z); check the year`);
    }
  });

  it.each([
    { name: 'words', requested: 'tomorrow' },
    { name: 'no offset', requested: '2026-03-08T12:00:00' },
    { name: 'February 30', requested: '2026-02-30T12:00:00Z' },
    { name: 'an offset of 24 hours', requested: '2026-03-08T12:00:00+24:00' },
    { name: 'the empty string', requested: '' },
  ])('refuses $name, naming the value', ({ requested }) => {
    const attempt = () => resolveOnDemandNotBefore(requested, now);
    expect(attempt).toThrow(ScheduleError);
    expect(attempt).toThrow(`on-demand notBefore ${JSON.stringify(requested)} is not an ISO-8601 time with an offset or Z (e.g. 2026-03-08T10:00:00Z)`);
  });

  it('is a ScheduleError by name', () => {
    expect(new ScheduleError('x').name).toBe('ScheduleError');
  });
});

describe('classifyStoredOnDemand', () => {
  const now = Date.parse('2026-03-08T10:00:00Z');

  it.each([
    { name: 'null', stored: null },
    { name: 'undefined', stored: undefined },
    { name: 'the empty string', stored: '' },
    { name: 'blanks', stored: '  ' },
    { name: "Palette's zero value", stored: '0001-01-01T00:00:00.000Z' },
    { name: 'the zero value without milliseconds', stored: '0001-01-01T00:00:00Z' },
    { name: 'the zero value with a positive offset (year 0 in UTC)', stored: '0001-01-01T00:00:00+05:30' },
  ])('unset: $name', ({ stored }) => {
    expect(classifyStoredOnDemand(stored, now)).toEqual({ state: 'unset' });
  });

  it.each([
    { name: 'a future time', stored: '2026-03-08T10:10:00Z' },
    { name: 'exactly now', stored: '2026-03-08T10:00:00Z' },
  ])('pending: $name', ({ stored }) => {
    expect(classifyStoredOnDemand(stored, now)).toEqual({ state: 'pending', at: Date.parse(stored) });
  });

  it('stuck: a past time, with the reason and the fix', () => {
    const stored = '2026-01-08T17:32:08Z';
    const result = classifyStoredOnDemand(stored, now);
    expect(result).toMatchObject({ state: 'stuck', at: Date.parse(stored) });
    const reason = result.state === 'stuck' ? result.reason : '';
    expect(reason).toContain('onDemandPatchAfter is 2026-01-08T17:32:08.000Z, in the past (now is 2026-03-08T10:00:00.000Z)');
    expect(reason).toContain('refuses to register a new On-Demand Update');
    // The body unstick sends (the SDK's wrapper), not the guide's bare {"onDemandPatchAfter":""}.
    expect(reason).toContain('{"osPatchConfig":{"onDemandPatchAfter":"", ...the other settings}}');
  });

  it('refuses a stored value that is not a time', () => {
    expect(() => classifyStoredOnDemand('yesterday', now)).toThrow(
      'stored onDemandPatchAfter "yesterday" is not an ISO-8601 time with an offset or Z (e.g. 2026-03-08T10:00:00Z)',
    );
  });
});
