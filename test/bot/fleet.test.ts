/**
 * One bot, two clusters (two sandboxes), no channel bound: `/patch status` with no cluster lists both and, before
 * any run, says what is known of each node rather than only "no run yet"; `/patch scan CLUSTER` scans one of them;
 * the App Home tab shows the fleet; the bot's /metrics carries both clusters' node gauges.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBot, type Bot } from '../../src/bot/app.ts';
import type { BotConfig } from '../../src/bot/config.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { kubeTarget, type KubeTarget } from '../../src/cli/targets.ts';
import { kubeconfig, startKubeApiServer, type KubeApiServer } from '../../src/sim/kube-api/index.ts';
import { createSandbox, type Sandbox } from '../../src/sim/sandbox/index.ts';
import { ScaledClock } from '../../src/sim/scaled-clock.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { eventBody, FakeSlack, send, signedHeaders, SIGNING_SECRET, slashBody } from '../helpers/fake-slack.ts';
import { until } from '../helpers/until.ts';

const USER = 'UOPERATOR';

describe('one bot, many clusters', () => {
  const fake = new FakeSlack();
  const dir = mkdtempSync(join(tmpdir(), 'patchpilot-bot-fleet-'));
  const served: { sandbox: Sandbox; api: KubeApiServer; clock: ScaledClock; store: Store; target: KubeTarget }[] = [];
  let bot: Bot;
  let url: string;

  beforeAll(async () => {
    await fake.start();
    for (const [name, file] of [['alpha', 'demo.yaml'], ['beta', 'repo-unreachable.yaml']] as const) {
      const scenario = loadScenario(`fixtures/scenarios/${file}`);
      // 30x: a scan Job's simulated half minute passes in a second, and the scan's ten-minute deadline (on the same
      // clock) still leaves twenty real seconds for the HTTP round trips on a loaded machine.
      const clock = new ScaledClock(30);
      const sandbox = createSandbox(scenario, clock);
      const api = await startKubeApiServer({ store: sandbox.store });
      writeFileSync(join(dir, `${name}.kubeconfig`), kubeconfig(api.url));
      // Each cluster its own store: its own history and lease, as two orchestrators would keep them.
      const store = openStore(':memory:');
      const target = kubeTarget({ kubeconfig: join(dir, `${name}.kubeconfig`), plan: parsePlan({ ...scenario.planInput, cluster: name }), db: store, clock, palette: null });
      served.push({ sandbox, api, clock, store, target });
    }
    const config: BotConfig = { mode: 'http', signingSecret: SIGNING_SECRET, botToken: 'xoxb-1-2-fleettoken', appToken: null, apiUrl: fake.apiUrl, approvers: [], channels: new Map(), port: 0 };
    bot = createBot({ config, clusters: served.map((s) => s.target), log: () => {}, botUserId: 'UBOT', progressIntervalMs: 50 });
    url = (await bot.start(0)).url;
  });

  afterAll(async () => {
    await bot?.stop();
    for (const s of served) {
      s.sandbox.binding.close();
      s.clock.clearAll();
      await s.api.close();
      s.store.close();
    }
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const slash = async (text: string) => {
    const body = slashBody(fake, text, USER, 'C9', `${text.replace(/\W/g, '')}-${Math.random()}`.slice(0, 40));
    const answer = await send(url, body, signedHeaders(body));
    expect(answer.status).toBe(200);
    return JSON.parse(answer.text) as { text: string };
  };

  it('/patch status with no cluster lists every cluster, with its nodes, before any run or scan', async () => {
    const { text } = await slash('status');
    expect(text).toMatch(/^\*alpha\*: 0 of 5 Linux node\(s\) compliant; oldest unpatched: cp-1 \(never patched\); last scan: never/m);
    expect(text).toMatch(/^\*beta\*: 0 of 4 Linux node\(s\) compliant/m);
    expect(text).toMatch(/^• `ubuntu-2` \(Ubuntu 24\.04\.1 LTS, 6\.8[^)]*\) — never scanned: security updates: unknown/m);
    expect(text).toContain('No run of alpha yet');
    expect(text).not.toMatch(/^No run of alpha yet/);
  });

  it('/patch scan CLUSTER scans that cluster only, and status then shows what it found', { timeout: 60_000 }, async () => {
    const ack = await slash('scan beta');
    expect(ack.text).toMatch(/Working on `\/patch scan beta` for beta/);
    const done = await until('the scan result', () => fake.responses.find((r) => String(r.body.text).startsWith('Scanned ')), { timeoutMs: 50_000 });
    expect(String(done.body.text)).toMatch(/^Scanned 4 node\(s\) of beta; 1 could not be scanned: `worker-2` \(REPO_UNREACHABLE: /);
    expect(String(done.body.text)).toMatch(/^• `worker-1` .*2 security update\(s\) pending: security updates: 2 \(openssl, curl\)/m);
    expect(served[1]!.store.scanHistory('beta')).toHaveLength(4);
    expect(served[0]!.store.scanHistory('alpha')).toHaveLength(0);
    const { text } = await slash('status beta');
    expect(text).toMatch(/^\*beta\*: 0 of 4 Linux node\(s\) compliant; .*last scan: \d+s ago/m);
    expect(text).toMatch(/`worker-2` .* last scan failed/);
  });

  it('publishes the fleet view on the App Home tab', async () => {
    const body = eventBody({ type: 'app_home_opened', user: USER, channel: 'D1', tab: 'home', event_ts: '1.0' });
    const answer = await send(url, body, { ...signedHeaders(body), 'content-type': 'application/json' });
    expect(answer.status).toBe(200);
    const publish = await until('views.publish', () => fake.called('views.publish')[0]);
    expect(publish.args.user_id).toBe(USER);
    const view = publish.args.view as { type: string; blocks: { type: string; text?: { text: string } }[] };
    expect(view.type).toBe('home');
    const texts = view.blocks.map((b) => b.text?.text ?? '').join('\n');
    expect(texts).toMatch(/:warning: \*alpha\*: 0 of 5 Linux node\(s\) compliant/);
    expect(texts).toMatch(/:warning: \*beta\*: 0 of 4 Linux node\(s\) compliant/);
    expect(texts).toMatch(/`worker-1` .*2 \(openssl, curl\)/);
  });

  it('serves both clusters\' node gauges at /metrics', async () => {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^patchpilot_node_security_updates_pending\{cluster="beta",node="worker-1"\} 2$/m);
    // worker-2's scan failed and alpha was never scanned: no pending value is made up for them.
    expect(metrics).not.toMatch(/patchpilot_node_security_updates_pending\{cluster="beta",node="worker-2"\}/);
    expect(metrics).not.toMatch(/patchpilot_node_security_updates_pending\{cluster="alpha"/);
    expect(metrics).toMatch(/^patchpilot_cluster_nodes\{cluster="alpha"\} 5$/m);
    expect(metrics).toMatch(/^patchpilot_node_compliant\{cluster="alpha",node="cp-1"\} 0$/m);
    expect(metrics).toMatch(/^patchpilot_bot_commands_total\{command="scan"\} 1$/m);
  });
});

describe('scheduled scans from the bot', () => {
  it('scans every cluster on its schedule, into the store', { timeout: 60_000 }, async () => {
    const fake = new FakeSlack();
    await fake.start();
    const dir = mkdtempSync(join(tmpdir(), 'patchpilot-bot-scan-every-'));
    const scenario = loadScenario('fixtures/scenarios/repo-unreachable.yaml');
    const clock = new ScaledClock(60);
    const sandbox = createSandbox(scenario, clock);
    const api = await startKubeApiServer({ store: sandbox.store });
    writeFileSync(join(dir, 'kubeconfig'), kubeconfig(api.url));
    const store = openStore(':memory:');
    const target = kubeTarget({ kubeconfig: join(dir, 'kubeconfig'), plan: parsePlan({ ...scenario.planInput, cluster: 'gamma' }), db: store, clock, palette: null });
    const logs: string[] = [];
    const config: BotConfig = { mode: 'http', signingSecret: SIGNING_SECRET, botToken: 'xoxb-1-2-scantoken', appToken: null, apiUrl: fake.apiUrl, approvers: [], channels: new Map(), port: 0 };
    // Every 5 virtual minutes (five real seconds at 60x, which the test skips).
    const bot = createBot({ config, clusters: [target], log: (l) => logs.push(l), botUserId: 'UBOT', scanEveryMs: 300_000 });
    try {
      await bot.start(0);
      expect(store.scanHistory('gamma')).toEqual([]);
      clock.skip(300_000);
      await until('a scheduled scan', () => logs.find((l) => l.includes('scheduled scan of gamma: 4 node(s), 1 not scanned')), { timeoutMs: 50_000, context: () => logs.join('\n') });
      expect(store.scanHistory('gamma').map((r) => r.node).sort()).toEqual(['cp-1', 'worker-1', 'worker-2', 'worker-3']);
    } finally {
      await bot.stop();
      sandbox.binding.close();
      clock.clearAll();
      await api.close();
      store.close();
      await fake.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
