/**
 * Slack user groups among the approvers (ids starting with S), resolved through usergroups.users.list and cached for a
 * while: the Orchestrator's injected membership resolver. The engine decides with the answer.
 */
import type { App } from '@slack/bolt';
import type { MembershipResolver } from '../service/index.ts';
import type { BotLog } from './deps.ts';

export function slackGroups(client: App['client'], options: { ttlMs: number; log: BotLog }): MembershipResolver {
  const cache = new Map<string, { members: readonly string[]; until: number }>();
  async function members(group: string): Promise<readonly string[]> {
    const cached = cache.get(group);
    if (cached && cached.until > Date.now()) return cached.members;
    try {
      const answer = await client.usergroups.users.list({ usergroup: group });
      const found = answer.users ?? [];
      cache.set(group, { members: found, until: Date.now() + options.ttlMs });
      return found;
    } catch (err) {
      options.log('warn', `user group ${group} could not be read:`, err);
      return [];
    }
  }
  return async (user, entries) => {
    const groups = entries.filter((entry) => /^S[A-Z0-9]+$/.test(entry));
    const found = await Promise.all(groups.map(async (group) => ((await members(group)).includes(user) ? group : null)));
    return found.filter((group): group is string => group !== null);
  };
}
