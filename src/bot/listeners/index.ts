/**
 * The bot's listeners, one module per kind as Bolt's own project layout has them: each `register(app, deps)` adds its
 * listeners to the App and says what it registered.
 */
import type { App } from '@slack/bolt';
import type { BotDeps } from '../deps.ts';
import * as actions from './actions.ts';
import * as commands from './commands.ts';
import * as events from './events.ts';

export interface Registered {
  commands: string[];
  actions: string[];
  events: string[];
}

export function registerListeners(app: App, deps: BotDeps): Registered {
  return { commands: commands.register(app, deps), actions: actions.register(app, deps), events: events.register(app, deps) };
}
