/**
 * One approval policy, decided by the engine: the bot resolves Slack user groups through usergroups.users.list (the
 * Orchestrator's injected membership resolver, cached) and reports the engine's answer. A member of an approver group
 * may approve; a stranger, and the requester, may not. A run naming only nodes the cluster lacks is refused before
 * any card is posted. Against the fake Slack, on an in-memory cluster in virtual time (nothing waits on the clock).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/bot/views.ts';
import type { Store } from '../../src/store/store.ts';
import { buttonBody, FakeSlack, send, signedHeaders, SIGNING_SECRET, slashBody } from '../helpers/fake-slack.ts';
import { startMemoryBot, type MemoryBot } from '../helpers/memory-bot.ts';
import { until } from '../helpers/until.ts';

const REQUESTER = 'UREQUEST1';
const MEMBER = 'UMEMBER1';
const STRANGER = 'USTRANGE1';
const GROUP = 'SOPSTEAM1';

describe('approval by a Slack user group', () => {
  const fake = new FakeSlack();
  let store: Store;
  let url: string;
  let running: MemoryBot | undefined;

  beforeAll(async () => {
    fake.groups.set(GROUP, [MEMBER, 'UOTHER1']);
    running = await startMemoryBot(fake, { botToken: 'xoxb-1-2-approvers', approvers: [GROUP] });
    ({ store, url } = running);
  });

  afterAll(async () => {
    await running?.stop();
  });

  const slash = (text: string, user: string) => {
    const body = slashBody(fake, text, user);
    return send(url, body, signedHeaders(body));
  };
  const click = (value: string, user: string) => {
    const body = buttonBody(fake, ACTIONS.approve, value, user);
    return send(url, body, signedHeaders(body));
  };
  const responseCount = () => fake.responses.length;
  const nextResponse = async (after: number) => (await until('an answer', () => fake.responses[after]?.body.text as string | undefined));

  it('refuses a run naming nodes the cluster does not have, before any card', async () => {
    const before = responseCount();
    await slash('run --nodes ghost-1,ghost-2', REQUESTER);
    expect(await nextResponse(before)).toBe('Refused: no node named `ghost-1`, `ghost-2` in test.');
    expect(fake.called('chat.postMessage')).toHaveLength(0);
    expect(store.listRuns()).toEqual([]);
  });

  it('the engine refuses the requester and a stranger, and accepts a member of the approver group', async () => {
    await slash('run', REQUESTER);
    await until('the card', () => fake.called('chat.postMessage').length === 1);
    const runId = store.listRuns({ limit: 1 })[0]!.id;
    expect((store.getRun(runId)!.plan as { approval: { approvers: string[] } }).approval.approvers).toEqual([GROUP]);

    let before = responseCount();
    await click(runId, REQUESTER);
    expect(await nextResponse(before)).toBe(`Refused: ${REQUESTER} requested this run and cannot approve it (two-person rule).`);

    before = responseCount();
    await click(runId, STRANGER);
    expect(await nextResponse(before)).toBe(`Refused: ${STRANGER} is not an approver for cluster test.`);
    expect(store.getDecision(runId)).toBeNull();

    await click(runId, MEMBER);
    await until('the decision', () => store.getDecision(runId));
    expect(store.getDecision(runId)).toMatchObject({ approver: MEMBER, decision: 'approved' });
    // The engine recorded the membership it decided with.
    expect(store.auditRows({ runId }).some((row) => row.actor === MEMBER || JSON.stringify(row.details).includes(MEMBER))).toBe(true);
    // Two questions about the group within its cache lifetime: Slack was asked once.
    expect(fake.called('usergroups.users.list').map((c) => c.args.usergroup)).toEqual([GROUP]);
  });

  it('refuses a signed request stamped more than five minutes in the future (Bolt checks only the past)', async () => {
    const body = slashBody(fake, 'help', REQUESTER);
    const future = await send(url, body, signedHeaders(body, SIGNING_SECRET, Math.floor(Date.now() / 1000) + 15 * 60));
    expect(future).toEqual({ status: 401, text: '{"error":"timestamp too far in the future"}' });
    const soon = slashBody(fake, 'help', REQUESTER);
    expect((await send(url, soon, signedHeaders(soon, SIGNING_SECRET, Math.floor(Date.now() / 1000) + 60))).status).toBe(200);
  });
});
