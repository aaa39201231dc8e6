/**
 * `patchpilot bot --kubeconfig` as it runs against a real cluster: here the cluster is `patchpilot sandbox` in another
 * process, reached only through the kubeconfig it writes, so the bot goes through the same path (kubeconfig loading,
 * the Kubernetes adapter over HTTP, a database file) as in production. Doctor answers from the cluster, an approved
 * run patches the named node, and the run is in the database after the bot stops.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/bot/views.ts';
import { openStore } from '../../src/store/index.ts';
import { buttonBody, FakeSlack, send, signedHeaders, SIGNING_SECRET, slashBody } from '../helpers/fake-slack.ts';
import { scratchDirs } from '../helpers/scratch.ts';
import { until } from '../helpers/until.ts';

const BIN = join(process.cwd(), 'bin', 'patchpilot.js');
const BOT_TOKEN = 'xoxb-5-6-kubeconfig-test-token';
const REQUESTER = 'UREQUEST1';
const APPROVER = 'UAPPROVE1';

interface Child {
  process: ChildProcess;
  output: () => string;
  exited: () => number | null | undefined;
}

function start(args: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let exited: number | null | undefined;
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.once('exit', (code) => (exited = code));
  return { process: child, output: () => output, exited: () => exited };
}

async function stop(child: Child | undefined): Promise<number | null | undefined> {
  if (!child) return undefined;
  if (child.exited() === undefined) {
    child.process.kill('SIGTERM');
    await new Promise((resolve) => child.process.once('exit', resolve));
  }
  return child.exited();
}

describe('patchpilot bot --kubeconfig, against a sandbox in another process', () => {
  const dir = scratchDirs('bot-kubeconfig')();
  const kubeconfig = join(dir, 'sandbox.kubeconfig');
  const plan = join(dir, 'sandbox.plan.yaml');
  const db = join(dir, 'patchpilot.db');
  const fake = new FakeSlack();
  let sandbox: Child | undefined;
  let bot: Child | undefined;

  const printed = {
    context: () => `sandbox:\n${sandbox?.output()}\nbot:\n${bot?.output()}`,
    giveUpIf: () => {
      const gone = [sandbox, bot].find((child) => child && child.exited() !== undefined);
      return gone ? `${gone === sandbox ? 'the sandbox' : 'the bot'} exited with ${gone.exited()}` : undefined;
    },
  };

  beforeAll(async () => {
    await fake.start();
    sandbox = start(['sandbox', '--scenario', 'fixtures/scenarios/sandbox-palette.yaml', '--kubeconfig', kubeconfig, '--speed', '100']);
    await until('the sandbox kubeconfig', () => existsSync(kubeconfig) && existsSync(plan), printed);
  });

  afterAll(async () => {
    await stop(bot);
    await stop(sandbox);
    await fake.stop();
  });

  it('answers doctor from the cluster and patches the node an approved run names; the run outlives the bot', { timeout: 90_000 }, async () => {
    const env = { PATH: process.env.PATH, SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: fake.apiUrl, PATCHPILOT_APPROVERS: APPROVER };
    bot = start(['bot', '--kubeconfig', kubeconfig, '--plan', plan, '--db', db, '--port', '0'], env);
    const port = Number(await until('the bot to listen', () => /listening on port (\d+)/.exec(bot!.output())?.[1], printed));
    expect(port).toBeGreaterThan(0);
    expect(bot.output()).toMatch(new RegExp(`cluster sandbox-palette at http://127\\.0\\.0\\.1:\\d+ \\(${kubeconfig.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const url = `http://127.0.0.1:${port}`;
    const slash = (text: string, user: string) => {
      const body = slashBody(fake, text, user);
      return send(url, body, signedHeaders(body));
    };

    await slash('doctor', REQUESTER);
    const report = await until('the doctor report', () => fake.responses.map((r) => String(r.body.text ?? '')).find((t) => t.includes('Linux nodes present')), printed);
    expect(report).toContain('4 Linux node(s) match the plan: cp-1, rocky-1, worker-1, worker-2');
    expect(report).toContain('no problem found');

    expect((await slash('run --nodes worker-1', REQUESTER)).status).toBe(200);
    const card = await until('the approval card', () => [...fake.messages.values()].find((m) => JSON.stringify(m.blocks).includes(ACTIONS.approve)), printed);
    const runId = /run-\d{8}-\d{6}-[0-9a-f]+/.exec(JSON.stringify(card.blocks))![0];
    expect(JSON.stringify(card.blocks)).toContain('`worker-1`');
    const click = buttonBody(fake, ACTIONS.approve, runId, APPROVER, 'C1', card.ts);
    expect((await send(url, click, signedHeaders(click))).status).toBe(200);
    const result = await until('the broadcast result', () => fake.thread(card.ts).find((m) => m.reply_broadcast), { ...printed, timeoutMs: 60_000 });
    expect(result.text).toMatch(/SUCCEEDED: 1 patched/);

    expect(await stop(bot)).toBe(0);
    expect(bot.output()).toContain('bot stopped (SIGTERM)');
    expect(bot.output()).not.toContain(BOT_TOKEN);
    const store = openStore(db);
    try {
      expect(store.getRun(runId)).toMatchObject({ status: 'done', outcome: 'succeeded' });
      expect(store.getNodeRuns(runId).map((n) => [n.node, n.result])).toEqual([['worker-1', 'patched']]);
    } finally {
      store.close();
    }
  });
});
