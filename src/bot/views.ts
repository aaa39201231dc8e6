/**
 * What the bot shows, as Block Kit: the approval card (plan, nodes in order, requester, Approve/Reject with confirm
 * dialogs), its status line, the decision line that replaces the buttons, and the reset confirmation. Pure functions
 * of plain data, so the tests can read what a user sees.
 */
import type { Plan } from '../engine/plan.ts';

export interface Block {
  type: string;
  [key: string]: unknown;
}

export const ACTIONS = { approve: 'approve_run', reject: 'reject_run', resetConfirm: 'reset_confirm' } as const;

export interface CardFacts {
  runId: string;
  cluster: string;
  requester: string;
  plan: Plan;
  /** The version hash the run patches to: each patched node's label value afterwards. */
  hash: string;
  nodes: string[];
  excluded: number;
  status: string;
  decision: { by: string; approved: boolean; at: number } | null;
}

const MAX_LISTED = 25;

export function planSummary(plan: Plan): string {
  return [
    plan.securityOnly ? 'security updates only' : 'all updates',
    `${plan.concurrency} node${plan.concurrency === 1 ? '' : 's'} at a time`,
    plan.rebootIfRequired ? 'reboots where required' : 'no reboots (pending reboots are reported)',
    plan.maxFailures === 0 ? 'halts on the first failure' : `tolerates ${plan.maxFailures} failure${plan.maxFailures === 1 ? '' : 's'}`,
    plan.mode === 'palette' ? 'Palette mode' : null,
  ]
    .filter(Boolean)
    .join(' · ');
}

export function hhmm(at: number): string {
  return `${new Date(at).toISOString().slice(11, 16)} UTC`;
}

export function cardText(facts: CardFacts): string {
  return `OS patch run ${facts.runId} on ${facts.cluster}, requested by ${facts.requester}: ${facts.status}`;
}

export function cardBlocks(facts: CardFacts): Block[] {
  const listed = facts.nodes.slice(0, MAX_LISTED).map((n, i) => `${i + 1}. \`${n}\``);
  if (facts.nodes.length > MAX_LISTED) listed.push(`… and ${facts.nodes.length - MAX_LISTED} more`);
  const blocks: Block[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `*OS patch run on \`${facts.cluster}\`* requested by <@${facts.requester}>\n${planSummary(facts.plan)}` } },
    { type: 'section', text: { type: 'mrkdwn', text: `*Status:* ${facts.status}` } },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: facts.nodes.length === 0 ? '*Nodes:* none to patch' : `*Nodes, in order* (${facts.nodes.length}${facts.excluded ? `; ${facts.excluded} left out` : ''}):\n${listed.join('\n')}`,
      },
    },
    { type: 'context', elements: [{ type: 'mrkdwn', text: `run \`${facts.runId}\` · version hash \`${facts.hash}\` · \`/patch status ${facts.cluster}\` · someone other than <@${facts.requester}> approves` }] },
  ];
  if (facts.decision) {
    const { by, approved, at } = facts.decision;
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `${approved ? ':white_check_mark: Approved' : ':x: Rejected'} by <@${by}> at ${hhmm(at)}` }] });
  } else {
    blocks.push({
      type: 'actions',
      block_id: `approval:${facts.runId}`,
      elements: [
        button(ACTIONS.approve, 'Approve', 'primary', facts.runId, {
          title: 'Approve this run?',
          text: `${facts.nodes.length} node(s) of ${facts.cluster} will be cordoned, drained, patched and, where required, rebooted, ${facts.plan.concurrency} at a time.`,
          confirm: 'Approve',
        }),
        button(ACTIONS.reject, 'Reject', 'danger', facts.runId, { title: 'Reject this run?', text: 'Nothing will be patched; the request is closed.', confirm: 'Reject' }),
      ],
    });
  }
  return blocks;
}

function button(actionId: string, label: string, style: 'primary' | 'danger', value: string, confirm: { title: string; text: string; confirm: string }): Record<string, unknown> {
  return {
    type: 'button',
    action_id: actionId,
    text: { type: 'plain_text', text: label },
    style,
    value,
    confirm: {
      title: { type: 'plain_text', text: confirm.title },
      text: { type: 'plain_text', text: confirm.text.slice(0, 300) },
      confirm: { type: 'plain_text', text: confirm.confirm },
      deny: { type: 'plain_text', text: 'Cancel' },
      style,
    },
  };
}

export function resetBlocks(text: string, cluster: string, nodes: string[]): Block[] {
  return [
    { type: 'section', text: { type: 'mrkdwn', text } },
    {
      type: 'actions',
      block_id: `reset:${cluster}`,
      elements: [
        button(ACTIONS.resetConfirm, `Remove the labels (${nodes.length} node${nodes.length === 1 ? '' : 's'})`, 'danger', JSON.stringify({ cluster, nodes }), {
          title: 'Remove the patch labels?',
          text: `The next run patches ${nodes.length} node(s) of ${cluster} again.`,
          confirm: 'Remove',
        }),
      ],
    },
  ];
}
