/**
 * `patchpilot bot --socket` stopped while it is still trying to reach Slack's WebSocket (which here never answers):
 * SIGTERM stops it through its own clean-up, so the simulated cluster's temporary kubeconfig is removed and the bot
 * says it stopped, rather than dying where it stood.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.ts';

const BIN = join(process.cwd(), 'bin', 'patchpilot.js');
const APP_TOKEN = 'xapp-1-A1-5-stop-test-app-token';

describe('patchpilot bot over Socket Mode, stopped before it connects', () => {
  let slack: Server;
  let apiUrl = '';
  beforeAll(async () => {
    // Every Web API call succeeds; the WebSocket it hands out is a closed port, so the bot keeps retrying.
    slack = createServer((_request, response) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ ok: true, url: 'ws://127.0.0.1:1/link', user_id: 'UBOT', bot_id: 'BBOT', team_id: 'T1' }));
    });
    await new Promise<void>((resolve) => slack.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${(slack.address() as AddressInfo).port}/api/`;
  });
  afterAll(() => new Promise<void>((resolve) => slack.close(() => resolve())));

  it('stops on SIGTERM through its clean-up: exit 0, its temporary files removed, no token printed', { timeout: 60_000 }, async () => {
    const env = { PATH: process.env.PATH, SLACK_BOT_TOKEN: 'xoxb-1-2-stop-test-bot-token', SLACK_APP_TOKEN: APP_TOKEN, SLACK_API_URL: apiUrl };
    const child = spawn(process.execPath, [BIN, 'bot', '--sim', 'fixtures/scenarios/demo.yaml', '--socket', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const kubeconfig = await until('the simulated cluster', () => /KUBECONFIG=(\S+)\)/.exec(out)?.[1], { giveUpIf: () => (child.exitCode !== null ? `the bot exited: ${out}` : undefined) });
    expect(existsSync(kubeconfig)).toBe(true);
    child.kill('SIGTERM');
    expect(await exited, out).toBe(0);
    expect(out).toContain('bot stopped (SIGTERM) before it had connected');
    expect(existsSync(kubeconfig), 'the temporary kubeconfig is removed').toBe(false);
    expect(out).not.toContain(APP_TOKEN);
    expect(out).not.toMatch(/^\s+at /m);
  });
});
