/**
 * Correctly signed requests whose bodies are not what Slack sends: each is answered at once with a status that says
 * so and an ephemeral text naming what is wrong, never a crash of the process, a three-second silence ending in an
 * empty 404, or an internal message; nothing is started. A reset confirmation whose value is not the one the bot
 * wrote is refused in a line. Against the fake Slack, on an in-memory cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIONS } from '../../src/bot/views.ts';
import type { Store } from '../../src/store/store.ts';
import { buttonBody, buttonPayload, FakeSlack, send, signedHeaders, slashPayload } from '../helpers/fake-slack.ts';
import { startMemoryBot, type MemoryBot } from '../helpers/memory-bot.ts';
import { until } from '../helpers/until.ts';

describe('signed but malformed requests to the bot', () => {
  const fake = new FakeSlack();
  let store: Store;
  let url: string;
  let running: MemoryBot | undefined;

  beforeAll(async () => {
    running = await startMemoryBot(fake, { botToken: 'xoxb-1-2-malformed' });
    ({ store, url } = running);
  });

  afterAll(async () => {
    await running?.stop();
  });

  const signed = (body: string, contentType = 'application/x-www-form-urlencoded') => send(url, body, { ...signedHeaders(body), 'content-type': contentType });
  const form = (fields: Record<string, string>) => signed(new URLSearchParams(fields).toString());
  const payload = (value: unknown) => form({ payload: typeof value === 'string' ? value : JSON.stringify(value) });
  const refusal = (answer: { status: number; text: string }) => {
    const body = JSON.parse(answer.text) as { response_type: string; text: string };
    expect(body.response_type).toBe('ephemeral');
    return `${answer.status} ${body.text}`;
  };

  it('refuses bodies that are not a request, at once, and stays up', async () => {
    const started = Date.now();
    expect(refusal(await payload('null'))).toBe('400 Refused: the request body is null, not an object.');
    expect(refusal(await payload('42'))).toBe('400 Refused: the request body is a number, not an object.');
    expect(refusal(await signed('[1,2]', 'application/json'))).toBe('400 Refused: the request body is an array, not an object.');
    expect(refusal(await payload('{not json'))).toMatch(/^400 Refused: the request body is not readable \(content type application\/x-www-form-urlencoded/);
    expect(refusal(await signed('command=%2Fpatch&text=help', 'text/plain'))).toMatch(/^400 Refused: the request body is not readable \(content type text\/plain/);
    expect(refusal(await signed(''))).toBe('400 Refused: the request is neither a slash command, an interaction nor an event.');
    expect(refusal(await payload({}))).toBe('400 Refused: the request is neither a slash command, an interaction nor an event.');
    expect(Date.now() - started).toBeLessThan(2500);
    // Still serving.
    expect(await (await fetch(`${url}/healthz`)).text()).toBe('ok\n');
  });

  it('refuses a slash command without its user, channel or response_url, or another command, and starts nothing', async () => {
    const { user_id: _user, ...noUser } = slashPayload(fake, 'run', 'UREQUEST1');
    expect(refusal(await form(noUser))).toBe('400 Refused: the slash command has no user_id.');
    const { channel_id: _channel, ...noChannel } = slashPayload(fake, 'run', 'UREQUEST1');
    expect(refusal(await form(noChannel))).toBe('400 Refused: the slash command has no channel_id.');
    expect(refusal(await form({ ...slashPayload(fake, 'run', 'UREQUEST1'), command: '/other' }))).toBe('400 Refused: the bot has no command /other (it answers /patch).');
    expect(store.listRuns()).toEqual([]);
    expect(fake.called('chat.postMessage')).toHaveLength(0);
  });

  it('refuses clicks on buttons it never made, views it never opened and unknown request types', async () => {
    expect(refusal(await payload(buttonPayload(fake, 'launch_missiles', 'x', 'UAPPROVE1')))).toBe('400 Refused: the bot has no button "launch_missiles".');
    expect(refusal(await payload({ ...buttonPayload(fake, ACTIONS.approve, 'x', 'UAPPROVE1'), actions: [] }))).toBe('400 Refused: the button click has no actions.');
    expect(refusal(await payload({ ...buttonPayload(fake, ACTIONS.approve, 'x', 'UAPPROVE1'), user: null }))).toBe('400 Refused: the button click has no user id.');
    expect(refusal(await payload({ type: 'view_submission', user: { id: 'U1' }, view: { id: 'V1', callback_id: 'zzz', state: { values: {} } } }))).toBe('400 Refused: the bot opens no views, so it has none to submit or close.');
    expect(refusal(await payload({ type: 'shortcut', callback_id: 'x' }))).toBe('400 Refused: the bot does not handle requests of type "shortcut".');
  });

  it('still answers what Slack does send', async () => {
    const body = new URLSearchParams(slashPayload(fake, 'help', 'UREQUEST1')).toString();
    const help = await send(url, body, signedHeaders(body));
    expect(help.status).toBe(200);
    expect(help.text).toContain('/patch run [cluster]');
    const check = await send(url, 'ssl_check=1&token=x', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(check.status).toBe(200);
    const forged = await send(url, body, signedHeaders(body, 'not-the-secret'));
    expect(forged.status).toBe(401);
  });

  it('refuses an approval click that carries no run id, or no channel, without echoing what it carries', async () => {
    const answer = async (payload: Record<string, unknown>) => {
      const before = fake.responses.length;
      const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
      expect((await send(url, body, signedHeaders(body))).status).toBe(200);
      return until('the refusal', () => fake.responses[before]?.body.text as string | undefined);
    };
    const click = buttonPayload(fake, ACTIONS.approve, 'x', 'UAPPROVE1');
    const withValue = (value: unknown) => ({ ...click, actions: [{ ...(click.actions as object[])[0], value }] });
    for (const value of [5, null, 'x'.repeat(100_000)]) expect(await answer(withValue(value))).toBe('Refused: the button carries no run id.');
    const { channel: _channel, ...noChannel } = click;
    expect(await answer({ ...noChannel, container: { type: 'message', message_ts: '1.0' } })).toBe('Refused: the click carries no channel.');
    expect(store.listRuns({}), 'nothing was started or decided').toEqual([]);
  });

  it('refuses a reset confirmation whose value is not the one it wrote, in a line', async () => {
    for (const value of ['null', '{bad', JSON.stringify({ cluster: 'test', nodes: 'worker-1' }), JSON.stringify({ nodes: ['worker-1'] }), JSON.stringify({ cluster: 'test', nodes: [] })]) {
      const before = fake.responses.length;
      const body = buttonBody(fake, ACTIONS.resetConfirm, value, 'UREQUEST1');
      expect((await send(url, body, signedHeaders(body))).status).toBe(200);
      expect(await until('the refusal', () => fake.responses[before]?.body.text as string | undefined)).toBe('Refused: the confirmation is not readable.');
    }
  });
});
