/**
 * The `/patch` command language: a table of what users type (including Slack's smart quotes and em dashes), and a
 * fuzz of more than 10,000 inputs: nothing crashes, every refusal is a usage message, valid commands round-trip.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatPatchCommand, HELP_TEXT, parsePatchCommand, USAGE, type PatchCommand } from '../../src/bot/commands.ts';

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
    ['reset prod --nodes=w1,w2,w1', { kind: 'reset', cluster: 'prod', nodes: ['w1', 'w2'] }],
    ['schedule weekly', { kind: 'schedule', schedule: { kind: 'preset', preset: 'weekly' } }],
    ['schedule prod off', { kind: 'schedule', cluster: 'prod', schedule: { kind: 'off' } }],
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
    ['approve', /needs the run id/, USAGE.approve],
    ['approve a b', /too many words/, USAGE.approve],
    ['run --nodes', /--nodes needs a comma-separated list/, USAGE.run],
    ['run --concurrency 0', /whole number from 1 to 100, got "0"/, USAGE.run],
    ['run --concurrency', /whole number from 1 to 100$/, USAGE.run],
    ['run --force', /unknown option "--force"/, USAGE.run],
    ['run prod staging', /unexpected "staging" \(the cluster is already "prod"\)/, USAGE.run],
    ['run Prod_East', /"Prod_East" is not a cluster name/, USAGE.run],
    ['reset --no-reboot', /unknown option "--no-reboot"/, USAGE.reset],
    ['status a b', /too many words/, USAGE.status],
    ['schedule', /what schedule\?/, USAGE.schedule],
    ['schedule prod daily-ish', /neither a preset/, USAGE.schedule],
    ['schedule prod 61 3 * * 1', /not a valid cron expression: .*minute/, USAGE.schedule],
    ['run "prod', /a quote is not closed/, USAGE.help],
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
      expect(Object.values(USAGE)).toContain(result.usage);
    }
  };

  it('never throws on arbitrary text (10,000 inputs)', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }), check), { numRuns: 10_000 });
  });

  it('answers near-misses built from the grammar\'s own words (10,000 inputs)', () => {
    const word = fc.oneof(
      fc.constantFrom(...Object.keys(USAGE), 'rn', 'aprove', '--nodes', '--no-reboot', '--concurrency', '--nodes=', 'off', 'weekly', 'monthly', '"0 3 * * 1"', '*', '0', '61', 'prod', 'Prod', 'a,b', ',', '"', '—', '\u00A0', 'run-1'),
      fc.stringMatching(/^[a-z0-9.,=-]{1,12}$/),
      fc.integer({ min: -5, max: 200 }).map(String),
    );
    fc.assert(fc.property(fc.array(word, { maxLength: 7 }), (words) => check(words.join(' '))), { numRuns: 10_000 });
  });
});
