/**
 * `patchpilot sim FILE` and `patchpilot replay FILE`: run a scenario (or a recording) against the simulated cluster
 * with the real engine, show it live, check the expectations, write the recording and, on request, the HTML report.
 * Exit codes (DESIGN.md): 0 expectations hold, 1 they do not, 2 invalid input.
 */
import { join, resolve } from 'node:path';
import { setTimeout as sleepReal } from 'node:timers/promises';
import type { Writable } from 'node:stream';
import { formatSeconds } from '../sim/duration.ts';
import { OS_PROFILES } from '../sim/os.ts';
import { readRecording, recordedBehaviours, scenarioFromRecording } from '../sim/replay.ts';
import { runScenario, type SimResult, type SimRunResult } from '../sim/runner.ts';
import { loadScenario, type Scenario } from '../sim/scenario.ts';
import type { RecordedBehaviour } from '../sim/cluster-state.ts';
import { StalledRunError } from '../service/drive.ts';
import { paint, table } from './format.ts';
import { LiveView } from './live.ts';
import { capHeapGrowthFor } from './heap.ts';
import { writeJson } from './json-stream.ts';
import { checkOutputFile, openOutputStream, writeOutputFile, type TakenFile } from './output-file.ts';

export interface SimOptions {
  json?: boolean;
  seed?: number;
  report?: string;
  /** Where the JSONL recording goes (default .patchpilot/recordings/<scenario>.jsonl); "-" for none. */
  record?: string;
  /** Virtual seconds per real second in a terminal (0: as fast as possible). */
  speed?: number;
}

export interface SimIo {
  out: Writable & { isTTY?: boolean };
}

export const RECORDINGS_DIR = join('.patchpilot', 'recordings');

export async function simCommand(file: string, options: SimOptions, io: SimIo): Promise<number> {
  const scenario = loadScenario(file, options.seed === undefined ? {} : { seed: options.seed });
  return execute(scenario, options, io, undefined, null, { path: file, what: 'the scenario' });
}

export async function replayCommand(file: string, settings: readonly string[], options: SimOptions, io: SimIo): Promise<number> {
  const recording = readRecording(file);
  const scenario = scenarioFromRecording(recording, settings, file);
  return execute(scenario, options, io, recordedBehaviours(recording.observations), recording.result, { path: file, what: 'the recording replayed' });
}

async function execute(
  scenario: Scenario,
  options: SimOptions,
  io: SimIo,
  recorded: Map<string, RecordedBehaviour> | undefined,
  before: SimResult | null,
  input: TakenFile,
): Promise<number> {
  const tty = !options.json && io.out.isTTY === true;
  const p = paint(tty);
  const say = (text: string) => {
    if (!options.json) io.out.write(`${text}\n`);
  };
  // By default a replay records beside its recording; replaying that replay's own recording (as the hint after a
  // replay suggests) must not overwrite it, so its default moves aside.
  const defaultRecord = join(RECORDINGS_DIR, `${scenario.name}${recorded ? '.replay' : ''}.jsonl`);
  const recordDefault = recorded && resolve(defaultRecord) === resolve(input.path) ? join(RECORDINGS_DIR, `${scenario.name}.replay2.jsonl`) : defaultRecord;
  const recordPath = options.record === '-' ? null : (options.record ?? recordDefault);
  // Both outputs are checked before the run, so a mistake in either costs nothing.
  if (options.report) checkOutputFile(options.report, '--report', [input]);
  if (recordPath) checkOutputFile(recordPath, '--record', [input, ...(options.report ? [{ path: options.report, what: 'the --report file' }] : [])]);
  const recorder = recordPath ? openRecorder(recordPath) : null;

  say(`${p('bold', `${recorded ? 'replaying' : 'scenario'} ${scenario.name}`)} (seed ${scenario.seed}, ${scenario.nodes.length} nodes)${scenario.description ? `: ${oneLine(scenario.description)}` : ''}`);
  const speed = options.speed ?? 0;
  const linux = scenario.nodes.filter((n) => OS_PROFILES[n.os].kubernetesOs === 'linux').map((n) => n.name);
  let view: LiveView | null = null;
  let viewRun: string | null = null;
  let clockNow = scenario.startAt;
  let last = scenario.startAt;
  let result: SimResult;
  capHeapGrowthFor(scenario.nodes.length);
  try {
    result = await runScenario(scenario, {
      ...(recorder ? { record: recorder.write } : {}),
      ...(recorded ? { recorded } : {}),
      onEvent: (event) => {
        if (options.json) return;
        if (event.runId !== viewRun) {
          view?.draw();
          viewRun = event.runId;
          view = new LiveView({ out: io.out, tty, title: `run ${event.runId}`, now: () => clockNow });
          // Only nodes that can be selected are shown waiting; a run's selection then fills in the rest.
          if (tty && linux.length <= 40) view.expect(linux);
        }
        view?.handle(event);
      },
      onTick: async (now) => {
        clockNow = now;
        if (!tty || !view) return;
        view.draw();
        if (speed > 0) await sleepReal(Math.min(250, (now - last) / speed));
        last = now;
      },
    });
  } catch (err) {
    try {
      recorder?.close();
    } catch {
      // The run's own failure is the one to report; the recorder has removed its partial file.
    }
    if (err instanceof StalledRunError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  (view as LiveView | null)?.draw();
  recorder?.close();

  if (options.report) {
    // Loaded only when asked for: most runs (CI, tests) never render HTML.
    const { renderReport } = await import('../sim/report.ts');
    writeOutputFile(options.report, '--report', renderReport(result, scenario));
  }
  if (options.json) {
    await writeJson(io.out, result);
    return result.ok ? 0 : 1;
  }
  for (const run of result.runs) say(`\n${runSummary(run, p)}`);
  if (before) say(`\n${comparison(before, result)}`);
  say('');
  if (scenario.expect.length === 0) say(p('dim', recorded ? 'no expectations checked (the plan was changed)' : 'the scenario states no expectations'));
  else if (result.ok) say(p('green', `✓ all expectations hold (${scenario.expect.length} run${scenario.expect.length > 1 ? 's' : ''})`));
  else {
    say(p('red', `✗ ${result.failedExpectations.length} expectation(s) failed:`));
    for (const failure of result.failedExpectations) say(`  - ${failure}`);
  }
  const other = scenario.plan.concurrency === 1 ? 2 : 1;
  if (recordPath) say(p('dim', `recording: ${recordPath}   replay it with another policy: npx patchpilot replay ${recordPath} --set concurrency=${other}`));
  if (options.report) say(p('dim', `report: ${options.report}`));
  return result.ok ? 0 : 1;
}

function runSummary(run: SimRunResult, p: ReturnType<typeof paint>): string {
  const head = `run ${run.runId ?? '-'} (trigger ${run.trigger}): ${p(run.outcome === 'succeeded' ? 'green' : 'red', run.outcome.toUpperCase())}${run.reason ? ` - ${run.reason}` : ''}`;
  if (run.nodes.length === 0) return head;
  const shown = run.nodes.slice(0, 60);
  const rows = shown.map((n) => [
    n.name,
    n.os,
    n.result,
    n.error ?? '',
    n.upgraded.join(' ') || '-',
    n.rebooted ? 'yes' : n.rebootPending ? 'pending' : 'no',
    n.phases.drain ? formatSeconds(n.phases.drain) : '-',
    n.phases.patch ? formatSeconds(n.phases.patch) : '-',
    n.phases.rejoin ? formatSeconds(n.phases.rejoin) : '-',
  ]);
  const more = run.nodes.length > shown.length ? `\n  … and ${run.nodes.length - shown.length} more nodes (see --json or --report)` : '';
  const ratio = run.lowerBoundSeconds > 0 ? (run.makespanSeconds / run.lowerBoundSeconds).toFixed(3) : '-';
  const broken = run.invariants.filter((i) => !i.ok);
  return [
    head,
    table(['node', 'os', 'result', 'error', 'upgraded', 'reboot', 'drain', 'patch', 'rejoin'], rows) + more,
    `makespan ${formatSeconds(run.makespanSeconds)} (lower bound ${formatSeconds(run.lowerBoundSeconds)}, ratio ${ratio}); invariants: ${broken.length === 0 ? 'all hold' : broken.map((i) => `${i.name} BROKEN (${i.detail})`).join('; ')}`,
  ].join('\n');
}

/** What changed between the recorded run and the replay. */
function comparison(before: SimResult, after: SimResult): string {
  const lines = ['recorded vs replayed:'];
  after.runs.forEach((run, i) => {
    const old = before.runs[i];
    if (!old) return;
    lines.push(`  ${run.trigger}: outcome ${old.outcome} -> ${run.outcome}; makespan ${formatSeconds(old.makespanSeconds)} -> ${formatSeconds(run.makespanSeconds)}`);
    for (const node of run.nodes) {
      const was = old.nodes.find((n) => n.name === node.name);
      if (was && (was.result !== node.result || was.error !== node.error)) {
        lines.push(`    ${node.name}: ${was.result}${was.error ? ` ${was.error}` : ''} -> ${node.result}${node.error ? ` ${node.error}` : ''}`);
      }
    }
  });
  return lines.join('\n');
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 140 ? `${flat.slice(0, 137)}...` : flat;
}

/** Appends lines to the recording as they come, so a long run's recording survives an interrupted command. */
function openRecorder(path: string): { write: (line: string) => void; close: () => void } {
  const file = openOutputStream(path, '--record');
  let buffer: string[] = [];
  let size = 0;
  const flush = () => {
    if (buffer.length === 0) return;
    file.write(buffer.join(''));
    buffer = [];
    size = 0;
  };
  return {
    write: (line) => {
      buffer.push(`${line}\n`);
      size += line.length;
      if (size > 1 << 20) flush();
    },
    close: () => {
      flush();
      file.close();
    },
  };
}
