/**
 * The buttons: Approve and Reject on a card (the engine decides, through the run's cluster), and the confirmation of
 * a reset. Each is acknowledged at once; refusals go to the person who clicked, ephemerally, and are audited.
 */
import type { App } from '@slack/bolt';
import { isRunId, planReset, reset } from '../../service/index.ts';
import { audit, auditedCluster, clusterFor, clusterOfRun, type BotDeps } from '../deps.ts';
import { ACTIONS } from '../views.ts';

export function register(app: App, deps: BotDeps): string[] {
  const { config, metrics, log, redact } = deps;

  for (const actionId of [ACTIONS.approve, ACTIONS.reject]) {
    app.action(actionId, async ({ ack, body, action, respond }) => {
      await ack();
      const user = body.user.id;
      // Our cards carry the run id; anything else (a number, null, a page of text) is not one, and is not echoed.
      const value = 'value' in action ? action.value : undefined;
      const runId = typeof value === 'string' && isRunId(value) ? value : '';
      const channel = body.channel?.id ?? '';
      const service = runId === '' ? undefined : clusterOfRun(deps, runId);
      const approved = actionId === ACTIONS.approve;
      const refuse = async (why: string, reason: string) => {
        metrics.refusal(reason);
        audit(deps, service ?? auditedCluster(deps, channel), { actor: user, action: 'slack.decision.refused', runId, details: { channel, why } });
        await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${why}.` });
      };
      if (runId === '') return refuse('the button carries no run id', 'usage');
      // A decision is always made on a card in a channel, which the audit record names.
      if (channel === '') return refuse('the click carries no channel', 'usage');
      if (!service) return refuse(`there is no run ${runId}`, 'unknown');
      if (config.channels.size > 0 && config.channels.get(channel) !== service.name) return refuse(`this channel is not bound to cluster ${service.name}`, 'channel');
      try {
        await deps.cards.decide(service, runId, user, approved, respond);
      } catch (err) {
        log('error', 'decision failed:', err);
        await respond({ response_type: 'ephemeral', replace_original: false, text: `:warning: the decision could not be recorded: ${redact(err instanceof Error ? err.message : String(err))}` });
      }
    });
  }

  app.action(ACTIONS.resetConfirm, async ({ ack, body, action, respond }) => {
    await ack();
    const user = body.user.id;
    const channel = body.channel?.id ?? '';
    let request: { cluster: string; nodes: string[] } | null = null;
    try {
      const value = JSON.parse('value' in action && typeof action.value === 'string' ? action.value : '{}') as unknown;
      // The button's value as resetBlocks wrote it: { cluster, nodes: [names] }. Anything else is not ours.
      if (typeof value === 'object' && value !== null) {
        const { cluster, nodes } = value as Record<string, unknown>;
        // resetBlocks never writes an empty list (a plan with nothing to reset has no button).
        if (typeof cluster === 'string' && Array.isArray(nodes) && nodes.length > 0 && nodes.every((n) => typeof n === 'string')) request = { cluster, nodes };
      }
    } catch {
      // not JSON: refused below
    }
    if (request === null) {
      metrics.refusal('usage');
      return void (await respond({ response_type: 'ephemeral', replace_original: false, text: 'Refused: the confirmation is not readable.' }));
    }
    const resolved = clusterFor(deps, channel, request.cluster);
    if ('refusal' in resolved) {
      metrics.refusal('channel');
      return void (await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${resolved.refusal}.` }));
    }
    const { service } = resolved;
    try {
      const plan = await planReset(service.target, { nodes: request.nodes });
      const result = await reset(service.target, plan, { by: `slack:${user}`, confirmed: true });
      audit(deps, service, { actor: user, action: 'slack.reset', details: { channel, nodes: result.changed } });
      await respond({ response_type: 'ephemeral', replace_original: true, text: `Reset ${service.name}: labels removed from ${result.changed.length} node(s)${result.changed.length ? `: ${result.changed.join(', ')}` : ''}.` });
    } catch (err) {
      await respond({ response_type: 'ephemeral', replace_original: false, text: `:warning: reset failed: ${redact(err instanceof Error ? err.message : String(err))}` });
    }
  });

  return [ACTIONS.approve, ACTIONS.reject, ACTIONS.resetConfirm];
}
