/** Events API: the App Home tab shows the fleet (every cluster's status) when someone opens it. */
import type { App } from '@slack/bolt';
import type { BotDeps } from '../deps.ts';
import { homeView } from '../fleet.ts';

export function register(app: App, deps: BotDeps): string[] {
  app.event('app_home_opened', async ({ event, client }) => {
    if (event.tab !== 'home') return;
    const statuses = await Promise.all([...deps.services.values()].map((s) => deps.fleet.of(s)));
    await client.views.publish({ user_id: event.user, view: homeView(statuses, Date.now()) as never });
  });
  return ['app_home_opened'];
}
