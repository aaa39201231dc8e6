/**
 * Prometheus metrics in the text exposition format, written by hand: a few counters and one histogram do not need a
 * client library.
 */
const ACK_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 3000];

export class BotMetrics {
  readonly #counters = new Map<string, number>();
  readonly #ackBuckets = ACK_BUCKETS_MS.map(() => 0);
  #ackCount = 0;
  #ackSumMs = 0;

  count(name: 'commands' | 'refusals' | 'decisions' | 'runs_finished' | 'replays_refused', labels: Record<string, string>): void {
    const key = `patchpilot_bot_${name}_total{${Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;
    this.#counters.set(key, (this.#counters.get(key) ?? 0) + 1);
  }

  ack(ms: number): void {
    this.#ackCount += 1;
    this.#ackSumMs += ms;
    ACK_BUCKETS_MS.forEach((bound, i) => {
      if (ms <= bound) this.#ackBuckets[i] = (this.#ackBuckets[i] ?? 0) + 1;
    });
  }

  render(): string {
    const lines = ['# HELP patchpilot_bot_ack_seconds Time from a slash command arriving to its acknowledgement.', '# TYPE patchpilot_bot_ack_seconds histogram'];
    ACK_BUCKETS_MS.forEach((bound, i) => lines.push(`patchpilot_bot_ack_seconds_bucket{le="${bound / 1000}"} ${this.#ackBuckets[i]}`));
    lines.push(`patchpilot_bot_ack_seconds_bucket{le="+Inf"} ${this.#ackCount}`, `patchpilot_bot_ack_seconds_sum ${this.#ackSumMs / 1000}`, `patchpilot_bot_ack_seconds_count ${this.#ackCount}`);
    const names = new Set([...this.#counters.keys()].map((k) => k.slice(0, k.indexOf('{'))));
    for (const name of names) {
      lines.push(`# TYPE ${name} counter`);
      for (const [key, value] of this.#counters) if (key.startsWith(`${name}{`)) lines.push(`${key} ${value}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
