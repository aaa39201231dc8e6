/**
 * The scheduler of src/service/schedules.ts, in virtual time: a schedule is written to the store before it is armed,
 * a new scheduler on the same database (a restart) restores it from the table and fires on time, a fire while a run
 * of the cluster is active is skipped, "off" removes it, and an invalid schedule changes nothing.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/engine/clock.ts';
import { Scheduler, type ScheduleEvent, type ScheduleSetting } from '../../src/service/schedules.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { T0 } from '../helpers/fixtures.ts';
import { makeScratchDir, removeScratchDir } from '../helpers/scratch.ts';

const TEN_MINUTES = 10 * 60_000;
const setting: ScheduleSetting = { spec: { kind: 'cron', expression: '*/10 * * * *' }, channel: 'C1', requestedBy: 'U1' };

let dir: string;
let path: string;
const stores: Store[] = [];
beforeEach(() => {
  dir = makeScratchDir('scheduler');
  path = join(dir, 'pp.db');
});
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  removeScratchDir(dir);
});

/** A scheduler of cluster prod on `store`, recording what it asks for and what it reports. */
function scheduler(store: Store | null, clock: VirtualClock) {
  const fired: Array<{ cluster: string; setting: ScheduleSetting; at: number }> = [];
  const events: ScheduleEvent[] = [];
  let n = 0;
  const s = new Scheduler({
    cluster: 'prod',
    store,
    clock,
    fire: async (cluster, asked) => {
      fired.push({ cluster, setting: asked, at: clock.now() });
      return { runId: `run-${++n}` };
    },
    onEvent: (event) => events.push(event),
  });
  return { scheduler: s, fired, events };
}

function open(): Store {
  const store = openStore(path);
  stores.push(store);
  return store;
}

/** Lets the fire's promise chain (fire, report, re-arm) settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('the scheduler', () => {
  it('writes the schedule to the store and fires at each fire time', async () => {
    const clock = new VirtualClock(T0);
    const store = open();
    const { scheduler: s, fired, events } = scheduler(store, clock);
    expect(s.set(setting)).toBe(T0 + TEN_MINUTES);
    expect(store.getSchedule('prod')).toMatchObject({ spec: setting.spec, channel: 'C1', requestedBy: 'U1', updatedAt: T0 });
    clock.increment(TEN_MINUTES - 1);
    expect(fired).toEqual([]);
    clock.increment(1);
    await settle();
    clock.increment(TEN_MINUTES);
    await settle();
    expect(fired).toEqual([
      { cluster: 'prod', setting, at: T0 + TEN_MINUTES },
      { cluster: 'prod', setting, at: T0 + 2 * TEN_MINUTES },
    ]);
    expect(events.map((e) => e.type === 'fired' && e.runId)).toEqual(['run-1', 'run-2']);
    s.stop();
  });

  it('is restored from the table after a restart, and fires on time', async () => {
    const clock = new VirtualClock(T0);
    const first = scheduler(open(), clock);
    first.scheduler.set(setting);
    first.scheduler.stop();
    stores.pop()!.close();

    clock.increment(3 * 60_000);
    const second = scheduler(open(), clock);
    expect(second.scheduler.setting).toBeNull();
    expect(second.scheduler.restore()).toEqual(setting);
    expect(second.scheduler.setting).toEqual(setting);
    clock.increment(TEN_MINUTES - 3 * 60_000);
    await settle();
    expect(second.fired).toEqual([{ cluster: 'prod', setting, at: T0 + TEN_MINUTES }]);
    // The stopped scheduler of the first process fires nothing.
    expect(first.fired).toEqual([]);
    second.scheduler.stop();
  });

  it('skips a fire while a run of the cluster is active, and fires again once it is done', async () => {
    const clock = new VirtualClock(T0);
    const store = open();
    store.createRun({ id: 'run-waiting', cluster: 'prod', hash: 'h', plan: {}, trigger: {}, requestedBy: 'U9', createdAt: T0 });
    store.createRun({ id: 'run-elsewhere', cluster: 'dev', hash: 'h', plan: {}, trigger: {}, requestedBy: 'U9', createdAt: T0 });
    const { scheduler: s, fired, events } = scheduler(store, clock);
    s.set(setting);
    clock.increment(TEN_MINUTES);
    await settle();
    expect(fired).toEqual([]);
    expect(events).toEqual([{ type: 'skipped', cluster: 'prod', setting, activeRun: { id: 'run-waiting', status: 'scheduled' } }]);

    store.commit({ runId: 'run-waiting', at: clock.now(), run: { status: 'done', outcome: 'cancelled', reason: 'test', finishedAt: clock.now() } });
    clock.increment(TEN_MINUTES);
    await settle();
    expect(fired.map((f) => f.at)).toEqual([T0 + 2 * TEN_MINUTES]);
    s.stop();
  });

  it('"off" removes the schedule from the store and stops the fires', async () => {
    const clock = new VirtualClock(T0);
    const store = open();
    const { scheduler: s, fired } = scheduler(store, clock);
    s.set(setting);
    expect(s.set(null)).toBeNull();
    expect(store.getSchedule('prod')).toBeNull();
    expect(s.setting).toBeNull();
    clock.increment(3 * TEN_MINUTES);
    await settle();
    expect(fired).toEqual([]);
  });

  it('refuses an invalid schedule before anything changes', () => {
    const clock = new VirtualClock(T0);
    const store = open();
    const { scheduler: s } = scheduler(store, clock);
    s.set(setting);
    expect(() => s.set({ ...setting, spec: { kind: 'cron', expression: 'every tuesday' } })).toThrow(/the schedule is not valid/);
    expect(store.getSchedule('prod')?.spec).toEqual(setting.spec);
    expect(s.setting).toEqual(setting);
    s.stop();
  });

  it('without a store, keeps the schedule for the life of the process', async () => {
    const clock = new VirtualClock(T0);
    const { scheduler: s, fired } = scheduler(null, clock);
    expect(s.set(setting)).toBe(T0 + TEN_MINUTES);
    expect(s.restore()).toBeNull();
    clock.increment(TEN_MINUTES);
    await settle();
    expect(fired).toHaveLength(1);
    s.stop();
  });
});
