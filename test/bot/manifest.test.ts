/**
 * The Slack app manifests users create the app from: well-formed for Slack's manifest API, and in agreement with the
 * handlers the bot registers (every slash command handled, interactivity on for the buttons, the scopes it calls).
 *
 * Well-formed is checked by the TypeScript compiler: `yaml` parses to `any`, so assigning the parsed object to a
 * variable of the manifest type would check nothing. Each manifest is written out as an object literal that must
 * `satisfies AppsManifestCreateArguments['manifest']` and compiled with tsc, so a misspelt key (excess property) or a
 * wrong type fails; a deliberately broken manifest shows that the check can fail.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AppsManifestCreateArguments } from '@slack/web-api';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createBot } from '../../src/bot/app.ts';
import { USAGE } from '../../src/bot/commands.ts';
import { ACTIONS } from '../../src/bot/views.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import type { ClusterTarget } from '../../src/service/index.ts';

type Manifest = AppsManifestCreateArguments['manifest'];

const bot = createBot({
  config: { mode: 'http', signingSecret: 'secret-for-tests', botToken: 'xoxb-test', appToken: null, apiUrl: 'http://127.0.0.1:9/api/', approvers: [], channels: new Map(), port: 0 },
  clusters: [{ name: 'c', plan: parsePlan({ cluster: 'c' }), store: null, palette: null } as unknown as ClusterTarget],
  botUserId: 'UBOT',
  log: () => {},
});

/**
 * The bot token scopes each Web API method the bot calls needs (docs.slack.dev/reference/methods). A method missing
 * here fails the test: add it with its scopes, and the scopes to both manifests. chat:write.public lets the bot post
 * in channels it was not invited to (the card goes where /patch was typed).
 */
const METHOD_SCOPES: Record<string, string[]> = {
  'auth.test': [],
  'chat.postMessage': ['chat:write', 'chat:write.public'],
  'chat.update': ['chat:write'],
  'chat.postEphemeral': ['chat:write'],
  'chat.getPermalink': [],
  'usergroups.users.list': ['usergroups:read'],
  'users.info': ['users:read'],
  'reactions.add': ['reactions:write'],
  'views.open': [],
  'views.publish': [],
};

/** Every Web API method called in src/bot and its folders (`client.chat.postMessage(...)`, `app.client.usergroups.users.list`, ...). */
function methodsCalled(): string[] {
  const methods = new Set<string>();
  for (const file of readdirSync('src/bot', { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(join('src/bot', file), 'utf8');
    for (const match of source.matchAll(/\bclient\.([a-z]+(?:\.[a-zA-Z]+)+)/g)) {
      methods.add(match[1]!.replace(/\.(bind|call|apply)$/, ''));
    }
    for (const match of source.matchAll(/\.apiCall\(\s*['"]([\w.]+)['"]/g)) methods.add(match[1]!);
  }
  return [...methods].sort();
}

// tsc resolves @slack/web-api from the folder it compiles in, so the check files live under node_modules/.cache.
mkdirSync('node_modules/.cache', { recursive: true });
const checkDir = mkdtempSync(join('node_modules', '.cache', 'patchpilot-manifest-'));
afterAll(() => rmSync(checkDir, { recursive: true, force: true }));

/** tsc's diagnostics for `manifest` as a literal that must satisfy Slack's manifest type ('' when it compiles). */
function typeErrors(name: string, manifest: unknown): string {
  const file = `${name}.ts`;
  writeFileSync(
    join(checkDir, file),
    `import type { AppsManifestCreateArguments } from '@slack/web-api';\n` +
      `export const manifest = ${JSON.stringify(manifest, null, 2)} satisfies AppsManifestCreateArguments['manifest'];\n`,
  );
  writeFileSync(
    join(checkDir, `${name}.tsconfig.json`),
    JSON.stringify({ compilerOptions: { target: 'es2024', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: [file] }),
  );
  try {
    execFileSync(join('node_modules', '.bin', 'tsc'), ['-p', join(checkDir, `${name}.tsconfig.json`)], { encoding: 'utf8', stdio: 'pipe' });
    return '';
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    return `${stdout ?? ''}${stderr ?? ''}`.trim() || String(error);
  }
}

describe('the manifest type check', () => {
  it('fails a manifest with a misspelt setting and one with a wrong type', () => {
    expect(typeErrors('broken-key', { display_information: { name: 'x' }, settings: { socket_mode_enable: true } })).toMatch(/socket_mode_enable/);
    expect(typeErrors('broken-type', { display_information: { name: 'x' }, features: { slash_commands: [{ command: '/x' }] } })).toMatch(/description/);
  });
});

describe.each(['slack/manifest.yml', 'slack/manifest.socket.yml'])('%s', (file) => {
  const manifest: Manifest = parse(readFileSync(file, 'utf8'));
  const socket = manifest.settings?.socket_mode_enabled === true;
  const commands = manifest.features?.slash_commands ?? [];

  it("is a valid manifest for Slack's manifest API (compiled against @slack/web-api's type)", () => {
    expect(typeErrors(socket ? 'socket' : 'http', manifest)).toBe('');
    // The top level is an open record in the type; Slack knows only these sections.
    for (const key of Object.keys(manifest)) expect(['_metadata', 'display_information', 'features', 'oauth_config', 'settings', 'functions']).toContain(key);
  });

  it('keeps within the limits Slack documents', () => {
    expect(manifest.display_information.name.length).toBeLessThanOrEqual(35);
    expect(manifest.display_information.description?.length ?? 0).toBeLessThanOrEqual(140);
    expect(manifest.features?.bot_user?.display_name).toMatch(/^[a-z0-9._-]{1,80}$/);
    for (const command of commands) {
      expect(command.command).toMatch(/^\/[a-z0-9_-]{1,31}$/);
      expect(command.description.length).toBeLessThanOrEqual(2000);
      expect(command.usage_hint?.length ?? 0).toBeLessThanOrEqual(1000);
    }
  });

  it('declares exactly the slash commands the bot handles', () => {
    expect(commands.map((c) => c.command).sort()).toEqual([...bot.handlers.commands].sort());
  });

  it("offers in its usage hint only the bot's own subcommands", () => {
    for (const command of commands) {
      for (const form of (command.usage_hint ?? '').split('|')) expect(Object.keys(USAGE)).toContain(form.trim().split(' ')[0]);
    }
  });

  it('enables interactivity for the buttons, on the events URL over HTTP', () => {
    expect([...bot.handlers.actions].sort()).toEqual([ACTIONS.approve, ACTIONS.reject, ACTIONS.resetConfirm].sort());
    expect(manifest.settings?.interactivity?.is_enabled).toBe(true);
    if (!socket) {
      expect(manifest.settings?.interactivity?.request_url).toMatch(/^https:\/\/YOUR-HOST\/slack\/events$/);
      for (const command of commands) expect(command.url).toBe(manifest.settings?.interactivity?.request_url);
    } else {
      expect(manifest.settings?.interactivity?.request_url).toBeUndefined();
      for (const command of commands) expect(command.url).toBeUndefined();
    }
  });

  it('asks for the scopes of the Web API methods the bot calls, and no more', () => {
    const methods = methodsCalled();
    expect(methods).toEqual(expect.arrayContaining(['auth.test', 'chat.postMessage', 'chat.update', 'usergroups.users.list']));
    const unknown = methods.filter((m) => !(m in METHOD_SCOPES));
    expect(unknown, 'Web API methods without a scope entry in METHOD_SCOPES').toEqual([]);
    const needed = new Set(methods.flatMap((m) => METHOD_SCOPES[m]!));
    if (commands.length > 0) needed.add('commands');
    expect([...(manifest.oauth_config?.scopes?.bot ?? [])].sort()).toEqual([...needed].sort());
  });
});
