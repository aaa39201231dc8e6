/**
 * The Slack bot end to end, offline: a fake Slack Web API, correctly signed requests, and a simulated cluster served by
 * the sandbox (the real Kubernetes adapter talks to it). `/patch run` posts a card; the requester cannot approve, a
 * stranger cannot approve, an approver can; progress arrives in the card's thread and the result is broadcast.
 * Forged, stale and replayed requests and an unbound channel are refused and change nothing. No secret reaches a log.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBot, type Bot } from '../../src/bot/app.ts';
import type { BotConfig } from '../../src/bot/config.ts';
import { ACTIONS } from '../../src/bot/views.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { kubeTarget, type KubeTarget } from '../../src/cli/targets.ts';
import { kubeconfig, startKubeApiServer, type KubeApiServer } from '../../src/sim/kube-api/index.ts';
import { createSandbox, type Sandbox } from '../../src/sim/sandbox/index.ts';
import { ScaledClock } from '../../src/sim/scaled-clock.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { openStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/store.ts';
import { buttonBody, FakeSlack, send, signedHeaders, SIGNING_SECRET, slashBody } from '../helpers/fake-slack.ts';
import { until } from '../helpers/until.ts';

const BOT_TOKEN = 'xoxb-1111-2222-secretbottoken';
const REQUESTER = 'UREQUEST1';
const APPROVER = 'UAPPROVE1';
const STRANGER = 'USTRANGE1';

describe('the Slack bot against a simulated cluster', () => {
  const fake = new FakeSlack();
  const logs: string[] = [];
  let dir: string;
  let clock: ScaledClock;
  let sandbox: Sandbox;
  let api: KubeApiServer;
  let store: Store;
  let target: KubeTarget;
  let bot: Bot;
  let url: string;
  let runId = '';

  beforeAll(async () => {
    await fake.start();
    dir = mkdtempSync(join(tmpdir(), 'patchpilot-bot-'));
    const scenario = loadScenario('fixtures/scenarios/sandbox-palette.yaml');
    clock = new ScaledClock(120);
    sandbox = createSandbox(scenario, clock);
    api = await startKubeApiServer({ store: sandbox.store });
    writeFileSync(join(dir, 'kubeconfig'), kubeconfig(api.url));
    store = openStore(':memory:');
    target = kubeTarget({ kubeconfig: join(dir, 'kubeconfig'), plan: parsePlan({ ...scenario.planInput, cluster: scenario.clusterName }), db: store, clock, palette: null });
    const config: BotConfig = {
      mode: 'http',
      signingSecret: SIGNING_SECRET,
      botToken: BOT_TOKEN,
      appToken: null,
      apiUrl: fake.apiUrl,
      approvers: [APPROVER],
      channels: new Map([['C1', scenario.clusterName]]),
      port: 0,
    };
    bot = createBot({ config, clusters: [target], log: (line) => logs.push(line), botUserId: 'UBOT', progressIntervalMs: 50 });
    url = (await bot.start(0)).url;
  });

  afterAll(async () => {
    await bot?.stop();
    sandbox?.binding.close();
    clock?.clearAll();
    await api?.close();
    store?.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const slash = (text: string, user: string, channel = 'C1') => {
    const body = slashBody(fake, text, user, channel);
    return send(url, body, signedHeaders(body));
  };
  const click = (actionId: string, value: string, user: string, channel = 'C1') => {
    const body = buttonBody(fake, actionId, value, user, channel);
    return send(url, body, signedHeaders(body));
  };
  const lastResponse = () => fake.responses.at(-1)?.body.text as string | undefined;

  it('answers help and usage errors ephemerally', async () => {
    const help = await slash('help', REQUESTER);
    expect(help.status).toBe(200);
    expect(JSON.parse(help.text)).toMatchObject({ response_type: 'ephemeral' });
    expect(help.text).toContain('/patch run [cluster]');
    const wrong = await slash('rn', REQUESTER);
    expect(JSON.parse(wrong.text).text).toMatch(/unknown subcommand "rn" \(did you mean `run`\?\)/);
  });

  it('names the holder when another orchestrator holds the cluster, and changes nothing', async () => {
    const holder = 'patchpilot/bastion-1/4242/2026-12-06T04:00:00Z/c0ffee';
    const now = new Date(clock.now()).toISOString().replace('Z', '000Z');
    sandbox.store.create('leases', {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'patchpilot-sandbox-palette', namespace: 'os-patch' },
      spec: { holderIdentity: holder, leaseDurationSeconds: 3600, acquireTime: now, renewTime: now, leaseTransitions: 4 },
    });
    try {
      await slash('run', REQUESTER);
      const refusal = await until('the refusal', () => fake.responses.map((r) => r.body.text as string).find((t) => t?.includes('held by another orchestrator')));
      expect(refusal).toContain('cluster sandbox-palette is held by another orchestrator, process 4242 on bastion-1 (started 2026-12-06T04:00:00Z, c0ffee)');
      expect(refusal).toContain('patchpilot run --wait');
      expect(store.listRuns({ cluster: 'sandbox-palette' })).toEqual([]);
    } finally {
      sandbox.store.delete('leases', { namespace: 'os-patch', name: 'patchpilot-sandbox-palette' });
    }
  });

  it('posts an approval card for /patch run, with the nodes in order', async () => {
    const answer = await slash('run', REQUESTER);
    expect(answer.status).toBe(200);
    const card = await until('the card', () => fake.called('chat.postMessage').find((c) => JSON.stringify(c.args.blocks ?? '').includes(ACTIONS.approve)));
    expect(card.token).toBe(BOT_TOKEN);
    const text = JSON.stringify(card.args.blocks);
    expect(text).toContain(`requested by <@${REQUESTER}>`);
    expect(text).toMatch(/1\. `cp-1`/);
    expect(text).not.toContain('win-1');
    runId = store.listRuns({ cluster: 'sandbox-palette', limit: 1 })[0]!.id;
    expect(text).toContain(runId);
    expect(store.getRun(runId)!.status).not.toBe('done');
  });

  it('refuses the requester\'s own approval and a stranger\'s, changing nothing', async () => {
    await click(ACTIONS.approve, runId, REQUESTER);
    await until('the refusal', () => lastResponse()?.includes('two-person rule'));
    await click(ACTIONS.approve, runId, STRANGER);
    await until('the refusal', () => lastResponse()?.includes('is not an approver'));
    expect(store.getDecision(runId)).toBeNull();
    expect(fake.called('chat.update')).toHaveLength(0);
  });

  it('runs after an approver approves: the card says who, progress goes to the thread, the result is broadcast', { timeout: 60_000 }, async () => {
    const card = fake.called('chat.postMessage').find((c) => JSON.stringify(c.args.blocks ?? '').includes(ACTIONS.approve))!;
    const ts = [...fake.messages.values()].find((m) => m.blocks === card.args.blocks || JSON.stringify(m.blocks) === JSON.stringify(card.args.blocks))!.ts;
    await click(ACTIONS.approve, runId, APPROVER);
    await until('the decision on the card', () => JSON.stringify(fake.messages.get(ts)?.blocks).includes(`Approved by <@${APPROVER}>`));
    expect(store.getDecision(runId)).toMatchObject({ approver: APPROVER, decision: 'approved' });
    await until('the run to finish', () => store.getRun(runId)?.status === 'done', { timeoutMs: 50_000 });
    await until('the broadcast', () => fake.thread(ts).some((m) => m.reply_broadcast));
    await bot.settled();
    const thread = fake.thread(ts);
    for (const node of ['cp-1', 'worker-1', 'worker-2', 'rocky-1']) expect(thread.filter((m) => m.text.includes(`\`${node}\``) && !m.reply_broadcast)).toHaveLength(1);
    expect(thread.find((m) => m.text.includes('`worker-2`'))!.text).toMatch(/patched: .*rebooted/);
    expect(thread.filter((m) => m.reply_broadcast)).toHaveLength(1);
    expect(thread.find((m) => m.reply_broadcast)!.text).toMatch(/SUCCEEDED: 4 patched/);
    // The final message anchors the audit log outside the database: its head, which the log must still contain.
    const anchor = /audit head: `(\d+):([0-9a-f]{64})`/.exec(thread.find((m) => m.reply_broadcast)!.text);
    expect(anchor).not.toBeNull();
    const finished = store.auditRows({ runId }).find((r) => r.action === 'run.finished')!;
    expect(Number(anchor![1])).toBeGreaterThanOrEqual(finished.seq);
    expect(store.auditHashAt(Number(anchor![1]))).toBe(anchor![2]);
    expect(JSON.stringify(fake.messages.get(ts)!.blocks)).toMatch(/SUCCEEDED/);
    expect(JSON.stringify(fake.messages.get(ts)!.blocks)).not.toContain(ACTIONS.approve);

    // The card was built from the run's own selection: its node count and version hash are the run's.
    const cardText = JSON.stringify(card.args.blocks);
    const cardCount = Number(/\*Nodes, in order\* \((\d+)/.exec(cardText)?.[1]);
    const cardHash = /version hash `([^`]+)`/.exec(cardText)?.[1];
    const run = store.getRun(runId)!;
    expect(cardHash).toBe(run.hash);
    expect(cardCount).toBe(store.getNodeRuns(runId).length);
    expect(cardCount).toBe(4);
    for (const node of ['cp-1', 'worker-1', 'worker-2', 'rocky-1']) {
      expect((await target.cluster.getNode(node))!.labels[target.plan.labelKey]).toBe(cardHash);
    }

    // A second click after the decision starts nothing.
    const runsBefore = store.listRuns({ cluster: 'sandbox-palette' }).length;
    await click(ACTIONS.approve, runId, APPROVER);
    await until('the refusal', () => lastResponse()?.match(new RegExp(`Refused: run ${runId} was already approved by <@${APPROVER}>`)));
    expect(store.listRuns({ cluster: 'sandbox-palette' })).toHaveLength(runsBefore);

    const actions = store.auditRows({}).filter((r) => r.actor.startsWith('slack:')).map((r) => r.action);
    expect(actions).toEqual(expect.arrayContaining(['slack.command.run', 'slack.decision.refused', 'slack.decision.approve']));
  });

  it('answers status and history from the store, in the acknowledgement itself', async () => {
    const status = JSON.parse((await slash('status', REQUESTER)).text) as { response_type: string; text: string };
    expect(status.response_type).toBe('ephemeral');
    expect(status.text).toContain(`run \`${runId}\` finished SUCCEEDED`);
    expect(status.text).toMatch(/nodes: 4 patched/);
    const history = JSON.parse((await slash('history', REQUESTER)).text) as { text: string };
    expect(history.text).toContain('Last runs of sandbox-palette');
    expect(history.text).toContain(runId);
  });

  it('runs doctor, and resets the patch labels only after the confirm button', { timeout: 30_000 }, async () => {
    await slash('doctor', REQUESTER);
    const report = await until('the doctor report', () => fake.responses.map((r) => String(r.body.text ?? '')).find((t) => t.includes('Linux nodes present')));
    expect(report).toContain('Palette onDemandPatchAfter not checked');
    expect(report).toMatch(/\/patch /);

    await slash('reset --nodes worker-1', REQUESTER);
    const plan = await until('the reset plan', () => fake.responses.find((r) => JSON.stringify(r.body.blocks ?? '').includes(ACTIONS.resetConfirm)));
    expect(String(plan.body.text)).toContain('worker-1: label task.cluster.spectrocloud.com/on-demand-os-patch=');
    const labelOf = async (node: string) => (await target.cluster.getNode(node))!.labels['task.cluster.spectrocloud.com/on-demand-os-patch'];
    expect(await labelOf('worker-1')).toBeDefined();
    const button = (plan.body.blocks as Array<{ type: string; elements?: Array<{ action_id: string; value: string }> }>).find((b) => b.type === 'actions')!.elements![0]!;
    await click(ACTIONS.resetConfirm, button.value, REQUESTER);
    await until('the reset', () => lastResponse()?.includes('labels removed from 1 node(s): worker-1'));
    expect(await labelOf('worker-1')).toBeUndefined();
    expect(await labelOf('worker-2')).toBeDefined();
    expect(store.auditRows({}).some((r) => r.action === 'slack.reset')).toBe(true);
  });

  it('schedules runs: each fire asks for approval in the channel, one at a time; off stops it', { timeout: 60_000 }, async () => {
    const cardsBefore = fake.called('chat.postMessage').filter((c) => JSON.stringify(c.args.blocks ?? '').includes(ACTIONS.approve)).length;
    await slash('schedule sandbox-palette */10 * * * *', REQUESTER);
    await until('the answer', () => lastResponse()?.includes('sandbox-palette is patched'));
    expect(lastResponse()).toMatch(/Next: \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
    // The next fire is at most ten minutes away: jump there rather than wait five seconds at 120x.
    clock.skip(10 * 60_000);
    const fired = await until('a scheduled card', () => fake.called('chat.postMessage').filter((c) => JSON.stringify(c.args.blocks ?? '').includes(ACTIONS.approve)).slice(cardsBefore)[0]);
    expect(JSON.stringify(fired.args.blocks)).toContain(`requested by <@${REQUESTER}>`);
    // The scheduled run waits for approval: later fires are skipped, not stacked.
    clock.skip(10 * 60_000);
    await until('a skipped fire', () => store.auditRows({}).some((r) => r.action === 'slack.schedule.skipped'));
    expect(store.listRuns({ cluster: 'sandbox-palette', active: true })).toHaveLength(1);
    await slash('schedule sandbox-palette off', REQUESTER);
    await until('the answer', () => lastResponse()?.includes('No schedule for sandbox-palette any more'));
    const pending = store.listRuns({ cluster: 'sandbox-palette', active: true })[0]!;
    // A run still waiting for approval is not anyone's to cancel: that would be a veto by someone without a say.
    await slash(`cancel ${pending.id}`, STRANGER);
    await until('the refusal', () => lastResponse()?.includes(`Refused: ${STRANGER} is neither an approver for cluster sandbox-palette nor the requester of this run, and cannot cancel it before it starts`));
    expect(store.getRun(pending.id)?.status).not.toBe('done');
    await slash(`cancel ${pending.id}`, REQUESTER);
    await until('the run to end', () => store.getRun(pending.id)?.status === 'done');
    expect(store.auditRows({}).filter((r) => r.action === 'slack.schedule').map((r) => r.details.schedule)).toEqual([{ kind: 'cron', expression: '*/10 * * * *' }, null]);
  });

  it('refuses forged, stale and replayed requests and an unbound channel, changing nothing', async () => {
    const runs = store.listRuns({}).length;
    const body = slashBody(fake, 'run', REQUESTER);
    expect((await send(url, body, signedHeaders(body, 'not-the-secret'))).status).toBe(401);
    expect((await send(url, body, signedHeaders(body, SIGNING_SECRET, Math.floor(Date.now() / 1000) - 6 * 60))).status).toBe(401);
    const headers = signedHeaders(slashBody(fake, 'help', REQUESTER));
    const replayed = slashBody(fake, 'help', REQUESTER);
    const once = signedHeaders(replayed);
    expect((await send(url, replayed, once)).status).toBe(200);
    expect((await send(url, replayed, once)).status).toBe(401);
    expect(headers['x-slack-signature']).not.toBe(once['x-slack-signature']);
    const unbound = await slash('run', REQUESTER, 'C999');
    expect(JSON.parse(unbound.text).text).toMatch(/Refused: this channel is not bound to any cluster/);
    const unboundClick = await click(ACTIONS.approve, runId, APPROVER, 'C999');
    expect(unboundClick.status).toBe(200);
    await until('the refusal', () => lastResponse()?.includes('not bound to cluster sandbox-palette'));
    // Every request above was answered (401, or its refusal) before this line: a run it started would exist by now.
    expect(store.listRuns({})).toHaveLength(runs);
  });

  it('serves /healthz and /metrics', async () => {
    expect(await (await fetch(`${url}/healthz`)).text()).toBe('ok\n');
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/patchpilot_bot_ack_seconds_count [1-9]/);
    expect(metrics).toMatch(/patchpilot_bot_replays_refused_total 1/);
    expect(metrics).toMatch(/patchpilot_bot_decisions_total\{decision="approve",accepted="true"\} 1/);
  });

  it('never logs a secret', () => {
    expect(logs.length).toBeGreaterThan(0);
    const all = logs.join('\n');
    for (const secret of [BOT_TOKEN, SIGNING_SECRET]) expect(all).not.toContain(secret);
  });
});
