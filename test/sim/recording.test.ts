/** Determinism, recordings and replay. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRecording, recordedBehaviours, scenarioFromRecording } from '../../src/sim/replay.ts';
import { runScenario, type SimResult } from '../../src/sim/runner.ts';
import { loadScenario, type Scenario } from '../../src/sim/scenario.ts';

const fixture = (name: string) => loadScenario(join(import.meta.dirname, '../../fixtures/scenarios', `${name}.yaml`));

async function recorded(scenario: Scenario): Promise<{ text: string; result: SimResult }> {
  const lines: string[] = [];
  const result = await runScenario(scenario, { record: (line) => lines.push(line) });
  return { text: `${lines.join('\n')}\n`, result };
}

/** What a node did, without the run ids (a replay names its runs the same way, but be explicit about it). */
const shape = (result: SimResult) =>
  result.runs.map((run) => ({
    outcome: run.outcome,
    makespan: run.makespanSeconds,
    nodes: run.nodes.map((n) => ({ name: n.name, result: n.result, error: n.error, phases: n.phases, rebooted: n.rebooted, timeline: n.timeline })),
  }));

describe('determinism', () => {
  it('gives the same event log, byte for byte, for the same file and seed', async () => {
    const a = await recorded(fixture('demo'));
    const b = await recorded(fixture('demo'));
    expect(a.text.length).toBeGreaterThan(1000);
    expect(a.text).toBe(b.text);
  });

  it('gives another log for another seed', async () => {
    const scenario = fixture('demo');
    const a = await recorded(scenario);
    const b = await recorded({ ...scenario, seed: scenario.seed + 1 });
    expect(a.text).not.toBe(b.text);
  });
});

describe('replay', () => {
  for (const name of ['demo', 'keyserver-eof']) {
    it(`replays ${name} unchanged with the same outcome and timings`, async () => {
      const original = await recorded(fixture(name));
      const recording = parseRecording(original.text);
      expect(recording.result).toEqual(original.result);
      const replayed = await runScenario(scenarioFromRecording(recording), { recorded: recordedBehaviours(recording.observations) });
      expect(shape(replayed)).toEqual(shape(original.result));
      expect(replayed.ok).toBe(true);
    });
  }

  it('answers "what if" with nodes behaving as recorded: concurrency 1 takes longer and changes no node result', async () => {
    const original = await recorded(fixture('demo'));
    const recording = parseRecording(original.text);
    const serial = await runScenario(scenarioFromRecording(recording, ['concurrency=1']), { recorded: recordedBehaviours(recording.observations) });
    const before = original.result.runs[0]!;
    const after = serial.runs[0]!;
    expect(after.concurrency).toBe(1);
    expect(after.makespanSeconds).toBeGreaterThan(before.makespanSeconds);
    expect(after.nodes.map((n) => [n.name, n.result, n.error])).toEqual(before.nodes.map((n) => [n.name, n.result, n.error]));
    // Each node's own phases are as recorded, whatever the order.
    for (const node of after.nodes) expect(node.phases).toEqual(before.nodes.find((n) => n.name === node.name)!.phases);
    expect(after.invariants.find((i) => i.name === 'one-node-at-a-time')!.ok).toBe(true);
  });

  it('a longer ready timeout in a replay does not revive a node recorded as never coming back', async () => {
    const original = await recorded(fixture('demo'));
    const recording = parseRecording(original.text);
    const replay = await runScenario(scenarioFromRecording(recording, ['readyTimeoutSeconds=3600']), { recorded: recordedBehaviours(recording.observations) });
    const rocky = replay.runs[0]!.nodes.find((n) => n.name === 'rocky-2')!;
    expect(rocky.error).toBe('REJOIN_TIMEOUT');
    expect(rocky.phases.rejoin).toBe(3600);
  });

  it('refuses an edited observation, naming its line and field (it failed inside the engine, or replayed other durations)', async () => {
    const { text } = await recorded(fixture('demo'));
    const lines = text.split('\n');
    const edit = (type: string, change: Record<string, unknown>) => {
      const i = lines.findIndex((l) => l.includes('"line":"observe"') && l.includes(`"type":"${type}"`));
      const edited = [...lines];
      edited[i] = JSON.stringify({ ...JSON.parse(lines[i]!), ...change });
      return { text: edited.join('\n'), line: i + 1 };
    };
    for (const [type, change, problem] of [
      ['patch', { report: { result: 'exploded' } }, 'report.result'],
      ['patch', { ms: -5000 }, 'ms'],
      ['drain', { ms: 'abc' }, 'ms'],
      ['drain', { ms: 1e300 }, 'ms'],
      ['drain', { blocked: 'none' }, 'blocked'],
    ] as const) {
      const bad = edit(type, change);
      expect(() => parseRecording(bad.text, 'r.jsonl'), `${type} ${JSON.stringify(change)}`).toThrow(new RegExp(`r\\.jsonl:${bad.line}: observation: ${problem.replace('.', '\\.')}: `));
    }
    expect(() => parseRecording(text, 'r.jsonl')).not.toThrow();
    // A node the recorded cluster never had: its observation would be ignored and the replay differ in silence.
    for (const type of ['reboot', 'fault']) {
      const ghost = edit(type, { node: 'ghost' });
      expect(() => parseRecording(ghost.text, 'r.jsonl'), type).toThrow(`r.jsonl:${ghost.line}: observation: node "ghost" is not in the recorded cluster`);
    }
  });

  it('refuses what is not a recording, and bad --set values, by name', () => {
    expect(() => parseRecording('{"line":"engine"}\n', 'r.jsonl')).toThrow(/r\.jsonl:1: no header line/);
    expect(() => parseRecording('not json\n', 'r.jsonl')).toThrow(/r\.jsonl:1: not a JSON line/);
    const scenario = { name: 's', seed: 1, startAt: '2026-01-01T00:00:00Z', clusterName: 'c', nodes: [], updates: { security: [], other: [] }, plan: { cluster: 'c' }, faults: [], triggers: [], events: [], expect: [] };
    const header = JSON.stringify({ line: 'header', format: 'patchpilot-recording/1', scenario });
    const result = JSON.stringify({ line: 'result', result: { scenario: 's', seed: 1, ok: true, runs: [] } });
    // A damaged header, and a recording cut before its result line, are refused by name.
    expect(() => parseRecording(`${JSON.stringify({ line: 'header', format: 'patchpilot-recording/1', scenario: { ...scenario, nodes: 'x' } })}\n${result}\n`, 'r.jsonl')).toThrow(/r\.jsonl:1: header: scenario\.nodes: /);
    expect(() => parseRecording(`${header}\n`, 'r.jsonl')).toThrow(/r\.jsonl:2: no result line: the recording is incomplete/);
    // Lines of two recordings put together (another scenario's, or another seed's, result): refused, not replayed.
    for (const other of [{ scenario: 'keyserver-eof', seed: 1 }, { scenario: 's', seed: 42 }]) {
      expect(() => parseRecording(`${header}\n${JSON.stringify({ line: 'result', result: { ...other, ok: true, runs: [] } })}\n`, 'r.jsonl')).toThrow(/r\.jsonl:2: the result is of scenario .* but the header of "s" with seed 1: lines of two recordings were put together/);
    }
    const recording = parseRecording(`${header}\n${result}\n`);
    expect(() => scenarioFromRecording(recording, ['concurrency=0'])).toThrow(/concurrency: must be at least 1/);
    expect(() => scenarioFromRecording(recording, ['concurrency'])).toThrow(/expected key=value/);
    // Keys that would reach Object.prototype are refused, and nothing is polluted.
    expect(() => scenarioFromRecording(recording, ['__proto__.polluted=1'])).toThrow(/"__proto__" is not a plan setting/);
    expect(() => scenarioFromRecording(recording, ['drain.constructor.prototype.polluted=1'])).toThrow(/"constructor" is not a plan setting/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
