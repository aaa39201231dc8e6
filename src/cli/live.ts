/**
 * The live view of a run: in a terminal, one line per node (step and time in it) under a fleet progress bar, redrawn
 * in place; elsewhere (CI logs, pipes) one plain line per event, nothing redrawn.
 */
import type { Writable } from 'node:stream';
import type { FleetOutput } from '../engine/fleet.machine.ts';
import type { NodeOutcome } from '../engine/node.machine.ts';
import type { RunEvent } from '../service/orchestrator.ts';
import { bar, clockTime, duration, paint, table } from './format.ts';

interface NodeLine {
  name: string;
  step: string;
  since: number;
  outcome: NodeOutcome | null;
}

export interface LiveViewOptions {
  out: Writable;
  tty: boolean;
  title: string;
  now: () => number;
  /** The clock is simulated (sim, demo): the header says so; a real run shows plain time. */
  virtualTime?: boolean;
  /** Most node lines to draw in a terminal (default 40). */
  maxRows?: number;
}

export class LiveView {
  readonly #options: LiveViewOptions;
  readonly #nodes = new Map<string, NodeLine>();
  readonly #paint: ReturnType<typeof paint>;
  #fleetState = 'scheduled';
  #total = 0;
  #drawnLines = 0;

  constructor(options: LiveViewOptions) {
    this.#options = options;
    this.#paint = paint(options.tty);
  }

  /** Nodes known before the run selects them (so the view shows the queue from the start). */
  expect(names: string[]): void {
    for (const name of names) this.#nodes.set(name, { name, step: 'queued', since: this.#options.now(), outcome: null });
    this.#total = names.length;
  }

  /** The reason last printed for a blocked run, while it stays blocked. */
  #blockedReason: string | null = null;

  handle(event: RunEvent): void {
    switch (event.type) {
      case 'run.state': {
        this.#fleetState = event.state;
        // A blocked run looks again every 30 s (gating, blocked, gating, ...): one line per reason, not per look.
        const gating = event.tags.includes('gating');
        const blocked = event.tags.includes('blocked') || gating;
        const repeat = blocked && (gating || event.detail === this.#blockedReason);
        if (event.tags.includes('blocked')) this.#blockedReason = event.detail;
        else if (!blocked) this.#blockedReason = null;
        if (!repeat) this.#plain(`${clockTime(event.at)}  run      ${event.state}${event.detail ? `: ${event.detail}` : ''}`);
        break;
      }
      case 'node.step':
        this.#nodes.set(event.node, { name: event.node, step: event.step, since: event.at, outcome: null });
        this.#plain(`${clockTime(event.at)}  ${event.node.padEnd(14)} ${event.step}`);
        break;
      case 'node.finished': {
        const o = event.outcome;
        this.#nodes.set(o.node, { name: o.node, step: o.result, since: o.startedAt, outcome: o });
        const detail = o.error ? ` ${o.error.code}: ${o.error.message}` : o.rebooted ? ' (rebooted)' : o.rebootPending ? ' (reboot pending)' : '';
        this.#plain(`${clockTime(event.at)}  ${o.node.padEnd(14)} ${o.result}${detail}`);
        break;
      }
      case 'run.finished':
        this.#total = event.output.selected.length;
        break;
    }
  }

  /** Redraws the whole block in place (terminal only). */
  draw(): void {
    if (!this.#options.tty) return;
    const p = this.#paint;
    const now = this.#options.now();
    const lines = [...this.#nodes.values()];
    const finished = lines.filter((l) => l.outcome !== null).length;
    const failed = lines.filter((l) => l.outcome?.result === 'failed').length;
    const total = Math.max(this.#total, lines.length);
    const out = [
      `${p('bold', this.#options.title)}  ${p('dim', `${this.#options.virtualTime === false ? 'time' : 'virtual time'} ${clockTime(now)}`)}  ${this.#fleetState}`,
      `${bar(finished, total)} ${finished}/${total} nodes${failed ? p('red', `  ${failed} failed`) : ''}`,
      ...this.#visible(lines).map((l) => (typeof l === 'string' ? p('dim', l) : this.#nodeLine(l, now))),
    ];
    const up = this.#drawnLines > 0 ? `\u001b[${this.#drawnLines}F` : '';
    this.#options.out.write(`${up}${out.map((l) => `\u001b[2K${l}`).join('\n')}\n`);
    this.#drawnLines = out.length;
  }

  /**
   * Every node while they fit on a screen; beyond that the nodes in flight and the failures, and a count of the rest,
   * so that a 10,000-node run stays a dozen lines.
   */
  #visible(lines: NodeLine[]): Array<NodeLine | string> {
    const limit = this.#options.maxRows ?? 40;
    if (lines.length <= limit) return lines;
    const active = lines.filter((l) => l.outcome === null && l.step !== 'queued');
    const failed = lines.filter((l) => l.outcome?.result === 'failed');
    const shownFailed = failed.slice(-Math.max(0, limit - active.length));
    const rest = lines.length - active.length - shownFailed.length;
    return [...active, ...shownFailed, `  … ${rest} more (${lines.filter((l) => l.outcome !== null && l.outcome.result !== 'failed').length} finished)`];
  }

  #nodeLine(line: NodeLine, now: number): string {
    const p = this.#paint;
    const name = line.name.padEnd(14);
    if (!line.outcome) {
      if (line.step === 'queued') return `  ${name} ${p('dim', 'queued')}`;
      return `  ${name} ${p('cyan', `> ${line.step.padEnd(12)}`)} ${duration(now - line.since)}`;
    }
    const o = line.outcome;
    const took = duration(o.finishedAt - o.startedAt);
    if (o.result === 'failed') return `  ${name} ${p('red', `x failed      `)} ${took}  ${o.error?.code ?? ''}`;
    const note = o.rebooted ? 'rebooted' : o.rebootPending ? 'reboot pending' : o.note ?? '';
    return `  ${name} ${p('green', `✓ ${o.result.padEnd(12)}`)} ${took}  ${p('dim', note)}`;
  }

  #plain(line: string): void {
    if (!this.#options.tty) this.#options.out.write(`${line}\n`);
  }
}

export function summaryTable(outcomes: NodeOutcome[]): string {
  const seconds = (ms: number | undefined) => (ms === undefined ? '-' : duration(ms));
  return table(
    ['node', 'result', 'error', 'upgraded', 'reboot', 'drain', 'patch', 'rejoin'],
    outcomes.map((o) => [
      o.node,
      o.result,
      o.error ? o.error.code : '',
      o.report ? String(o.report.upgraded.length) : '-',
      o.rebooted ? 'yes' : o.rebootPending ? 'pending' : 'no',
      seconds(o.phases.drain),
      seconds(o.phases.patch),
      seconds(o.phases.rejoin),
    ]),
  );
}

export function outcomeLine(output: FleetOutput): string {
  const t = output.tally;
  const parts = [`${t.patched} patched`, `${t['no-updates']} without updates`, `${t.failed} failed`];
  if (t.skipped) parts.push(`${t.skipped} skipped`);
  if (t.cancelled) parts.push(`${t.cancelled} cancelled`);
  if (output.notStarted.length) parts.push(`${output.notStarted.length} not started`);
  return `run ${output.runId}: ${output.outcome.toUpperCase()} (${parts.join(', ')})${output.reason ? ` - ${output.reason}` : ''}`;
}
