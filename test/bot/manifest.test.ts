/**
 * The Slack app manifests users create the app from: well-formed for Slack's manifest API, and in agreement with the
 * handlers the bot registers (every slash command handled, interactivity on for the buttons, the scopes it calls).
 */
import { readFileSync } from 'node:fs';
import type { AppsManifestCreateArguments } from '@slack/web-api';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createBot } from '../../src/bot/app.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import type { ClusterTarget } from '../../src/service/index.ts';

type Manifest = AppsManifestCreateArguments['manifest'];

const bot = createBot({
  config: { mode: 'http', signingSecret: 'secret-for-tests', botToken: 'xoxb-test', appToken: null, apiUrl: 'http://127.0.0.1:9/api/', approvers: [], channels: new Map(), port: 0 },
  clusters: [{ name: 'c', plan: parsePlan({ cluster: 'c' }), store: null, palette: null } as unknown as ClusterTarget],
  botUserId: 'UBOT',
  log: () => {},
});

describe.each(['slack/manifest.yml', 'slack/manifest.socket.yml'])('%s', (file) => {
  const manifest: Manifest = parse(readFileSync(file, 'utf8'));
  const socket = manifest.settings?.socket_mode_enabled === true;

  it('declares exactly the slash commands the bot handles', () => {
    expect((manifest.features?.slash_commands ?? []).map((c) => c.command).sort()).toEqual([...bot.handlers.commands].sort());
  });

  it('enables interactivity for the buttons, on the events URL over HTTP', () => {
    expect(bot.handlers.actions.length).toBeGreaterThan(0);
    expect(manifest.settings?.interactivity?.is_enabled).toBe(true);
    if (!socket) {
      expect(manifest.settings?.interactivity?.request_url).toMatch(/\/slack\/events$/);
      for (const command of manifest.features?.slash_commands ?? []) expect(command.url).toMatch(/\/slack\/events$/);
    } else {
      for (const command of manifest.features?.slash_commands ?? []) expect(command.url).toBeUndefined();
    }
  });

  it('asks for the scopes the bot uses, and no more', () => {
    expect([...(manifest.oauth_config?.scopes?.bot ?? [])].sort()).toEqual(['chat:write', 'chat:write.public', 'commands', 'usergroups:read']);
  });
});
