/**
 * The approval card is the run's own preview (Orchestrator.preview): its nodes, in order, and its version hash are the
 * ones the approved run patches. The cluster has a node still cordoned by a holder that lost it, which the run
 * finishes first; a card built from the plain list of nodes would show it in its usual place. A schedule set in Slack
 * outlives the bot: a new bot on the same database fires it from the schedules table. Against the fake Slack, on an
 * in-memory cluster in virtual time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBot, type Bot } from '../../src/bot/app.ts';
import type { BotConfig } from '../../src/bot/config.ts';
import { ACTIONS } from '../../src/bot/views.ts';
import type { DiagnosticsPort } from '../../src/cluster/port.ts';
import { ANNOTATIONS } from '../../src/engine/metadata.ts';
import { NATIVE_LABEL_KEY, parsePlan } from '../../src/engine/plan.ts';
import { leaseName, type ClusterTarget } from '../../src/service/index.ts';
import { openStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/store.ts';
import { buttonBody, FakeSlack, send, signedHeaders, SIGNING_SECRET, slashBody } from '../helpers/fake-slack.ts';
import { buildCluster } from '../helpers/fixtures.ts';
import { until } from '../helpers/until.ts';

const REQUESTER = 'UREQUEST1';
const APPROVER = 'UAPPROVE1';

describe('the approval card and the run', () => {
  const fake = new FakeSlack();
  const { clock, cluster } = buildCluster([
    { name: 'worker-1', zone: 'a' },
    { name: 'worker-2', zone: 'a' },
    { name: 'worker-3', zone: 'b', unschedulable: true, annotations: { [ANNOTATIONS.cordonedBy]: 'run-of-a-lost-holder', [ANNOTATIONS.cordonGeneration]: '0' } },
    { name: 'worker-4', zone: 'b' },
    { name: 'win-1', zone: 'a', os: 'windows' },
  ]);
  const config: BotConfig = { mode: 'http', signingSecret: SIGNING_SECRET, botToken: 'xoxb-1-2-cardtest', appToken: null, apiUrl: '', approvers: [APPROVER], channels: new Map(), port: 0 };
  let store: Store;
  let target: ClusterTarget;
  let bot: Bot;
  let url: string;

  beforeAll(async () => {
    await fake.start();
    config.apiUrl = fake.apiUrl;
    // The lost holder's lease (generation 0) has run out: the bot's run takes the cluster under a newer one.
    await cluster.acquireLease({ name: leaseName('test'), holder: 'lost-holder', durationSeconds: 10 });
    clock.increment(11_000);
    store = openStore(':memory:');
    target = { name: 'test', cluster: cluster as unknown as typeof cluster & DiagnosticsPort, store, plan: parsePlan({ cluster: 'test' }), clock, palette: null };
    bot = createBot({ config, clusters: [target], log: () => {}, botUserId: 'UBOT', progressIntervalMs: 0 });
    url = (await bot.start(0)).url;
  });

  afterAll(async () => {
    await bot?.stop();
    store?.close();
    await fake.stop();
  });

  const slash = (text: string) => {
    const body = slashBody(fake, text, REQUESTER);
    return send(url, body, signedHeaders(body));
  };
  const cards = () => fake.called('chat.postMessage').filter((c) => JSON.stringify(c.args.blocks ?? '').includes(ACTIONS.approve));
  const shown = (card: { args: Record<string, unknown> }) => {
    const text = JSON.stringify(card.args.blocks);
    return { nodes: [...text.matchAll(/\d+\. `([^`]+)`/g)].map((m) => m[1]!), hash: /version hash `([^`]+)`/.exec(text)?.[1] };
  };

  it("shows the run's node count, order and hash", async () => {
    await slash('run');
    const card = await until('the card', () => cards()[0]);
    const { nodes, hash } = shown(card);
    expect(nodes).toEqual(['worker-3', 'worker-1', 'worker-2', 'worker-4']);
    const runId = store.listRuns({ limit: 1 })[0]!.id;
    expect(hash).toBe(store.getRun(runId)!.hash);

    const click = buttonBody(fake, ACTIONS.approve, runId, APPROVER);
    await send(url, click, signedHeaders(click));
    await until('the run to finish', () => {
      clock.advanceToNext();
      return store.getRun(runId)?.status === 'done';
    });
    const run = store.requireRun(runId);
    expect(run.outcome).toBe('succeeded');
    expect(run.queue).toEqual(nodes);
    expect(store.getNodeRuns(runId).map((n) => n.node)).toEqual(nodes);
    for (const node of nodes) expect((await cluster.getNode(node))!.labels[NATIVE_LABEL_KEY]).toBe(hash);
  });

  it('keeps a schedule across a restart of the bot: the new bot fires it from the store', async () => {
    await slash('schedule test "*/10 * * * *"');
    await until('the answer', () => fake.responses.some((r) => String(r.body.text).includes('test is patched')));
    expect(store.getSchedule('test')).toMatchObject({ spec: { kind: 'cron', expression: '*/10 * * * *' }, channel: 'C1', requestedBy: REQUESTER });
    await bot.stop();

    const before = cards().length;
    bot = createBot({ config, clusters: [target], log: () => {}, botUserId: 'UBOT', progressIntervalMs: 0 });
    url = (await bot.start(0)).url;
    const fired = await until('a scheduled card', () => {
      clock.advanceToNext();
      return cards()[before];
    });
    expect(JSON.stringify(fired.args.blocks)).toContain(`requested by <@${REQUESTER}>`);
    expect(fired.args.channel).toBe('C1');
    // The bot writes the audit record once Slack has answered the post, so it may follow the card by a turn.
    await until('the fired schedule in the audit log', () => store.auditRows({}).some((r) => r.action === 'slack.schedule.fired' && r.actor === `slack:${REQUESTER}`) || undefined);

    // Nothing left running for the store to be closed under: the schedule off, its run cancelled.
    await slash('schedule test off');
    await until('the schedule to go', () => store.getSchedule('test') === null);
    const pending = store.listRuns({ active: true })[0]!;
    await slash(`cancel ${pending.id}`);
    await until('the run to end', () => store.getRun(pending.id)?.status === 'done');
  });
});
