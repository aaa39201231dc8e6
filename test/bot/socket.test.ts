/**
 * `patchpilot bot --socket`: Slack over Socket Mode, as an operator without a public endpoint runs it. The fake Slack
 * hands out a WebSocket from apps.connections.open (checked to be asked with the app-level token), delivers slash
 * commands and clicks as envelopes and collects the acks. The whole approval flow works over it, across the
 * connection Slack rotates mid-run, and neither token reaches the bot's output.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/bot/views.ts';
import { buttonPayload, FakeSlack, slashPayload } from '../helpers/fake-slack.ts';
import { until } from '../helpers/until.ts';

const BIN = join(process.cwd(), 'bin', 'patchpilot.js');
const BOT_TOKEN = 'xoxb-3-4-socket-test-bot-token';
const APP_TOKEN = 'xapp-1-A1-5-socket-test-app-token';
const REQUESTER = 'UREQUEST1';
const APPROVER = 'UAPPROVE1';

describe('patchpilot bot over Socket Mode', () => {
  const fake = new FakeSlack();
  beforeAll(() => fake.start());
  afterAll(() => fake.stop());

  it('connects with the app token, answers commands in the ack, runs an approved patch across a reconnect, stops on SIGTERM', { timeout: 90_000 }, async () => {
    const env = { PATH: process.env.PATH, SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_APP_TOKEN: APP_TOKEN, SLACK_API_URL: fake.apiUrl, PATCHPILOT_APPROVERS: APPROVER };
    const child = spawn(process.execPath, [BIN, 'bot', '--sim', 'fixtures/scenarios/sandbox-palette.yaml', '--socket', '--port', '0', '--speed', '120'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let exited: number | null | undefined;
    const printed = { context: () => `the bot printed:\n${out}`, giveUpIf: () => (exited === undefined ? undefined : `the bot exited with ${exited}`) };
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => (exited = code));
    try {
      const health = await until('the bot to connect', () => /connected over Socket Mode \(health: (\S+)\)/.exec(out)?.[1], printed);
      expect(health).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/healthz$/);
      expect(await (await fetch(health)).text()).toBe('ok\n');
      // Socket Mode is opened with the app-level token; the Web API is called with the bot token.
      expect(fake.called('apps.connections.open').map((c) => c.token)).toEqual([APP_TOKEN]);
      expect(fake.called('auth.test').map((c) => c.token)).toEqual([BOT_TOKEN]);
      expect(fake.socketConnections).toBe(1);

      const help = await fake.deliver('slash_commands', slashPayload(fake, 'help', REQUESTER));
      expect(help).toMatchObject({ response_type: 'ephemeral' });
      expect(String(help?.text)).toContain('/patch run [cluster]');
      const wrong = await fake.deliver('slash_commands', slashPayload(fake, 'approve', REQUESTER));
      expect(String(wrong?.text)).toMatch(/approve.*RUN/);

      await fake.deliver('slash_commands', slashPayload(fake, 'run', REQUESTER));
      const card = await until('the approval card', () => [...fake.messages.values()].find((m) => JSON.stringify(m.blocks).includes(ACTIONS.approve)), printed);
      const runId = /run-\d{8}-\d{6}-[0-9a-f]+/.exec(JSON.stringify(card.blocks))?.[0];
      expect(runId).toBeDefined();

      // The requester cannot approve their own run: the click gets a bare ack, the refusal goes to them alone through
      // the response_url.
      expect(await fake.deliver('interactive', buttonPayload(fake, ACTIONS.approve, runId!, REQUESTER, 'C1', card.ts))).toEqual({});
      await until('the refusal', () => fake.responses.some((r) => String(r.body.text).includes('two-person rule')), printed);

      // Slack rotates the connection; the bot opens a new one and the flow carries on over it.
      fake.askToReconnect();
      await until('a second connection', () => fake.socketConnections === 2, printed);
      expect(fake.called('apps.connections.open')).toHaveLength(2);

      await fake.deliver('interactive', buttonPayload(fake, ACTIONS.approve, runId!, APPROVER, 'C1', card.ts));
      await until('the decision on the card', () => JSON.stringify(fake.messages.get(card.ts)?.blocks).includes(`Approved by <@${APPROVER}>`), printed);
      const result = await until('the broadcast result', () => fake.thread(card.ts).find((m) => m.reply_broadcast), { ...printed, timeoutMs: 60_000 });
      expect(result.text, `the thread:\n${fake.thread(card.ts).map((m) => m.text).join('\n')}`).toMatch(/SUCCEEDED: 4 patched/);
      for (const node of ['cp-1', 'worker-1', 'worker-2', 'rocky-1']) expect(fake.thread(card.ts).some((m) => m.text.includes(`\`${node}\``))).toBe(true);

      const status = await fake.deliver('slash_commands', slashPayload(fake, 'status', REQUESTER));
      expect(String(status?.text)).toContain(`run \`${runId}\` finished SUCCEEDED`);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((resolve) => (exited !== undefined ? resolve(exited) : child.once('exit', resolve)));
    expect(code).toBe(0);
    expect(out).toContain('bot stopped (SIGTERM)');
    expect(out).not.toContain(BOT_TOKEN);
    expect(out).not.toContain(APP_TOKEN);
  });
});
