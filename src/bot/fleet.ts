/**
 * The fleet view in Slack: `/patch status` text and the App Home tab, built from the fleet status
 * (src/service/fleet-status.ts, the one place that decides compliance). Pure functions of plain data.
 */
import { age, clusterSummary, pendingText, type ClusterStatus } from '../service/fleet-status.ts';
import type { Block } from './views.ts';

/** At most this many nodes listed per cluster: Slack caps a message at 40,000 characters and people read less. */
const MAX_NODES = 15;

function nodeLines(status: ClusterStatus, now: number): string[] {
  const behind = status.nodes.filter((n) => n.linux && !n.compliant);
  const lines = behind.slice(0, MAX_NODES).map((n) => {
    const parts = [
      `security updates: ${pendingText(n)}`,
      n.rebootRequired ? 'reboot pending' : '',
      `last patched ${n.lastPatch ? `${age(n.lastPatch.at, now)} (${n.lastPatch.status})` : 'never'}`,
      n.cordoned ? `cordoned by ${n.cordonedBy}` : '',
      n.disabled ? 'disabled' : '',
    ].filter(Boolean);
    return `• \`${n.name}\` ${n.os ? `(${n.os}${n.kernel ? `, ${n.kernel}` : ''}) ` : ''}— ${n.reason}: ${parts.join(', ')}`;
  });
  if (behind.length > MAX_NODES) lines.push(`_…and ${behind.length - MAX_NODES} more: \`patchpilot status --json\` lists every node_`);
  return lines;
}

/** `/patch status` for one cluster: compliance first, then the run line the store knows (or that there is none). */
export function clusterStatusText(status: ClusterStatus, runLine: string, now: number): string {
  const head = `*${status.name}*: ${clusterSummary(status, now).replace(/^cluster [^:]+: /, '')}`;
  return [head, ...(status.error === undefined ? nodeLines(status, now) : []), runLine].join('\n');
}

/** The App Home tab: every cluster the bot serves, compliance at a glance. */
export function homeView(statuses: readonly ClusterStatus[], now: number): { type: 'home'; blocks: Block[] } {
  const blocks: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: 'patchpilot: fleet compliance' } },
    { type: 'context', elements: [{ type: 'mrkdwn', text: `${statuses.length} cluster(s) · updated ${new Date(now).toISOString().slice(0, 16).replace('T', ' ')} UTC · \`/patch scan CLUSTER\` refreshes a cluster` }] },
  ];
  for (const status of statuses) {
    blocks.push({ type: 'divider' });
    const icon = status.error !== undefined ? ':grey_question:' : status.total > 0 && status.compliant === status.total ? ':white_check_mark:' : ':warning:';
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `${icon} ${clusterSummary(status, now).replace(/^cluster ([^:]+):/, '*$1*:')}` } });
    const lines = status.error === undefined ? nodeLines(status, now).slice(0, 10) : [];
    if (lines.length > 0) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n').slice(0, 2900) } });
  }
  // Slack accepts at most 100 blocks in a view.
  return { type: 'home', blocks: blocks.slice(0, 100) };
}
