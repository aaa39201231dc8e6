import { describe, expect, it } from 'vitest';
import { BotConfigError, loadBotConfig } from '../../src/bot/config.ts';

const BASE = { SLACK_BOT_TOKEN: 'xoxb-1-2-abc', SLACK_SIGNING_SECRET: 'a-signing-secret' };
const problem = (env: Record<string, string>) => {
  try {
    loadBotConfig(env);
    return null;
  } catch (error) {
    if (!(error instanceof BotConfigError)) throw error;
    return error.message;
  }
};

describe("the bot's PORT", () => {
  it('is 3000 unless set, and takes 0 (a free port, as --port 0 does) to 65535', () => {
    expect(loadBotConfig(BASE).port).toBe(3000);
    expect(loadBotConfig({ ...BASE, PORT: '0' }).port).toBe(0);
    expect(loadBotConfig({ ...BASE, PORT: '8080' }).port).toBe(8080);
    expect(loadBotConfig({ ...BASE, PORT: '65535' }).port).toBe(65_535);
  });

  it('refuses what is not a port, naming it', () => {
    expect(problem({ ...BASE, PORT: '65536' })).toMatch(/PORT must be a port number \(0 to 65535; 0: a free one\)/);
    expect(problem({ ...BASE, PORT: 'http' })).toMatch(/PORT must be a port number/);
    expect(problem({ ...BASE, PORT: '-1' })).toMatch(/PORT must be a port number/);
  });
});
