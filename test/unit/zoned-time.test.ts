import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addLocalDays,
  dateOfEpochDay,
  daysInMonth,
  epochDayOf,
  fromZoned,
  fromZonedOnDate,
  isValidTimeZone,
  parseIsoInstant,
  timeZoneSchema,
  toZoned,
  weekdayOf,
} from '../../src/engine/zoned-time.ts';

const iso = (ms: number) => new Date(ms).toISOString();
const instant = (text: string) => iso(Date.parse(text));

describe('isValidTimeZone', () => {
  it.each([
    { name: 'UTC', zone: 'UTC', valid: true },
    { name: 'a canonical IANA name', zone: 'America/New_York', valid: true },
    { name: 'a zone with a 30-minute DST shift', zone: 'Australia/Lord_Howe', valid: true },
    { name: 'an IANA alias', zone: 'US/Eastern', valid: true },
    { name: 'an unknown name', zone: 'Mars/Olympus', valid: false },
    { name: 'the empty string', zone: '', valid: false },
  ])('$name', ({ zone, valid }) => {
    expect(isValidTimeZone(zone)).toBe(valid);
  });

  it('the schema names the unknown zone', () => {
    const result = timeZoneSchema.safeParse('Mars/Olympus');
    expect(result.error?.issues[0]?.message).toBe('unknown time zone "Mars/Olympus"');
  });
});

describe('toZoned', () => {
  it.each([
    { name: 'the epoch in UTC, a Thursday', at: '1970-01-01T00:00:00Z', zone: 'UTC', wall: [1970, 1, 1, 0, 0, 0, 4] },
    { name: 'New York, the last second of EST', at: '2026-03-08T06:59:59Z', zone: 'America/New_York', wall: [2026, 3, 8, 1, 59, 59, 0] },
    { name: 'New York, the first second of EDT', at: '2026-03-08T07:00:00Z', zone: 'America/New_York', wall: [2026, 3, 8, 3, 0, 0, 0] },
    { name: 'Berlin, first 02:30 on fall-back night (CEST)', at: '2026-10-25T00:30:00Z', zone: 'Europe/Berlin', wall: [2026, 10, 25, 2, 30, 0, 0] },
    { name: 'Berlin, second 02:30 on fall-back night (CET)', at: '2026-10-25T01:30:00Z', zone: 'Europe/Berlin', wall: [2026, 10, 25, 2, 30, 0, 0] },
    { name: 'Lord Howe jumps from 02:00 to 02:30', at: '2026-10-03T15:30:00Z', zone: 'Australia/Lord_Howe', wall: [2026, 10, 4, 2, 30, 0, 0] },
    { name: 'Kolkata, a half-hour offset', at: '2026-01-01T00:00:00Z', zone: 'Asia/Kolkata', wall: [2026, 1, 1, 5, 30, 0, 4] },
    { name: 'a date line crossing: Auckland is already in the next day', at: '2026-07-01T20:00:00Z', zone: 'Pacific/Auckland', wall: [2026, 7, 2, 8, 0, 0, 4] },
  ])('$name', ({ at, zone, wall }) => {
    const [year, month, day, hour, minute, second, weekday] = wall;
    expect(toZoned(Date.parse(at), zone)).toEqual({ year, month, day, hour, minute, second, weekday });
  });
});

describe('fromZoned', () => {
  it.each([
    { name: 'UTC', zone: 'UTC', wall: [2026, 7, 4, 12, 0], expected: '2026-07-04T12:00:00Z' },
    { name: 'New York in summer (EDT)', zone: 'America/New_York', wall: [2026, 7, 4, 12, 0], expected: '2026-07-04T16:00:00Z' },
    { name: 'New York, just before the spring gap', zone: 'America/New_York', wall: [2026, 3, 8, 1, 59], expected: '2026-03-08T06:59:00Z' },
    { name: 'New York, 02:00 in the gap moves forward to 03:00', zone: 'America/New_York', wall: [2026, 3, 8, 2, 0], expected: '2026-03-08T07:00:00Z' },
    { name: 'New York, 02:30 in the gap moves forward to 03:30', zone: 'America/New_York', wall: [2026, 3, 8, 2, 30], expected: '2026-03-08T07:30:00Z' },
    { name: 'New York, 03:00 right after the gap', zone: 'America/New_York', wall: [2026, 3, 8, 3, 0], expected: '2026-03-08T07:00:00Z' },
    { name: 'New York, repeated 01:30 resolves to the earlier (EDT)', zone: 'America/New_York', wall: [2026, 11, 1, 1, 30], expected: '2026-11-01T05:30:00Z' },
    { name: 'New York, 02:00 after fall-back (EST)', zone: 'America/New_York', wall: [2026, 11, 1, 2, 0], expected: '2026-11-01T07:00:00Z' },
    { name: 'Berlin, 02:30 in the spring gap moves to 03:30 CEST', zone: 'Europe/Berlin', wall: [2026, 3, 29, 2, 30], expected: '2026-03-29T01:30:00Z' },
    { name: 'Berlin, repeated 02:30 resolves to the earlier (CEST)', zone: 'Europe/Berlin', wall: [2026, 10, 25, 2, 30], expected: '2026-10-25T00:30:00Z' },
    { name: 'Lord Howe, 02:15 in the 30-minute gap moves to 02:45', zone: 'Australia/Lord_Howe', wall: [2026, 10, 4, 2, 15], expected: '2026-10-03T15:45:00Z' },
    { name: 'Lord Howe, repeated 01:45 resolves to the earlier (+11)', zone: 'Australia/Lord_Howe', wall: [2026, 4, 5, 1, 45], expected: '2026-04-04T14:45:00Z' },
    { name: 'Santiago, midnight in a gap that starts at midnight', zone: 'America/Santiago', wall: [2026, 9, 6, 0, 0], expected: '2026-09-06T04:00:00Z' },
    { name: 'Nuuk, 23:30 in a gap that ends at midnight moves to the next date', zone: 'America/Nuuk', wall: [2026, 3, 28, 23, 30], expected: '2026-03-29T01:30:00Z' },
    { name: 'overflowing minutes roll into the next day', zone: 'America/New_York', wall: [2026, 3, 7, 0, 24 * 60 + 150], expected: '2026-03-08T07:30:00Z' },
    { name: 'year 1 (Go zero time) is not read as 1901', zone: 'UTC', wall: [1, 1, 1, 0, 0], expected: '0001-01-01T00:00:00Z' },
  ])('$name', ({ zone, wall, expected }) => {
    const [year = 0, month = 0, day = 0, hour = 0, minute = 0] = wall;
    expect(iso(fromZoned({ year, month, day, hour, minute }, zone))).toBe(instant(expected));
  });

  const zones = ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Lord_Howe', 'America/Santiago', 'Asia/Kolkata'];
  const transitions2026 = [
    ['America/New_York', '2026-03-08T07:00:00Z'],
    ['America/New_York', '2026-11-01T06:00:00Z'],
    ['Europe/Berlin', '2026-03-29T01:00:00Z'],
    ['Europe/Berlin', '2026-10-25T01:00:00Z'],
    ['Australia/Lord_Howe', '2026-04-04T15:00:00Z'],
    ['Australia/Lord_Howe', '2026-10-03T15:30:00Z'],
    ['America/Santiago', '2026-04-05T03:00:00Z'],
    ['America/Santiago', '2026-09-06T04:00:00Z'],
  ] as const;
  const anyMinuteOf2026 = fc.record({
    zone: fc.constantFrom(...zones),
    at: fc.integer({ min: Date.parse('2026-01-01T00:00:00Z') / 60_000, max: Date.parse('2027-01-01T00:00:00Z') / 60_000 }).map((minute) => minute * 60_000),
  });
  const minuteNearATransition = fc
    .tuple(fc.constantFrom(...transitions2026), fc.integer({ min: -180, max: 180 }))
    .map(([[zone, transition], minutes]) => ({ zone, at: Date.parse(transition) + minutes * 60_000 }));

  it('reads back any instant as the earliest instant with the same wall time', () => {
    fc.assert(
      fc.property(fc.oneof(anyMinuteOf2026, minuteNearATransition), ({ zone, at }) => {
        const wall = toZoned(at, zone);
        const back = fromZoned(wall, zone);
        expect(back).toBeLessThanOrEqual(at);
        expect(toZoned(back, zone)).toEqual(wall);
      }),
      { numRuns: 500 },
    );
  });
});

describe('fromZonedOnDate', () => {
  const times = [
    { hour: 0, minute: 0 },
    { hour: 1, minute: 30 },
    { hour: 2, minute: 30 },
    { hour: 3, minute: 30 },
    { hour: 23, minute: 59 },
  ];

  it.each([
    { name: 'an ordinary day in New York', zone: 'America/New_York', date: { year: 2026, month: 6, day: 1 } },
    { name: 'spring-forward day in New York', zone: 'America/New_York', date: { year: 2026, month: 3, day: 8 } },
    { name: 'fall-back day in New York', zone: 'America/New_York', date: { year: 2026, month: 11, day: 1 } },
    { name: 'the day before spring-forward in Berlin', zone: 'Europe/Berlin', date: { year: 2026, month: 3, day: 28 } },
    { name: 'spring-forward day on Lord Howe', zone: 'Australia/Lord_Howe', date: { year: 2026, month: 10, day: 4 } },
  ])('agrees with fromZoned: $name', ({ zone, date }) => {
    expect(fromZonedOnDate(date, times, zone)).toEqual(times.map((time) => fromZoned({ ...date, ...time }, zone)));
  });
});

describe('calendar helpers', () => {
  it.each([
    { name: 'into a leap day', date: { year: 2028, month: 2, day: 28 }, days: 1, expected: { year: 2028, month: 2, day: 29 } },
    { name: 'over February in a common year', date: { year: 2026, month: 2, day: 28 }, days: 1, expected: { year: 2026, month: 3, day: 1 } },
    { name: 'over the year end', date: { year: 2026, month: 12, day: 31 }, days: 1, expected: { year: 2027, month: 1, day: 1 } },
    { name: 'backwards over the year end', date: { year: 2026, month: 1, day: 1 }, days: -1, expected: { year: 2025, month: 12, day: 31 } },
    { name: 'two weeks', date: { year: 2026, month: 3, day: 1 }, days: 14, expected: { year: 2026, month: 3, day: 15 } },
  ])('addLocalDays: $name', ({ date, days, expected }) => {
    expect(addLocalDays(date, days)).toEqual(expected);
  });

  it.each([
    { name: 'the biweekly anchor 1970-01-04 is a Sunday', date: { year: 1970, month: 1, day: 4 }, weekday: 0 },
    { name: '1969-12-31 (before the epoch) is a Wednesday', date: { year: 1969, month: 12, day: 31 }, weekday: 3 },
    { name: 'US spring-forward 2026-03-08 is a Sunday', date: { year: 2026, month: 3, day: 8 }, weekday: 0 },
    { name: '2026-03-06 is a Friday', date: { year: 2026, month: 3, day: 6 }, weekday: 5 },
  ])('weekdayOf: $name', ({ date, weekday }) => {
    expect(weekdayOf(date)).toBe(weekday);
  });

  it.each([
    { name: 'February of a leap year', year: 2028, month: 2, days: 29 },
    { name: 'February of a common year', year: 2026, month: 2, days: 28 },
    { name: 'February 1900 (century, not leap)', year: 1900, month: 2, days: 28 },
    { name: 'February 2000 (divisible by 400, leap)', year: 2000, month: 2, days: 29 },
    { name: 'April', year: 2026, month: 4, days: 30 },
    { name: 'December', year: 2026, month: 12, days: 31 },
  ])('daysInMonth: $name', ({ year, month, days }) => {
    expect(daysInMonth(year, month)).toBe(days);
  });

  it('epochDayOf and dateOfEpochDay are inverse, with 1970-01-04 as day 3', () => {
    expect(epochDayOf({ year: 1970, month: 1, day: 4 })).toBe(3);
    fc.assert(
      fc.property(fc.integer({ min: -1_000_000, max: 1_000_000 }), (day) => {
        expect(epochDayOf(dateOfEpochDay(day))).toBe(day);
      }),
    );
  });
});

describe('parseIsoInstant', () => {
  it.each([
    { name: 'UTC with Z', text: '2026-03-08T10:00:00Z', expected: '2026-03-08T10:00:00Z' },
    { name: 'an offset', text: '2026-03-08T10:00:00+01:00', expected: '2026-03-08T09:00:00Z' },
    { name: 'fractional seconds', text: '2026-03-08T10:00:00.250Z', expected: '2026-03-08T10:00:00.250Z' },
    { name: 'no seconds', text: '2026-03-08T10:00Z', expected: '2026-03-08T10:00:00Z' },
    { name: "Palette's zero value", text: '0001-01-01T00:00:00.000Z', expected: '0001-01-01T00:00:00Z' },
  ])('reads $name', ({ text, expected }) => {
    expect(iso(parseIsoInstant(text) ?? Number.NaN)).toBe(instant(expected));
  });

  it.each([
    { name: 'no offset (would depend on the host zone)', text: '2026-03-08T10:00:00' },
    { name: 'a date only', text: '2026-03-08' },
    { name: 'February 30 (Date.parse reads it as March 2)', text: '2026-02-30T00:00:00Z' },
    { name: 'hour 24', text: '2026-03-08T24:00:00Z' },
    { name: 'words', text: 'tomorrow' },
    { name: 'the empty string', text: '' },
  ])('refuses $name', ({ text }) => {
    expect(parseIsoInstant(text)).toBeNull();
  });
});
