/**
 * The `/patch` command language: a table of what users type (including Slack's smart quotes and em dashes), and a
 * fuzz of more than 10,000 inputs: nothing crashes, every refusal is a usage message, valid commands round-trip.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatPatchCommand, HELP_TEXT, normalise, parsePatchCommand, USAGE, type PatchCommand } from '../../src/bot/commands.ts';
import { PRESETS, presetToCron } from '../../src/engine/schedule.ts';

describe('parsePatchCommand', () => {
  const ok: Array<[string, PatchCommand]> = [
    ['', { kind: 'help' }],
    ['help', { kind: 'help' }],
    ['status', { kind: 'status' }],
    ['  STATUS   prod-east ', { kind: 'status', cluster: 'prod-east' }],
    ['run', { kind: 'run', noReboot: false }],
    ['run prod --nodes a,b --no-reboot --concurrency 2', { kind: 'run', cluster: 'prod', nodes: ['a', 'b'], noReboot: true, concurrency: 2 }],
    ['run --concurrency=3 prod', { kind: 'run', cluster: 'prod', noReboot: false, concurrency: 3 }],
    ['run —nodes ip-10-0-1-2.eu-west-1.compute.internal', { kind: 'run', nodes: ['ip-10-0-1-2.eu-west-1.compute.internal'], noReboot: false }],
    ['approve run-20261122-0200-ab12cd', { kind: 'approve', runId: 'run-20261122-0200-ab12cd' }],
    ['cancel r1', { kind: 'cancel', runId: 'r1' }],
    ['doctor staging', { kind: 'doctor', cluster: 'staging' }],
    ['reset prod --nodes=w1,w2', { kind: 'reset', cluster: 'prod', nodes: ['w1', 'w2'] }],
    ['schedule weekly', { kind: 'schedule', schedule: { kind: 'preset', preset: 'weekly', cron: '0 0 * * 0' } }],
    ['schedule prod Biweekly', { kind: 'schedule', cluster: 'prod', schedule: { kind: 'preset', preset: 'biweekly', cron: null } }],
    ['schedule prod @Daily', { kind: 'schedule', cluster: 'prod', schedule: { kind: 'cron', cron: '@daily' } }],
    ["schedule prod '0 3 * * 1-5'", { kind: 'schedule', cluster: 'prod', schedule: { kind: 'cron', cron: '0 3 * * 1-5' } }],
    ['schedule prod `0 3 * * 1`', { kind: 'schedule', cluster: 'prod', schedule: { kind: 'cron', cron: '0 3 * * 1' } }],
    ['run prod --nodes a, b', { kind: 'run', cluster: 'prod', nodes: ['a', 'b'], noReboot: false }],
    ['run --nodes a ,b prod', { kind: 'run', cluster: 'prod', nodes: ['a', 'b'], noReboot: false }],
    ['run\tprod\u00A0 --no-reboot', { kind: 'run', cluster: 'prod', noReboot: true }],
    ['status `prod`', { kind: 'status', cluster: 'prod' }],
    ['reset --nodes <http://w1.example.com|w1.example.com>', { kind: 'reset', nodes: ['w1.example.com'] }],
    ['approve <mailto:run-7@x|run-7>', { kind: 'approve', runId: 'run-7' }],
    ['status <http://prod>', { kind: 'status', cluster: 'prod' }],
    ['schedule prod off', { kind: 'schedule', cluster: 'prod', schedule: { kind: 'off' } }],
    ['schedule 1prod weekly', { kind: 'schedule', cluster: '1prod', schedule: { kind: 'preset', preset: 'weekly', cron: '0 0 * * 0' } }],
    ['schedule prod 0 3 * * 1', { kind: 'schedule', cluster: 'prod', schedule: { kind: 'cron', cron: '0 3 * * 1' } }],
    ['schedule “0 3 * * 1”', { kind: 'schedule', schedule: { kind: 'cron', cron: '0 3 * * 1' } }],
    ['history <http://prod.example.com|prod>', { kind: 'history', cluster: 'prod' }],
  ];
  it.each(ok)('%j', (text, command) => {
    expect(parsePatchCommand(text)).toEqual({ ok: true, command });
  });

  const refused: Array<[string, RegExp, string]> = [
    ['rn prod', /unknown subcommand "rn" \(did you mean `run`\?\)/, USAGE.help],
    ['deploy', /unknown subcommand "deploy"$/, USAGE.help],
    ['__proto__ weekly', /unknown subcommand "__proto__"$/, USAGE.help],
    ['constructor', /unknown subcommand "constructor"$/, USAGE.help],
    ['approve', /needs the run id/, USAGE.approve],
    ['approve a b', /too many words/, USAGE.approve],
    ['run --nodes', /--nodes needs a comma-separated list/, USAGE.run],
    ['run --concurrency 0', /whole number from 1 to 100, got "0"/, USAGE.run],
    ['run --concurrency', /whole number from 1 to 100$/, USAGE.run],
    ['run --force', /unknown option "--force"/, USAGE.run],
    ['run --node a', /unknown option "--node" \(did you mean `--nodes`\?\)/, USAGE.run],
    ['run --noreboot', /did you mean `--no-reboot`/, USAGE.run],
    ['status --all', /unknown option "--all" \(status takes no options\)/, USAGE.status],
    ['schedule prod weekley', /did you mean `weekly`/, USAGE.schedule],
    ['schedule prod @reboot', /neither a preset/, USAGE.schedule],
    ['schedule prod "0 3 * * 1', /a quote is not closed/, USAGE.schedule],
    ['schedule prod 0 0 L * *', /L, W, # or \+/, USAGE.schedule],
    ['run --nodes a_b', /"a_b" is not a node name/, USAGE.run],
    ['run --nodes worker-1,Worker-1', /"worker-1" is listed twice: a typo for another node\?/, USAGE.run],
    ['reset prod --nodes=w1,w2,w1', /"w1" is listed twice/, USAGE.reset],
    ['approve <@U123>', /is not a run id/, USAGE.approve],
    ['run &lt;prod&gt;', /"<prod>" is not a cluster name/, USAGE.run],
    ['run prod staging', /unexpected "staging" \(the cluster is already "prod"\)/, USAGE.run],
    ['run Prod_East', /"Prod_East" is not a cluster name/, USAGE.run],
    ['reset --no-reboot', /unknown option "--no-reboot"/, USAGE.reset],
    ['status a b', /too many words/, USAGE.status],
    ['schedule', /what schedule\?/, USAGE.schedule],
    ['schedule prod daily-ish', /neither a preset/, USAGE.schedule],
    ['schedule prod', /what schedule for "prod"\?/, USAGE.schedule],
    ['schedule 0 3 * * 1 prod', /neither a preset/, USAGE.schedule],
    ['schedule Prod_x weekly', /"Prod_x" is not a cluster name/, USAGE.schedule],
    ['schedule prod 61 3 * * 1', /not a valid cron expression: .*minute/, USAGE.schedule],
    ['run "prod', /a quote is not closed/, USAGE.run],
    ['deploy "prod', /a quote is not closed/, USAGE.help],
  ];
  it.each(refused)('%j is refused with a usage message', (text, error, usage) => {
    const result = parsePatchCommand(text);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatch(error);
    expect(result.usage).toBe(usage);
  });

  it('has help for every subcommand', () => {
    for (const usage of Object.values(USAGE)) expect(HELP_TEXT).toContain(usage);
  });
});

describe('fuzzing the parser', () => {
  const check = (text: string) => {
    const result = parsePatchCommand(text);
    if (result.ok) {
      // Whatever parses prints back to something that parses to the same command.
      expect(parsePatchCommand(formatPatchCommand(result.command))).toEqual(result);
    } else {
      expect(result.error.length).toBeGreaterThan(0);
      // The usage is the form of the subcommand that was typed, or the help's when no known subcommand was.
      const verb = normalise(text).split(' ')[0]!.toLowerCase();
      const known = Object.hasOwn(USAGE, verb);
      expect(result.usage).toBe(known ? USAGE[verb as keyof typeof USAGE] : USAGE.help);
      expect(result.usage.startsWith(`/patch ${known ? verb : 'help'}`)).toBe(true);
    }
  };

  it('never throws on arbitrary text (10,000 inputs)', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }), check), { numRuns: 10_000 });
  });

  it('answers near-misses built from the grammar\'s own words (10,000 inputs)', () => {
    const word = fc.oneof(
      fc.constantFrom(...Object.keys(USAGE), 'rn', 'aprove', '--nodes', '--no-reboot', '--concurrency', '--nodes=', 'off', 'weekly', 'monthly', '"0 3 * * 1"', '*', '0', '61', 'prod', 'Prod', 'a,b', ',', '"', '—', '\u00A0', 'run-1', '__proto__', 'constructor', '@daily', '“', '`', '<http://a.b|a.b>', 'a, b'),
      fc.stringMatching(/^[a-z0-9.,=-]{1,12}$/),
      fc.integer({ min: -5, max: 200 }).map(String),
    );
    fc.assert(fc.property(fc.array(word, { maxLength: 7 }), (words) => check(words.join(' '))), { numRuns: 10_000 });
  });

  // Valid commands, generated from the grammar and spelled the many ways Slack users (and Slack) write them: options
  // in any order, `--opt=value`, quoted or bare cron, smart quotes, odd spaces, upper-case words. Each parses back to
  // exactly the command it was made from.
  const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
  const nodeName = fc.array(label, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('.'));
  const cluster = fc.option(label, { nil: undefined });
  const nodes = fc.option(fc.uniqueArray(nodeName, { minLength: 1, maxLength: 4 }), { nil: undefined });
  const cron = fc.constantFrom('0 3 * * 1', '*/15 2-4 * * *', '30 1 1,15 * *', '0 0 * 1-6 0', '5 4 * * sun', '@daily', '@weekly');
  const schedule = fc.oneof(
    fc.constantFrom(...PRESETS).map((preset) => ({ kind: 'preset' as const, preset, cron: presetToCron(preset) })),
    cron.map((c) => ({ kind: 'cron' as const, cron: c })),
    fc.constant({ kind: 'off' as const }),
  );
  const command: fc.Arbitrary<PatchCommand> = fc.oneof(
    fc.constant({ kind: 'help' as const }),
    fc.record({ kind: fc.constantFrom('status' as const, 'doctor' as const, 'unstick' as const, 'history' as const), cluster }, { requiredKeys: ['kind'] }),
    fc.record(
      { kind: fc.constant('run' as const), cluster, nodes, noReboot: fc.boolean(), concurrency: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }) },
      { requiredKeys: ['kind', 'noReboot'] },
    ),
    fc.record({ kind: fc.constantFrom('approve' as const, 'reject' as const, 'pause' as const, 'resume' as const, 'cancel' as const), runId: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,20}$/) }),
    fc.record({ kind: fc.constant('reset' as const), cluster, nodes }, { requiredKeys: ['kind'] }),
    fc.record({ kind: fc.constant('schedule' as const), cluster, schedule }, { requiredKeys: ['kind', 'schedule'] }),
  );
  const SPACES = [' ', '  ', '\t', '\u00A0', ' \u2003'];
  const QUOTES = [['"', '"'], ['\u201C', '\u201D'], ["'", "'"], ['`', '`']] as const;

  /** One way of writing the command, and the command it must parse to (what the parser normalises). */
  function spell(c: PatchCommand, choices: number[]): string {
    let next = 0;
    const pick = <T,>(options: readonly T[]): T => options[(choices[next++ % choices.length] ?? 0) % options.length]!;
    const flip = () => pick([false, true]);
    const words: string[] = [];
    const verb = pick([c.kind, c.kind.toUpperCase(), c.kind[0]!.toUpperCase() + c.kind.slice(1)]);
    const list = (names: string[]) => names.join(pick([',', ', ']));
    if (c.kind === 'run' || c.kind === 'reset') {
      const options: string[][] = [];
      if (c.cluster !== undefined) options.push([c.cluster]);
      if (c.nodes) options.push(flip() ? [`--nodes=${c.nodes.join(',')}`] : [pick(['--nodes', '\u2014nodes']), list(c.nodes)]);
      if (c.kind === 'run' && c.noReboot) options.push(['--no-reboot']);
      if (c.kind === 'run' && c.concurrency !== undefined) options.push(flip() ? [`--concurrency=${c.concurrency}`] : ['--concurrency', String(c.concurrency)]);
      while (options.length > 0) words.push(...options.splice(pick(options.map((_, i) => i)), 1)[0]!);
    } else if (c.kind === 'schedule') {
      if (c.cluster !== undefined) words.push(c.cluster);
      const s = c.schedule;
      if (s.kind === 'cron' && s.cron.includes(' ')) {
        const [open, close] = pick(QUOTES);
        words.push(flip() ? `${open}${s.cron}${close}` : s.cron);
      } else words.push(s.kind === 'off' ? pick(['off', 'OFF']) : s.kind === 'preset' ? s.preset : s.cron);
    } else if ('runId' in c) words.push(c.runId);
    else if ('cluster' in c && c.cluster !== undefined) words.push(c.cluster);
    return [pick(['', ' ', '\u00A0']), verb, ...words.map((w) => `${pick(SPACES)}${w}`), pick(['', ' ', '\n'])].join('');
  }

  it('parses every valid command back, however it is spelled (10,000 inputs)', () => {
    fc.assert(
      fc.property(command, fc.array(fc.nat(), { minLength: 1, maxLength: 30 }), (c, choices) => {
        const text = spell(c, choices);
        expect(parsePatchCommand(text), JSON.stringify(text)).toEqual({ ok: true, command: c });
        expect(parsePatchCommand(formatPatchCommand(c))).toEqual({ ok: true, command: c });
      }),
      { numRuns: 10_000 },
    );
  });
});
