import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DAYS,
  isWithinWindow,
  maintenanceWindowSchema,
  nextWindowChange,
  nextWindowOpening,
  windowContaining,
  type MaintenanceWindowInput,
} from '../../src/engine/window.ts';

const iso = (ms: number) => new Date(ms).toISOString();
const instant = (text: string) => iso(Date.parse(text));
const windowOf = (input: MaintenanceWindowInput) => maintenanceWindowSchema.parse(input);

// 2026-03-02 is a Monday. US DST: 2026-03-08 and 2026-11-01; EU: 2026-03-29 and 2026-10-25; Lord Howe: 2026-10-04.
const nightly = { start: '01:00', end: '05:00' };
const fridayNight = { days: ['fri'], start: '22:00', end: '04:00' };

describe('maintenanceWindowSchema', () => {
  it('defaults to every day in UTC', () => {
    expect(windowOf(nightly)).toEqual({ days: [...DAYS], start: '01:00', end: '05:00', timeZone: 'UTC' });
  });

  it('drops repeated days', () => {
    expect(windowOf({ ...nightly, days: ['mon', 'tue', 'mon'] }).days).toEqual(['mon', 'tue']);
  });

  it.each([
    { name: 'a start hour past 23', input: { start: '25:00', end: '04:00' }, path: 'start', message: 'expected HH:MM (00:00-23:59), got "25:00"' },
    { name: 'a start of 24:00', input: { start: '24:00', end: '04:00' }, path: 'start', message: 'expected HH:MM (00:00-23:59), got "24:00"' },
    { name: 'an end past 24:00', input: { start: '22:00', end: '24:30' }, path: 'end', message: 'expected HH:MM (00:00-24:00), got "24:30"' },
    { name: 'a time without leading zero', input: { start: '1:00', end: '04:00' }, path: 'start', message: 'expected HH:MM (00:00-23:59), got "1:00"' },
    { name: 'an unknown time zone', input: { ...nightly, timeZone: 'Mars/Olympus' }, path: 'timeZone', message: 'unknown time zone "Mars/Olympus"' },
    {
      name: 'an unknown day',
      input: { ...nightly, days: ['mon', 'funday'] },
      path: 'days',
      message: 'unknown day "funday" (expected sun, mon, tue, wed, thu, fri, sat)',
    },
    { name: 'no days', input: { ...nightly, days: [] }, path: 'days', message: 'must name at least one day (omit days for every day)' },
    {
      name: 'start equal to end',
      input: { start: '22:00', end: '22:00' },
      path: 'end',
      message: 'must differ from start (both are 22:00); for a whole day use start 00:00 and end 24:00',
    },
    {
      name: 'a window that never closes',
      input: { start: '00:00', end: '24:00' },
      path: '',
      message: 'is always open (every day, 00:00-24:00); omit the window instead',
    },
    { name: 'an unknown key', input: { ...nightly, zone: 'UTC' }, path: '', message: 'Unrecognized key: "zone"' },
  ])('refuses $name', ({ input, path, message }) => {
    const issues = maintenanceWindowSchema.safeParse(input).error?.issues ?? [];
    expect(issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }))).toEqual([{ path, message }]);
  });
});

describe('isWithinWindow', () => {
  it.each([
    { name: 'plain: just before the opening', window: nightly, at: '2026-03-02T00:59:59.999Z', inside: false },
    { name: 'plain: the opening instant is inside', window: nightly, at: '2026-03-02T01:00:00Z', inside: true },
    { name: 'plain: the last millisecond is inside', window: nightly, at: '2026-03-02T04:59:59.999Z', inside: true },
    { name: 'plain: the closing instant is outside', window: nightly, at: '2026-03-02T05:00:00Z', inside: false },
    { name: 'day filter: on a listed day', window: { ...nightly, days: ['mon'] }, at: '2026-03-02T02:00:00Z', inside: true },
    { name: 'day filter: on an unlisted day', window: { ...nightly, days: ['mon'] }, at: '2026-03-03T02:00:00Z', inside: false },
    { name: 'overnight: the Friday opening', window: fridayNight, at: '2026-03-06T22:00:00Z', inside: true },
    { name: 'overnight: spills into Saturday, an unlisted day', window: fridayNight, at: '2026-03-07T03:59:59Z', inside: true },
    { name: 'overnight: closes on Saturday 04:00', window: fridayNight, at: '2026-03-07T04:00:00Z', inside: false },
    { name: 'overnight: no window starts on Saturday night', window: fridayNight, at: '2026-03-07T23:00:00Z', inside: false },
    { name: "overnight: Friday morning would be Thursday's spill", window: fridayNight, at: '2026-03-06T02:00:00Z', inside: false },
    { name: 'end 24:00: open until midnight', window: { days: ['sun'], start: '20:00', end: '24:00' }, at: '2026-03-01T23:59:59.999Z', inside: true },
    { name: 'end 24:00: closed at midnight', window: { days: ['sun'], start: '20:00', end: '24:00' }, at: '2026-03-02T00:00:00Z', inside: false },
    { name: 'end 00:00 is midnight too', window: { days: ['sun'], start: '20:00', end: '00:00' }, at: '2026-03-01T23:30:00Z', inside: true },
    { name: 'New York wall clock (EST)', window: { ...nightly, timeZone: 'America/New_York' }, at: '2026-03-02T06:00:00Z', inside: true },
    { name: 'New York wall clock, before opening', window: { ...nightly, timeZone: 'America/New_York' }, at: '2026-03-02T05:59:59Z', inside: false },
    {
      name: 'US spring-forward: an opening at 02:30 moves to 03:30, so 03:15 is still closed',
      window: { start: '02:30', end: '04:00', timeZone: 'America/New_York' },
      at: '2026-03-08T07:15:00Z',
      inside: false,
    },
    {
      name: 'US fall-back: a window inside the repeated hour is open on its first pass only',
      window: { start: '01:00', end: '01:30', timeZone: 'America/New_York' },
      at: '2026-11-01T06:10:00Z',
      inside: false,
    },
    {
      name: 'EU spring-forward: 02:10-02:50 lies in the gap and moves forward by it, to 03:10-03:50',
      window: { start: '02:10', end: '02:50', timeZone: 'Europe/Berlin' },
      at: '2026-03-29T01:30:00Z',
      inside: true,
    },
    {
      name: 'US spring-forward: 02:30-03:15 would open at 03:30, after its close, so it stays shut that night',
      window: { start: '02:30', end: '03:15', timeZone: 'America/New_York' },
      at: '2026-03-08T07:10:00Z',
      inside: false,
    },
  ])('$name', ({ window, at, inside }) => {
    expect(isWithinWindow(windowOf(window), Date.parse(at))).toBe(inside);
  });
});

describe('windowContaining', () => {
  it.each([
    { name: 'plain UTC', window: nightly, at: '2026-03-02T03:00:00Z', opens: '2026-03-02T01:00:00Z', closes: '2026-03-02T05:00:00Z' },
    { name: 'overnight, seen from the next day', window: fridayNight, at: '2026-03-07T01:00:00Z', opens: '2026-03-06T22:00:00Z', closes: '2026-03-07T04:00:00Z' },
    {
      name: 'US spring-forward: 01:00-05:00 is 3 hours',
      window: { ...nightly, timeZone: 'America/New_York' },
      at: '2026-03-08T07:00:00Z',
      opens: '2026-03-08T06:00:00Z',
      closes: '2026-03-08T09:00:00Z',
    },
    {
      name: 'US fall-back: 01:00-05:00 is 5 hours',
      window: { ...nightly, timeZone: 'America/New_York' },
      at: '2026-11-01T07:00:00Z',
      opens: '2026-11-01T05:00:00Z',
      closes: '2026-11-01T10:00:00Z',
    },
    {
      name: 'EU spring-forward: 01:00-05:00 is 3 hours',
      window: { ...nightly, timeZone: 'Europe/Berlin' },
      at: '2026-03-29T01:00:00Z',
      opens: '2026-03-29T00:00:00Z',
      closes: '2026-03-29T03:00:00Z',
    },
    {
      name: 'EU fall-back: 01:00-05:00 is 5 hours',
      window: { ...nightly, timeZone: 'Europe/Berlin' },
      at: '2026-10-25T01:00:00Z',
      opens: '2026-10-24T23:00:00Z',
      closes: '2026-10-25T04:00:00Z',
    },
    {
      name: 'US spring-forward: an opening in the gap moves forward by the gap',
      window: { start: '02:30', end: '04:00', timeZone: 'America/New_York' },
      at: '2026-03-08T07:45:00Z',
      opens: '2026-03-08T07:30:00Z',
      closes: '2026-03-08T08:00:00Z',
    },
    {
      name: 'US fall-back: an opening in the repeated hour is its first occurrence',
      window: { start: '01:30', end: '03:00', timeZone: 'America/New_York' },
      at: '2026-11-01T06:15:00Z',
      opens: '2026-11-01T05:30:00Z',
      closes: '2026-11-01T08:00:00Z',
    },
    {
      name: 'overnight over US spring-forward: 22:00-04:00 is 5 hours',
      window: { ...fridayNight, days: ['sat'], timeZone: 'America/New_York' },
      at: '2026-03-08T05:00:00Z',
      opens: '2026-03-08T03:00:00Z',
      closes: '2026-03-08T08:00:00Z',
    },
    {
      name: 'Lord Howe: 02:00-03:00 on its 30-minute spring-forward night is 30 minutes',
      window: { start: '02:00', end: '03:00', timeZone: 'Australia/Lord_Howe' },
      at: '2026-10-03T15:45:00Z',
      opens: '2026-10-03T15:30:00Z',
      closes: '2026-10-03T16:00:00Z',
    },
    {
      name: 'whole days that touch are one window',
      window: { days: ['mon', 'tue'], start: '00:00', end: '24:00' },
      at: '2026-03-03T12:00:00Z',
      opens: '2026-03-02T00:00:00Z',
      closes: '2026-03-04T00:00:00Z',
    },
    {
      name: 'touching whole days join across the week boundary',
      window: { days: ['sat', 'sun', 'mon'], start: '00:00', end: '24:00' },
      at: '2026-03-08T12:00:00Z',
      opens: '2026-03-07T00:00:00Z',
      closes: '2026-03-10T00:00:00Z',
    },
  ])('$name', ({ window, at, opens, closes }) => {
    const span = windowContaining(windowOf(window), Date.parse(at));
    expect(span && { opens: iso(span.opensAt), closes: iso(span.closesAt) }).toEqual({ opens: instant(opens), closes: instant(closes) });
  });

  it('is null while closed', () => {
    expect(windowContaining(windowOf(nightly), Date.parse('2026-03-02T06:00:00Z'))).toBeNull();
  });
});

describe('nextWindowOpening', () => {
  it.each([
    { name: 'later the same day', window: nightly, after: '2026-03-02T00:00:00Z', expected: '2026-03-02T01:00:00Z' },
    { name: 'at the opening instant: the next opening', window: nightly, after: '2026-03-02T01:00:00Z', expected: '2026-03-03T01:00:00Z' },
    { name: 'inside a window: the next opening', window: nightly, after: '2026-03-02T03:00:00Z', expected: '2026-03-03T01:00:00Z' },
    { name: 'at the closing instant', window: nightly, after: '2026-03-02T05:00:00Z', expected: '2026-03-03T01:00:00Z' },
    { name: 'skips unlisted days', window: { ...nightly, days: ['thu'] }, after: '2026-03-02T00:00:00Z', expected: '2026-03-05T01:00:00Z' },
    { name: 'inside an overnight spill: next week', window: fridayNight, after: '2026-03-07T03:00:00Z', expected: '2026-03-13T22:00:00Z' },
    {
      name: 'inside joined whole days: after the joined window',
      window: { days: ['mon', 'tue'], start: '00:00', end: '24:00' },
      after: '2026-03-02T12:00:00Z',
      expected: '2026-03-09T00:00:00Z',
    },
    {
      name: 'US spring-forward: the 02:30 opening happens at 03:30',
      window: { start: '02:30', end: '04:00', timeZone: 'America/New_York' },
      after: '2026-03-08T05:00:00Z',
      expected: '2026-03-08T07:30:00Z',
    },
    {
      name: 'US fall-back: inside the window, the repeated 01:30 does not open it again',
      window: { start: '01:30', end: '03:00', timeZone: 'America/New_York' },
      after: '2026-11-01T05:40:00Z',
      expected: '2026-11-02T06:30:00Z',
    },
    {
      name: 'EU spring-forward: a window wholly in the gap opens a gap later',
      window: { start: '02:10', end: '02:50', timeZone: 'Europe/Berlin' },
      after: '2026-03-28T23:00:00Z',
      expected: '2026-03-29T01:10:00Z',
    },
    {
      name: 'US spring-forward: a window emptied by the gap opens the next night',
      window: { start: '02:30', end: '03:15', timeZone: 'America/New_York' },
      after: '2026-03-08T05:00:00Z',
      expected: '2026-03-09T06:30:00Z',
    },
    {
      name: 'EU fall-back: the repeated 02:30 opens once',
      window: { start: '02:30', end: '02:45', timeZone: 'Europe/Berlin' },
      after: '2026-10-25T00:31:00Z',
      expected: '2026-10-26T01:30:00Z',
    },
    {
      name: 'Lord Howe: 02:00 in the 30-minute gap opens at 02:30',
      window: { start: '02:00', end: '03:00', timeZone: 'Australia/Lord_Howe' },
      after: '2026-10-03T12:00:00Z',
      expected: '2026-10-03T15:30:00Z',
    },
    {
      name: 'Nuuk: a 23:30 opening in a gap that ends at midnight opens at 00:30 on the next date',
      window: { start: '23:30', end: '01:00', timeZone: 'America/Nuuk' },
      after: '2026-03-29T01:10:00Z',
      expected: '2026-03-29T01:30:00Z',
    },
  ])('$name', ({ window, after, expected }) => {
    expect(iso(nextWindowOpening(windowOf(window), Date.parse(after)))).toBe(instant(expected));
  });
});

describe('nextWindowChange', () => {
  it.each([
    { name: 'closed: the next change is the opening', window: nightly, at: '2026-03-02T06:00:00Z', open: true, expected: '2026-03-03T01:00:00Z' },
    { name: 'open: the next change is the close', window: nightly, at: '2026-03-02T01:00:00Z', open: false, expected: '2026-03-02T05:00:00Z' },
    { name: 'at the closing instant: the next opening', window: nightly, at: '2026-03-02T05:00:00Z', open: true, expected: '2026-03-03T01:00:00Z' },
    {
      name: 'joined whole days close once, not at every midnight',
      window: { days: ['mon', 'tue', 'wed'], start: '00:00', end: '24:00' },
      at: '2026-03-02T10:00:00Z',
      open: false,
      expected: '2026-03-05T00:00:00Z',
    },
    {
      name: 'US fall-back: closes at 05:00 EST',
      window: { ...nightly, timeZone: 'America/New_York' },
      at: '2026-11-01T05:00:00Z',
      open: false,
      expected: '2026-11-01T10:00:00Z',
    },
  ])('$name', ({ window, at, open, expected }) => {
    const change = nextWindowChange(windowOf(window), Date.parse(at));
    expect({ open: change.open, at: iso(change.at) }).toEqual({ open, at: instant(expected) });
  });
});

describe('properties', () => {
  const zones = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'America/Santiago'];
  const clockTime = fc
    .tuple(fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 10, 15, 30, 45, 59))
    .map(([hour, minute]) => `${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}`);
  const anyWindow = fc
    .record({
      days: fc.subarray([...DAYS], { minLength: 1 }),
      start: clockTime,
      end: fc.oneof(clockTime, fc.constant('24:00')),
      timeZone: fc.constantFrom(...zones),
    })
    .map((input) => maintenanceWindowSchema.safeParse(input))
    .filter((result) => result.success)
    .map((result) => result.data!);
  // Random instants in 2026, and instants within two days of a DST change in one of the zones.
  const transitions = ['2026-03-08T07:00:00Z', '2026-11-01T06:00:00Z', '2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z', '2026-10-03T15:30:00Z'];
  const anyInstant = fc.oneof(
    fc.integer({ min: Date.parse('2026-01-01T00:00:00Z'), max: Date.parse('2027-01-01T00:00:00Z') }),
    fc.tuple(fc.constantFrom(...transitions), fc.integer({ min: -2 * 86_400_000, max: 2 * 86_400_000 })).map(([at, offset]) => Date.parse(at) + offset),
  );

  it('nextWindowOpening is after the instant, inside the window, and a real opening', () => {
    fc.assert(
      fc.property(anyWindow, anyInstant, (window, at) => {
        const opening = nextWindowOpening(window, at);
        expect(opening).toBeGreaterThan(at);
        expect(isWithinWindow(window, opening)).toBe(true);
        expect(isWithinWindow(window, opening - 1)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('nextWindowChange flips the state, and the window containing an instant ends at that change', () => {
    fc.assert(
      fc.property(anyWindow, anyInstant, (window, at) => {
        const change = nextWindowChange(window, at);
        expect(change.at).toBeGreaterThan(at);
        expect(isWithinWindow(window, at)).toBe(!change.open);
        expect(isWithinWindow(window, change.at)).toBe(change.open);
        expect(isWithinWindow(window, change.at - 1)).toBe(!change.open);
        const span = windowContaining(window, at);
        if (span) expect(span.opensAt <= at && at < span.closesAt && span.closesAt === change.at).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
