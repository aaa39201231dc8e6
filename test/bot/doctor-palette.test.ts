/**
 * `/patch doctor` for Palette users, offline: the bot (HTTP mode, signed requests, the fake Slack Web API) serves three
 * Palette-managed sandboxes, each bound to its channel and reached through the real Kubernetes adapter over HTTP. Each
 * report names the seed's row and gives the fix, patchpilot's own fixes as /patch commands; a healthy one finds no
 * problem.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBot, type Bot } from '../../src/bot/app.ts';
import type { BotConfig } from '../../src/bot/config.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { kubeTarget } from '../../src/cli/targets.ts';
import { SEED_ROWS } from '../../src/service/seed-rows.ts';
import { kubeconfig, startKubeApiServer, type KubeApiServer } from '../../src/sim/kube-api/index.ts';
import { createSandbox, type Sandbox } from '../../src/sim/sandbox/index.ts';
import { ScaledClock } from '../../src/sim/scaled-clock.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { openStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/store.ts';
import { FakeSlack, send, signedHeaders, SIGNING_SECRET, slashBody } from '../helpers/fake-slack.ts';
import { until } from '../helpers/until.ts';

const BOT_TOKEN = 'xoxb-3333-4444-palettedoctortoken';
const USER = 'UOPS1';
/** channel → (cluster name, scenario) */
const CLUSTERS = [
  ['C1', 'pm-healthy', 'healthy'],
  ['C2', 'pm-keyserver', 'keyserver-eof'],
  ['C3', 'pm-agent', 'agent-not-ready'],
  ['C4', 'pm-nomatch', 'no-matching-nodes'],
] as const;

describe('/patch doctor on Palette-managed clusters', () => {
  const fake = new FakeSlack();
  const logs: string[] = [];
  let dir: string;
  let clock: ScaledClock;
  const sandboxes: Sandbox[] = [];
  const servers: KubeApiServer[] = [];
  const stores: Store[] = [];
  let bot: Bot;
  let url: string;

  beforeAll(async () => {
    await fake.start();
    dir = mkdtempSync(join(tmpdir(), 'patchpilot-bot-palette-'));
    clock = new ScaledClock(1);
    const targets = [];
    for (const [, name, file] of CLUSTERS) {
      const scenario = loadScenario(`fixtures/scenarios/palette-managed/${file}.yaml`);
      const sandbox = createSandbox(scenario, clock);
      const server = await startKubeApiServer({ store: sandbox.store });
      sandboxes.push(sandbox);
      servers.push(server);
      const config = join(dir, `${name}.kubeconfig`);
      writeFileSync(config, kubeconfig(server.url));
      const store = openStore(':memory:');
      stores.push(store);
      targets.push(kubeTarget({ kubeconfig: config, plan: parsePlan({ ...scenario.planInput, cluster: name }), db: store, clock, palette: null }));
    }
    const config: BotConfig = {
      mode: 'http',
      signingSecret: SIGNING_SECRET,
      botToken: BOT_TOKEN,
      appToken: null,
      apiUrl: fake.apiUrl,
      approvers: [],
      channels: new Map(CLUSTERS.map(([channel, name]) => [channel, name])),
      port: 0,
    };
    bot = createBot({ config, clusters: targets, log: (line) => logs.push(line), botUserId: 'UBOT', progressIntervalMs: 50 });
    url = (await bot.start(0)).url;
  });

  afterAll(async () => {
    await bot?.stop();
    for (const s of sandboxes) s.binding.close();
    clock?.clearAll();
    for (const s of servers) await s.close();
    for (const s of stores) s.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function doctorIn(channel: string): Promise<string> {
    const id = `doctor-${channel}`;
    const body = slashBody(fake, 'doctor', USER, channel, id);
    expect((await send(url, body, signedHeaders(body))).status).toBe(200);
    const answer = await until(`the doctor report in ${channel}`, () => fake.responses.find((r) => r.id === id && String(r.body.text ?? '').includes('problem')));
    return String(answer.body.text);
  }

  /** The finding whose title line contains `title`, up to the next one. */
  const block = (report: string, title: string) => report.split(/\n(?=\d+\. \[)/).find((b) => b.split('\n')[0]!.includes(title)) ?? `(no finding "${title}" in)\n${report}`;

  it('a healthy Palette-managed cluster: no problem, Palette\'s task and Jobs read', { timeout: 60_000 }, async () => {
    const report = await doctorIn('C1');
    expect(report).toMatch(/^patchpilot doctor: cluster pm-healthy at /);
    expect(report).not.toContain('[PROBLEM]');
    expect(report).toContain("[ok] Palette's crony Jobs: 4 succeeded, 0 running");
    expect(report.trim().split('\n').at(-1)).toMatch(/^no problem found/);
  });

  it('keyserver EOF: the seed\'s section, and patchpilot\'s agent as a /patch command', { timeout: 60_000 }, async () => {
    const report = await doctorIn('C2');
    const key = block(report, "Palette's patch script cannot reach the GPG keyserver");
    expect(key).toMatch(/^\d+\. \[PROBLEM\]/);
    expect(key).toContain("patchpilot's agent never contacts a keyserver: /patch run pm-keyserver patches them");
    expect(key).toContain(`seed: ${SEED_ROWS.keyserver}`);
    expect(block(report, "Palette's task is stuck applying on worker-2")).toContain('seed: Nothing Happens After Clicking On-Demand Update › "Previous patch still in progress"');
  });

  it('"Cluster agent issues": the agent pods not Ready, with the commands to look at them', { timeout: 60_000 }, async () => {
    const report = await doctorIn('C3');
    const agent = block(report, "Palette's cluster agent is not Ready");
    expect(agent).toMatch(/^\d+\. \[PROBLEM\]/);
    expect(agent).toContain("fix: check cluster health and the agent's connectivity");
    expect(agent).toContain(`seed: ${SEED_ROWS.agent}`);
  });

  it('"No matching nodes": the task\'s selector and the label to fix', { timeout: 60_000 }, async () => {
    const report = await doctorIn('C4');
    const selection = block(report, "Palette's task selects no node");
    expect(selection).toContain('kubectl label node NODE kubernetes.io/os=linux');
    expect(selection).toContain(`seed: ${SEED_ROWS.noMatch}`);
    expect(logs.join('\n')).not.toContain(BOT_TOKEN);
  });
});
