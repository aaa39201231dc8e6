/**
 * Approval cards: a run request becomes a card built from the orchestrator's own preview of the run (the engine's
 * selection and the version hash the run patches to), then the run itself is started from that preview, so the card
 * shows what the run does. Decisions go to the engine through the orchestrator; the card then shows who decided, and
 * the run's progress arrives in its thread.
 */
import { randomUUID } from 'node:crypto';
import type { App, RespondFn } from '@slack/bolt';
import { parsePlan } from '../engine/plan.ts';
import type { ClusterService, RunEvent, SchedulerOptions } from '../service/index.ts';
import type { PatchCommand } from './commands.ts';
import { audit, BotRefusal, type BotDeps } from './deps.ts';
import { RunProgress } from './progress.ts';
import { cardBlocks, cardText, type CardFacts } from './views.ts';

/** Who asked, where, and how to answer them. */
export interface RequestContext {
  user: string;
  channel: string;
  respond: RespondFn;
  post: App['client']['chat']['postMessage'];
}

interface Card {
  channel: string;
  ts: string;
  facts: CardFacts;
  progress: RunProgress;
}

type CardDeps = Pick<BotDeps, 'client' | 'config' | 'metrics' | 'log'>;

export class Cards {
  readonly #deps: CardDeps;
  readonly #intervalMs: number;
  readonly #cards = new Map<string, Card>();

  constructor(deps: CardDeps, options: { intervalMs: number }) {
    this.#deps = deps;
    this.#intervalMs = options.intervalMs;
  }

  /** Starts a run that waits for approval and posts its card in the channel. */
  async request(cmd: Extract<PatchCommand, { kind: 'run' }>, service: ClusterService, ctx: RequestContext): Promise<{ summary: string; runId: string }> {
    const { client, config } = this.#deps;
    const plan = parsePlan({
      ...service.target.plan,
      ...(cmd.nodes ? { nodes: cmd.nodes } : {}),
      ...(cmd.noReboot ? { rebootIfRequired: false } : {}),
      ...(cmd.concurrency !== undefined ? { concurrency: cmd.concurrency } : {}),
      trigger: { kind: 'on-demand' },
      // User groups stay in the list: the engine asks the membership resolver about them.
      approval: { required: true, approvers: config.approvers, twoPersonRule: true },
    });
    // Each Slack request is a trigger of its own, starting at once.
    const preview = await service.orchestrator.preview({ plan, requestedBy: ctx.user, triggerId: `slack-${randomUUID().slice(0, 8)}`, notBefore: null });
    if (preview.selection.unknown.length > 0) {
      // Refused before a card is posted: nobody should approve a run that cannot start.
      throw new BotRefusal(`no node named ${preview.selection.unknown.map((n) => `\`${n}\``).join(', ')} in ${service.name}`);
    }
    const handle = await service.orchestrator.start(preview);
    const facts: CardFacts = {
      runId: handle.runId,
      cluster: service.name,
      requester: ctx.user,
      plan,
      hash: preview.hash,
      nodes: preview.selection.selected.map((s) => s.name),
      excluded: preview.selection.excluded.length,
      status: 'waiting for approval',
      decision: null,
    };
    const posted = await ctx.post({ channel: ctx.channel, text: cardText(facts), blocks: cardBlocks(facts) });
    const ts = posted.ts!;
    const card: Card = {
      channel: ctx.channel,
      ts,
      facts,
      progress: new RunProgress(
        {
          reply: async (text, broadcast) => {
            if (broadcast) await client.chat.postMessage({ channel: ctx.channel, thread_ts: ts, text, reply_broadcast: true });
            else await client.chat.postMessage({ channel: ctx.channel, thread_ts: ts, text });
          },
          auditHead: () => service.auditHead(),
          status: async (text) => {
            card.facts = { ...card.facts, status: text };
            await client.chat.update({ channel: ctx.channel, ts, text: cardText(card.facts), blocks: cardBlocks(card.facts) });
          },
        },
        { selected: facts.nodes.length, intervalMs: this.#intervalMs },
      ),
    };
    this.#cards.set(handle.runId, card);
    return { summary: `run ${handle.runId} requested, ${facts.nodes.length} node(s); card posted`, runId: handle.runId };
  }

  /** Compare-and-set through the store: of two clicks (or two approvers), one decides and the other is told. */
  async decide(service: ClusterService, runId: string, user: string, approved: boolean, respond: RespondFn): Promise<{ summary: string }> {
    const { client, metrics } = this.#deps;
    const earlier = service.decision(runId);
    if (earlier) {
      const text = `run ${runId} was already ${earlier.decision} by <@${earlier.approver}> at ${new Date(earlier.at).toISOString().slice(11, 16)} UTC`;
      metrics.decision(approved ? 'approve' : 'reject', false);
      audit(this.#deps, service, { actor: user, action: 'slack.decision.refused', runId, details: { why: text } });
      await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${text}.` });
      return { summary: text };
    }
    // The engine decides (approvalVerdict, rejectionVerdict; group approvers resolved through Slack); this only reports
    // its answer.
    const answer = await service.orchestrator.decide(runId, { type: approved ? 'APPROVE' : 'REJECT', by: user });
    metrics.decision(approved ? 'approve' : 'reject', answer.ok);
    if (!answer.ok) metrics.refusal('approver');
    audit(this.#deps, service, { actor: user, action: approved ? 'slack.decision.approve' : 'slack.decision.reject', runId, details: { accepted: answer.ok, message: answer.message } });
    if (!answer.ok) {
      await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${answer.message}.` });
      return { summary: answer.message };
    }
    const card = this.#cards.get(runId);
    if (card) {
      card.facts = { ...card.facts, decision: { by: user, approved, at: service.now() }, status: approved ? 'approved, starting' : 'rejected' };
      await client.chat.update({ channel: card.channel, ts: card.ts, text: cardText(card.facts), blocks: cardBlocks(card.facts) });
    }
    return { summary: answer.message };
  }

  /** A run's event, for its card if it has one here. */
  onRunEvent(event: RunEvent): void {
    this.#cards.get(event.runId)?.progress.handle(event);
  }

  /** Resolves when every Slack call about runs queued so far has been made. */
  async settled(): Promise<void> {
    await Promise.all([...this.#cards.values()].map((c) => c.progress.idle()));
  }

  /**
   * What the clusters' schedules do with a fire: ask for a run as the person who set the schedule, its card in the
   * schedule's channel, and audit it; a fire skipped because a run is active is audited with that run.
   */
  scheduleHooks(services: ReadonlyMap<string, ClusterService>): Pick<SchedulerOptions, 'fire' | 'onEvent'> {
    const { client, log } = this.#deps;
    const noReply: RespondFn = async () => ({}) as never;
    const serviceOf = (cluster: string) => {
      const service = services.get(cluster);
      if (!service) throw new Error(`no cluster ${cluster} here`);
      return service;
    };
    return {
      fire: (cluster, setting) =>
        this.request({ kind: 'run', noReboot: false }, serviceOf(cluster), { user: setting.requestedBy, channel: setting.channel, respond: noReply, post: client.chat.postMessage.bind(client.chat) }),
      onEvent: (event) => {
        const by = event.setting.requestedBy;
        if (event.type === 'skipped') {
          audit(this.#deps, services.get(event.cluster), { actor: by, action: 'slack.schedule.skipped', runId: event.activeRun.id, details: { cluster: event.cluster, reason: `run ${event.activeRun.id} is ${event.activeRun.status}` } });
        } else if (event.type === 'fired') {
          audit(this.#deps, services.get(event.cluster), { actor: by, action: 'slack.schedule.fired', runId: event.runId, details: { cluster: event.cluster, channel: event.setting.channel } });
        } else {
          log('error', `the scheduled run of ${event.cluster} could not start:`, event.error);
        }
      },
    };
  }
}
