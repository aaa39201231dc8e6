/**
 * Scheduled runs of one cluster. The schedule lives in the store's schedules table (one row per cluster, written
 * before it is armed, read back at start), and fires on the cluster's clock: each fire asks the front end for a run
 * (the bot posts an approval card in the schedule's channel, as the person who set it), unless a run of the cluster is
 * still active or waiting for approval, in which case that fire is skipped. Without a store a schedule lasts as long
 * as the process.
 */
import type { Clock, TimerId } from '../engine/clock.ts';
import { nextFireTime, scheduleSchema, type Schedule, type ScheduleInput } from '../engine/schedule.ts';
import type { Store } from '../store/store.ts';

/** A cluster's schedule as it was set: when, where each run asks for approval, and who set it (each run's requester). */
export interface ScheduleSetting {
  spec: ScheduleInput;
  channel: string;
  requestedBy: string;
}

export type ScheduleEvent =
  | { type: 'fired'; cluster: string; setting: ScheduleSetting; runId: string }
  | { type: 'skipped'; cluster: string; setting: ScheduleSetting; activeRun: { id: string; status: string } }
  | { type: 'failed'; cluster: string; setting: ScheduleSetting; error: unknown };

export interface SchedulerOptions {
  cluster: string;
  store: Store | null;
  clock: Clock;
  /** Asks for one fire's run; resolves with its id. */
  fire(cluster: string, setting: ScheduleSetting): Promise<{ runId: string }>;
  onEvent?(event: ScheduleEvent): void;
}

interface Armed {
  setting: ScheduleSetting;
  schedule: Schedule;
  timer: TimerId | undefined;
  stopped: boolean;
}

export class Scheduler {
  readonly #options: SchedulerOptions;
  #armed: Armed | null = null;

  constructor(options: SchedulerOptions) {
    this.#options = options;
  }

  /** The schedule in force, or null. */
  get setting(): ScheduleSetting | null {
    return this.#armed?.setting ?? null;
  }

  /**
   * Arms the schedule the store holds for the cluster (at start-up); returns it, or null when there is none. Throws
   * when the stored schedule cannot be read as one (it stays in the table until it is set again).
   */
  restore(): ScheduleSetting | null {
    const record = this.#options.store?.getSchedule(this.#options.cluster) ?? null;
    if (record === null) return null;
    const setting: ScheduleSetting = { spec: record.spec as ScheduleInput, channel: record.channel, requestedBy: record.requestedBy };
    this.#arm(setting, parseSchedule(record.spec, `the stored schedule of cluster ${this.#options.cluster}`));
    return setting;
  }

  /**
   * Sets the cluster's schedule (null: none any more), in the store first, then on the clock; returns the next fire
   * time, or null when it will not fire. An invalid schedule throws before anything changes.
   */
  set(setting: ScheduleSetting | null): number | null {
    const { store, cluster, clock } = this.#options;
    const schedule = setting === null ? null : parseSchedule(setting.spec, 'the schedule');
    if (setting === null) store?.deleteSchedule(cluster);
    else store?.setSchedule({ cluster, spec: setting.spec, channel: setting.channel, requestedBy: setting.requestedBy, updatedAt: clock.now() });
    if (setting === null || schedule === null) this.#disarm();
    return setting === null || schedule === null ? null : this.#arm(setting, schedule);
  }

  /** Stops firing (shutdown); the stored schedule stays for the next start. */
  stop(): void {
    this.#disarm();
  }

  #disarm(): void {
    const armed = this.#armed;
    if (!armed) return;
    armed.stopped = true;
    if (armed.timer !== undefined) this.#options.clock.clearTimeout(armed.timer);
    this.#armed = null;
  }

  /** Arms the next fire of `schedule`; each fire re-arms once its run has been asked for. */
  #arm(setting: ScheduleSetting, schedule: Schedule): number | null {
    const { cluster, clock, store } = this.#options;
    this.#disarm();
    const armed: Armed = { setting, schedule, timer: undefined, stopped: false };
    this.#armed = armed;
    const next = (): number | null => {
      const now = clock.now();
      const at = nextFireTime(schedule, now);
      if (at === null || armed.stopped) return null;
      armed.timer = clock.setTimeout(() => {
        if (armed.stopped) return;
        const active = store?.listRuns({ cluster, active: true, limit: 1 })[0];
        if (active) {
          // One run at a time: a fire while a run is still active (or still waiting for approval) is skipped.
          this.#options.onEvent?.({ type: 'skipped', cluster, setting, activeRun: { id: active.id, status: active.status } });
          next();
          return;
        }
        this.#options
          .fire(cluster, setting)
          .then(({ runId }) => this.#options.onEvent?.({ type: 'fired', cluster, setting, runId }))
          .catch((error: unknown) => this.#options.onEvent?.({ type: 'failed', cluster, setting, error }))
          .finally(() => next());
      }, at - now);
      return at;
    };
    return next();
  }
}

function parseSchedule(spec: unknown, what: string): Schedule {
  const parsed = scheduleSchema.safeParse(spec);
  if (!parsed.success) throw new Error(`${what} is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'schedule'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
