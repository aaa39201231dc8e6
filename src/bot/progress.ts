/**
 * A run's progress in Slack: one thread reply per node as it finishes, the card's status line kept current (at most
 * one edit per interval: chat.update is rate limited), and the result broadcast to the channel at the end. Restored
 * events (a resumed run reporting where it was) and repeated ones (a step retried) post nothing new.
 */
import type { NodeOutcome } from '../engine/node.machine.ts';
import type { FleetOutput, FleetTag } from '../engine/fleet.machine.ts';
import type { RunEvent } from '../service/index.ts';

export interface ProgressSink {
  /** A reply in the card's thread; `broadcast` also shows it in the channel. */
  reply(text: string, broadcast: boolean): Promise<void>;
  /** The card's status line. */
  status(text: string): Promise<void>;
  /**
   * The store's audit head as `SEQ:HASH`, or null: written into the thread's final message, an anchor of the audit log
   * outside the database that `patchpilot audit verify --anchor SEQ:HASH` checks.
   */
  auditHead?(): string | null;
}

export class RunProgress {
  readonly #sink: ProgressSink;
  readonly #intervalMs: number;
  readonly #selected: number;
  readonly #inFlight = new Map<string, string>();
  readonly #finished = new Map<string, NodeOutcome>();
  #chain: Promise<void> = Promise.resolve();
  #lastStatus = '';
  #statusTimer: NodeJS.Timeout | undefined;
  #lastStatusAt = 0;
  #state = 'waiting for approval';
  #done = false;

  constructor(sink: ProgressSink, options: { selected: number; intervalMs: number }) {
    this.#sink = sink;
    this.#intervalMs = options.intervalMs;
    this.#selected = options.selected;
  }

  /** Resolves when every Slack call queued so far has been made. */
  idle(): Promise<void> {
    return this.#chain;
  }

  handle(event: RunEvent): void {
    if (this.#done) return;
    if (event.type === 'run.state') {
      if (event.restored) return;
      this.#state = describeState(event.tags, event.state, event.detail);
      this.#scheduleStatus();
    } else if (event.type === 'node.step') {
      if (event.restored || this.#finished.has(event.node)) return;
      this.#inFlight.set(event.node, event.step);
      this.#scheduleStatus();
    } else if (event.type === 'node.finished') {
      const node = event.outcome.node;
      if (this.#finished.has(node)) return;
      this.#finished.set(node, event.outcome);
      this.#inFlight.delete(node);
      this.#enqueue(() => this.#sink.reply(nodeLine(event.outcome), false));
      this.#scheduleStatus();
    } else {
      this.#done = true;
      if (this.#statusTimer) clearTimeout(this.#statusTimer);
      const line = resultLine(event.output);
      this.#enqueue(() => this.#sink.status(line));
      const failed = event.output.failedNodes.length > 0 ? `\nfailed: ${event.output.failedNodes.map((n) => `\`${n}\``).join(', ')}` : '';
      this.#enqueue(async () => {
        // The run's last records are committed once the current turn of the event loop is over: anchor those.
        await new Promise((resolve) => setImmediate(resolve));
        const head = this.#sink.auditHead?.() ?? null;
        const anchor = head ? `\naudit head: \`${head}\` (check the log against it: \`patchpilot audit verify --anchor ${head}\`)` : '';
        await this.#sink.reply(`${line}${failed}${anchor}`, true);
      });
    }
  }

  #statusText(): string {
    const done = this.#finished.size;
    const failed = [...this.#finished.values()].filter((o) => o.result === 'failed').length;
    const flying = [...this.#inFlight].map(([node, step]) => `\`${node}\` (${step})`).join(', ');
    return `${this.#state} · ${done}/${this.#selected} done${failed ? `, ${failed} failed` : ''}${flying ? ` · in flight: ${flying}` : ''}`;
  }

  #scheduleStatus(): void {
    if (this.#statusTimer || this.#done) return;
    const wait = Math.max(0, this.#lastStatusAt + this.#intervalMs - Date.now());
    this.#statusTimer = setTimeout(() => {
      this.#statusTimer = undefined;
      if (this.#done) return;
      const text = this.#statusText();
      if (text === this.#lastStatus) return;
      this.#lastStatus = text;
      this.#lastStatusAt = Date.now();
      this.#enqueue(() => this.#sink.status(text));
    }, wait);
  }

  #enqueue(call: () => Promise<void>): void {
    // One run's Slack calls go out in order; a failed call (rate limit, network) never stops the ones after it.
    this.#chain = this.#chain.then(call).catch(() => {});
  }
}

/** The card's words for what the run does (from its tags); otherwise the state's own name. */
function describeState(tags: readonly FleetTag[], state: string, detail: string | null): string {
  if (tags.includes('paused')) return 'paused';
  if (tags.includes('blocked')) return `blocked: ${detail ?? 'the health gate or a blocker holds the next node back'}`;
  if (tags.includes('canary-soak')) return 'soaking the canaries';
  if (tags.includes('waiting-for-window')) return 'waiting for the maintenance window';
  if (tags.includes('rolling')) return 'running';
  if (tags.includes('awaiting-approval')) return 'waiting for approval';
  return state;
}

export function nodeLine(outcome: NodeOutcome): string {
  const upgraded = outcome.report?.upgraded.map((u) => u.name) ?? [];
  if (outcome.result === 'failed') {
    return `:x: \`${outcome.node}\` failed at ${outcome.error?.step ?? '?'}: ${outcome.error?.code ?? 'error'}: ${outcome.error?.message ?? ''}`.trimEnd();
  }
  if (outcome.result === 'patched') {
    const packages = upgraded.length > 0 ? `${upgraded.length} package${upgraded.length === 1 ? '' : 's'} (${upgraded.slice(0, 6).join(', ')}${upgraded.length > 6 ? ', …' : ''})` : 'patched';
    return `:white_check_mark: \`${outcome.node}\` patched: ${packages}${outcome.rebooted ? ', rebooted' : ''}${outcome.rebootPending ? ', reboot pending' : ''}`;
  }
  if (outcome.result === 'no-updates') return `:white_check_mark: \`${outcome.node}\` had no updates`;
  return `:heavy_minus_sign: \`${outcome.node}\` ${outcome.result}`;
}

export function resultLine(output: FleetOutput): string {
  const t = output.tally;
  const icon = output.outcome === 'succeeded' ? ':white_check_mark:' : output.outcome === 'cancelled' ? ':no_entry_sign:' : ':warning:';
  return `${icon} run \`${output.runId}\` ${output.outcome.toUpperCase()}: ${t.patched} patched, ${t['no-updates']} without updates, ${t.failed} failed${output.reason ? ` (${output.reason})` : ''}`;
}
