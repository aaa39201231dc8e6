/**
 * `/patch`: parsed (src/bot/commands.ts), routed to the channel's cluster, answered. Usage errors, refusals, status
 * and history are answered in the acknowledgement itself; the rest is acknowledged at once and answered ephemerally
 * when done. Every command is audited.
 */
import type { App } from '@slack/bolt';
import { describeSchedule, scheduleSchema } from '../../engine/schedule.ts';
import { doctor, formatDoctorReport, formatResetPlan, OrchestratorError, planReset, unstick, type ClusterService } from '../../service/index.ts';
import type { RequestContext } from '../cards.ts';
import { HELP_TEXT, parsePatchCommand, type PatchCommand } from '../commands.ts';
import { audit, auditedCluster, BotRefusal, clusterFor, clusterOfRun, type BotDeps } from '../deps.ts';
import { historyText } from '../status.ts';
import { resetBlocks } from '../views.ts';

const SCHEDULE_ACTION = 'slack.schedule';

export function register(app: App, deps: BotDeps): string[] {
  const { config, services, metrics, log, redact } = deps;

  app.command('/patch', async ({ command, ack, respond, client }) => {
    const started = performance.now();
    const parsed = parsePatchCommand(command.text ?? '');
    const user = command.user_id;
    const channel = command.channel_id;
    const acked = async (text: string) => {
      await ack({ response_type: 'ephemeral', text });
      metrics.ack(performance.now() - started);
    };
    if (!parsed.ok) {
      await acked(`${parsed.error}\nUsage: \`${parsed.usage}\``);
      metrics.refusal('usage');
      audit(deps, auditedCluster(deps, channel), { actor: user, action: 'slack.command.refused', details: { channel, text: command.text, reason: parsed.error } });
      return;
    }
    const cmd = parsed.command;
    metrics.command(cmd.kind);
    if (cmd.kind === 'help') return acked(HELP_TEXT);
    const named = 'cluster' in cmd ? cmd.cluster : undefined;
    if (cmd.kind === 'status' && named === undefined && config.channels.size === 0 && services.size > 1) {
      // No cluster named where no channel is bound: the whole fleet, one paragraph per cluster.
      await acked(await deps.fleet.answer([...services.values()]));
      audit(deps, auditedCluster(deps, channel), { actor: user, action: 'slack.command.status', details: { channel, text: command.text } });
      return;
    }
    const runService = 'runId' in cmd ? clusterOfRun(deps, cmd.runId) : undefined;
    const resolved = runService ? { service: runService } : clusterFor(deps, channel, named);
    if ('refusal' in resolved) {
      await acked(`Refused: ${resolved.refusal}.`);
      metrics.refusal('channel');
      audit(deps, auditedCluster(deps, channel), { actor: user, action: 'slack.command.refused', details: { channel, command: cmd.kind, reason: resolved.refusal } });
      return;
    }
    const { service } = resolved;
    if (runService && config.channels.size > 0 && config.channels.get(channel) !== runService.name) {
      await acked(`Refused: this channel is not bound to cluster ${runService.name}.`);
      metrics.refusal('channel');
      audit(deps, service, { actor: user, action: 'slack.command.refused', details: { channel, command: cmd.kind, reason: 'channel not bound' } });
      return;
    }
    if (cmd.kind === 'status' || cmd.kind === 'history') {
      // Answered at once, in the ack itself, with no second request to Slack: the cluster's compliance (read with a
      // deadline inside Slack's three seconds) and the store's last run.
      await acked(cmd.kind === 'status' ? await deps.fleet.answer([service]) : historyText(service));
      audit(deps, service, { actor: user, action: `slack.command.${cmd.kind}`, details: { channel, text: command.text } });
      return;
    }
    await acked(`Working on \`/patch ${command.text.trim()}\` for ${service.name}…`);
    try {
      const result = await execute(deps, cmd, service, { user, channel, respond, post: client.chat.postMessage.bind(client.chat) });
      audit(deps, service, { actor: user, action: `slack.command.${cmd.kind}`, runId: 'runId' in cmd ? cmd.runId : (result.runId ?? null), details: { channel, text: command.text, result: result.summary } });
    } catch (err) {
      // A refusal the user can act on (another orchestrator holds the cluster: who, since when, what to do) keeps its hint.
      const hint = err instanceof OrchestratorError ? ` (${err.hint})` : '';
      const message = `${err instanceof Error ? err.message : String(err)}${hint}`;
      if (err instanceof BotRefusal) {
        metrics.refusal('usage');
        audit(deps, service, { actor: user, action: 'slack.command.refused', details: { channel, text: command.text, reason: message } });
        await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${message}.` }).catch(() => {});
        return;
      }
      log('error', `/patch ${cmd.kind} failed:`, err);
      audit(deps, service, { actor: user, action: `slack.command.${cmd.kind}`, details: { channel, text: command.text, error: message } });
      await respond({ response_type: 'ephemeral', replace_original: false, text: `:warning: \`/patch ${cmd.kind}\` failed: ${redact(message)}` }).catch(() => {});
    }
  });
  return ['/patch'];
}

/** The commands answered after the acknowledgement. */
async function execute(deps: BotDeps, cmd: PatchCommand, service: ClusterService, ctx: RequestContext): Promise<{ summary: string; runId?: string }> {
  const { redact } = deps;
  const say = async (text: string) => {
    await ctx.respond({ response_type: 'ephemeral', replace_original: false, text });
    return { summary: text.split('\n')[0] ?? '' };
  };
  const target = service.target;
  switch (cmd.kind) {
    case 'status':
      return say(await deps.fleet.answer([service]));
    case 'scan': {
      await ctx.respond({ response_type: 'ephemeral', replace_original: false, text: `Scanning the Linux nodes of ${service.name} (the agent report-only, no cordon)…` });
      const summary = await service.scan();
      deps.fleet.drop(service.name);
      const failed = summary.nodes.filter((n) => n.findings.pending === null);
      const head = `Scanned ${summary.nodes.length} node(s) of ${service.name}${failed.length ? `; ${failed.length} could not be scanned: ${failed.map((n) => `\`${n.node}\` (${redact(n.findings.error ?? '')})`).join(', ')}` : ''}.`;
      return say(`${head}\n${await deps.fleet.answer([service])}`);
    }
    case 'history':
      return say(historyText(service));
    case 'doctor':
      return say(redact(formatDoctorReport(await doctor(target, { command: (verb, args) => `/patch ${[verb, service.name, ...args.filter((a) => a !== '--cluster' && a !== service.name)].join(' ')}` }))));
    case 'unstick': {
      const result = await unstick(target, { by: `slack:${ctx.user}` });
      return say([result.changed ? `*unstick ${service.name}:*` : `*unstick ${service.name}:* nothing to unstick`, ...result.actions.map((a) => `• ${a}`), ...result.notes.map((n) => `_${n}_`)].join('\n'));
    }
    case 'reset': {
      const plan = await planReset(target, cmd.nodes ? { nodes: cmd.nodes } : {});
      const nodes = plan.nodes.map((n) => n.name);
      if (nodes.length === 0) return say(`Nothing to reset on ${service.name}: no node carries the patch labels.`);
      await ctx.respond({ response_type: 'ephemeral', replace_original: false, text: formatResetPlan(plan), blocks: resetBlocks(formatResetPlan(plan), service.name, nodes) });
      return { summary: `asked to confirm the reset of ${nodes.length} node(s)` };
    }
    case 'approve':
    case 'reject':
      return deps.cards.decide(service, cmd.runId, ctx.user, cmd.kind === 'approve', ctx.respond);
    case 'pause':
    case 'resume':
    case 'cancel': {
      // The engine knows people by their Slack user id, as approvers are named and runs requested; `decide` resolves
      // the user groups a cancel before the run starts may be allowed through.
      const answer = await service.orchestrator.decide(cmd.runId, { type: cmd.kind.toUpperCase() as 'PAUSE' | 'RESUME' | 'CANCEL', by: ctx.user });
      return say(answer.ok ? `:ok_hand: ${answer.message}` : `Refused: ${answer.message}.`);
    }
    case 'schedule': {
      const spec = cmd.schedule.kind === 'off' ? null : cmd.schedule.kind === 'preset' ? { kind: 'preset' as const, preset: cmd.schedule.preset } : { kind: 'cron' as const, expression: cmd.schedule.cron };
      // The service keeps the schedule (its table) and fires it; the audit log keeps who changed it when.
      const next = service.scheduler.set(spec === null ? null : { spec, channel: ctx.channel, requestedBy: ctx.user });
      audit(deps, service, { actor: ctx.user, action: SCHEDULE_ACTION, details: { cluster: service.name, channel: ctx.channel, schedule: spec } });
      return say(
        spec === null
          ? `No schedule for ${service.name} any more.`
          : `${service.name} is patched ${describeSchedule(scheduleSchema.parse(spec))}: each time, a run asks for approval in this channel (requested by <@${ctx.user}>). Next: ${next === null ? 'never' : new Date(next).toISOString().replace('T', ' ').slice(0, 16)} UTC.`,
      );
    }
    case 'run':
      return deps.cards.request(cmd, service, ctx);
    case 'help':
      return say('');
  }
}
