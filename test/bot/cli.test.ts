/**
 * `patchpilot bot` as an operator starts it: configuration errors named all at once (never a secret's value), and a
 * bot on a simulated cluster that checks its token with Slack, answers a signed `/patch help`, serves /healthz, and
 * stops on SIGTERM.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeSlack, send, signedHeaders, SIGNING_SECRET, slashBody } from '../helpers/fake-slack.ts';

const BIN = join(process.cwd(), 'bin', 'patchpilot.js');

describe('patchpilot bot', () => {
  const fake = new FakeSlack();
  beforeAll(() => fake.start());
  afterAll(() => fake.stop());

  it('names every configuration problem at once, exit 2, and never prints a secret', () => {
    const env = { PATH: process.env.PATH, SLACK_BOT_TOKEN: 'xoxp-123456-not-a-bot-token', PATCHPILOT_CHANNELS: 'prod', PATCHPILOT_APPROVERS: 'alice' };
    const result = spawnSync(process.execPath, [BIN, 'bot', '--sim', 'fixtures/scenarios/demo.yaml'], { encoding: 'utf8', env, timeout: 30_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('SLACK_BOT_TOKEN must be a bot token');
    expect(result.stderr).toContain('SLACK_SIGNING_SECRET is not set');
    expect(result.stderr).toContain('PATCHPILOT_APPROVERS has "alice"');
    expect(result.stderr).toContain('PATCHPILOT_CHANNELS has "prod"');
    expect(result.stderr + result.stdout).not.toContain('xoxp-123456');
  });

  it('names a Slack URL that is not http(s), a channel bound twice and lists of only commas, all at once (each was taken silently)', () => {
    const env = {
      PATH: process.env.PATH,
      SLACK_BOT_TOKEN: 'xoxb-1-2-cli-test-token',
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: 'ftp://slack.example.com/api/',
      PATCHPILOT_CHANNELS: 'C0123ABCD:prod,C0456EFGH:staging,C0123ABCD:staging',
      PATCHPILOT_APPROVERS: ' , ,',
    };
    const result = spawnSync(process.execPath, [BIN, 'bot', '--sim', 'fixtures/scenarios/demo.yaml'], { encoding: 'utf8', env, timeout: 30_000 });
    expect(result.status, result.stderr).toBe(2);
    expect(result.stderr).toContain('SLACK_API_URL must be an http:// or https:// URL');
    expect(result.stderr).toContain('PATCHPILOT_CHANNELS binds C0123ABCD twice (to prod and to staging)');
    expect(result.stderr).toContain('PATCHPILOT_APPROVERS names no one');
    expect(result.stderr).not.toContain('cannot reach Slack');
    expect(result.stdout).not.toContain('simulated cluster');
  });

  it('refuses, at start-up, a channel bound to a cluster the bot does not serve (found only when someone typed /patch)', () => {
    const env = { PATH: process.env.PATH, SLACK_BOT_TOKEN: 'xoxb-1-2-channels-test', SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: fake.apiUrl, PATCHPILOT_CHANNELS: 'C0123ABCD:prod' };
    // SIGKILL at the timeout: a bot that started anyway waits on the fake Slack, which cannot answer while spawnSync
    // holds this process.
    const result = spawnSync(process.execPath, [BIN, 'bot', '--sim', 'fixtures/scenarios/demo.yaml'], { encoding: 'utf8', env, timeout: 20_000, killSignal: 'SIGKILL' });
    expect(result.status, result.stderr).toBe(2);
    expect(result.stderr).toContain('PATCHPILOT_CHANNELS binds channels to a cluster this bot does not serve: prod (it serves demo)');
    expect(result.stdout).not.toContain('listening');
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it('refuses tokens and secrets holding a line break at start-up, exit 2, without printing them', () => {
    const env = {
      PATH: process.env.PATH,
      SLACK_BOT_TOKEN: 'xoxb-1-2-secretpart\nX-Injected: y',
      SLACK_APP_TOKEN: 'xapp-1-apptokenpart\n2',
      SLACK_SIGNING_SECRET: `${SIGNING_SECRET}\nX`,
    };
    const result = spawnSync(process.execPath, [BIN, 'bot', '--sim', 'fixtures/scenarios/demo.yaml', '--socket'], { encoding: 'utf8', env, timeout: 30_000 });
    expect(result.status).toBe(2);
    for (const name of ['SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN', 'SLACK_SIGNING_SECRET']) expect(result.stderr).toContain(`${name} contains a space, a line break`);
    expect(result.stderr + result.stdout).not.toMatch(/secretpart|apptokenpart|Injected/);
    expect(result.stderr + result.stdout).not.toContain(SIGNING_SECRET);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });

  it('reads --plan with --sim too: a plan that is missing or invalid is refused before anything starts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'patchpilot-bot-plan-'));
    const bad = join(dir, 'plan.yaml');
    writeFileSync(bad, 'cluster: demo\nwindow: { start: "25:00", end: "06:00" }\n');
    const env = { PATH: process.env.PATH, SLACK_BOT_TOKEN: 'xoxb-1-2-plan-test', SLACK_SIGNING_SECRET: SIGNING_SECRET };
    for (const plan of [join(dir, 'missing.yaml'), bad]) {
      const result = spawnSync(process.execPath, [BIN, 'bot', '--sim', 'fixtures/scenarios/demo.yaml', '--plan', plan], { encoding: 'utf8', env, timeout: 30_000 });
      expect(result.status, result.stderr).toBe(2);
      expect(result.stderr).toContain(plan);
      expect(result.stdout).not.toContain('listening');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs on a simulated cluster, answers a signed /patch help, serves /healthz, stops on SIGTERM', { timeout: 60_000 }, async () => {
    const env = { PATH: process.env.PATH, SLACK_BOT_TOKEN: 'xoxb-1-2-cli-test-token', SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: fake.apiUrl };
    const child = spawn(process.execPath, [BIN, 'bot', '--sim', 'fixtures/scenarios/sandbox-palette.yaml', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the bot did not start: ${out}`)), 30_000);
        const check = () => {
          const match = /listening on port (\d+)/.exec(out);
          if (match) {
            clearTimeout(timer);
            resolve(Number(match[1]));
          }
        };
        child.stdout.on('data', check);
        child.once('exit', (code) => reject(new Error(`the bot exited with ${code}: ${out}`)));
      });
      expect(fake.called('auth.test')).toHaveLength(1);
      const url = `http://127.0.0.1:${port}`;
      expect(await (await fetch(`${url}/healthz`)).text()).toBe('ok\n');
      const body = slashBody(fake, 'help', 'U1');
      const answer = await send(url, body, signedHeaders(body));
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.text).text).toContain('/patch run [cluster]');
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
    expect(code).toBe(0);
    expect(out).toContain('bot stopped (SIGTERM)');
    expect(out).not.toContain('xoxb-1-2-cli-test-token');
  });
});
