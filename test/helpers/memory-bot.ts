/** The Slack bot over HTTP on an in-memory cluster of two workers (virtual clock), against the fake Slack. */
import { createBot, type Bot } from '../../src/bot/app.ts';
import type { BotConfig } from '../../src/bot/config.ts';
import type { DiagnosticsPort } from '../../src/cluster/port.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import type { ClusterTarget } from '../../src/service/index.ts';
import { openStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/store.ts';
import { SIGNING_SECRET, type FakeSlack } from './fake-slack.ts';
import { buildCluster, workers } from './fixtures.ts';

export interface MemoryBot {
  bot: Bot;
  store: Store;
  url: string;
  /** Stops the bot, closes its store and stops the fake Slack. */
  stop(): Promise<void>;
}

/** Starts the fake Slack and a bot for cluster "test" with these approvers (none: anyone may approve). */
export async function startMemoryBot(fake: FakeSlack, options: { botToken: string; approvers?: string[] }): Promise<MemoryBot> {
  await fake.start();
  const store = openStore(':memory:');
  const { clock, cluster } = buildCluster(workers(2));
  const target: ClusterTarget = { name: 'test', cluster: cluster as unknown as typeof cluster & DiagnosticsPort, store, plan: parsePlan({ cluster: 'test' }), clock, palette: null };
  const config: BotConfig = {
    mode: 'http',
    signingSecret: SIGNING_SECRET,
    botToken: options.botToken,
    appToken: null,
    apiUrl: fake.apiUrl,
    approvers: options.approvers ?? [],
    channels: new Map(),
    port: 0,
  };
  const bot = createBot({ config, clusters: [target], log: () => {}, botUserId: 'UBOT' });
  const url = (await bot.start(0)).url;
  return {
    bot,
    store,
    url,
    stop: async () => {
      await bot.stop();
      store.close();
      await fake.stop();
    },
  };
}
