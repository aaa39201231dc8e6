/** The bot's pino logger: structured fields redacted by pino's `redact`, secrets scrubbed from texts and errors. */
import { describe, expect, it } from 'vitest';
import { createBotLogger } from '../../src/bot/logger.ts';

const BOT_TOKEN = 'xoxb-1111-2222-secretbottoken';
const SIGNING_SECRET = 'signing-secret-9f8e7d';
const PALETTE_KEY = 'palette-api-key-1234567';

function capture() {
  const lines: string[] = [];
  const logger = createBotLogger({ secrets: [BOT_TOKEN, SIGNING_SECRET, PALETTE_KEY], write: (line) => lines.push(line) });
  return { logger, lines };
}

describe('the bot logger', () => {
  it('redacts credential fields by name, whatever their value (pino redact, not the text scrub)', () => {
    const { logger, lines } = capture();
    logger.info({ apiKey: 'not-a-known-secret', request: { headers: { authorization: 'Basic dXNlcjpwYXNz' } }, user: 'U1' }, 'request');
    expect(JSON.parse(lines[0]!)).toMatchObject({ apiKey: '[redacted]', request: { headers: { authorization: '[redacted]' } }, user: 'U1' });
  });

  it('writes one JSON object per line, with level, time and message', () => {
    const { logger, lines } = capture();
    logger.info('listening on port 3000');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, msg: 'listening on port 3000', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
  });

  it('never writes a secret: in fields (pino redact), in messages, in errors and their stacks, or shaped like a token', () => {
    const { logger, lines } = capture();
    logger.info({ token: BOT_TOKEN, headers: { authorization: `Bearer ${BOT_TOKEN}` }, config: { botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET } }, 'calling Slack');
    logger.warn(`auth.test failed with token ${BOT_TOKEN}`);
    const err = new Error(`Palette said no to key ${PALETTE_KEY}`);
    logger.error({ err }, 'unstick failed');
    logger.info({ pasted: 'xoxp-9999-8888-someoneelsestoken' }, 'a user pasted a token');
    logger.info('%s and %s', SIGNING_SECRET, 'x');
    const all = lines.join('\n');
    for (const secret of [BOT_TOKEN, SIGNING_SECRET, PALETTE_KEY, 'xoxp-9999-8888-someoneelsestoken']) expect(all).not.toContain(secret);
    const first = JSON.parse(lines[0]!) as Record<string, { [key: string]: unknown }>;
    expect(first.token).toBe('[redacted]');
    expect(first.headers!.authorization).toBe('[redacted]');
    expect(first.config).toEqual({ botToken: '[redacted]', signingSecret: '[redacted]' });
    const error = JSON.parse(lines[2]!) as { err: { message: string; stack: string } };
    expect(error.err.message).toBe('Palette said no to key [redacted]');
    expect(error.err.stack).toContain('[redacted]');
    expect(lines[1]).toContain('auth.test failed with token [redacted]');
  });
});
