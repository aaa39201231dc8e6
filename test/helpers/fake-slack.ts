/**
 * A local fake of Slack for the bot's tests: the Web API methods the bot calls (form-encoded POSTs to /api/<method>,
 * as @slack/web-api sends them), the response_url endpoint, correctly signed slash commands and button clicks, and
 * Socket Mode (apps.connections.open hands out a WebSocket on this server, which says hello, delivers envelopes and
 * collects their acks). Every call is recorded for assertions.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  token: string | null;
}

export interface Posted {
  channel: string;
  ts: string;
  text: string;
  blocks: unknown[];
  thread_ts?: string;
  reply_broadcast?: boolean;
}

export class FakeSlack {
  readonly calls: SlackCall[] = [];
  readonly responses: Array<{ id: string; body: Record<string, unknown> }> = [];
  readonly messages = new Map<string, Posted>();
  readonly groups = new Map<string, string[]>();
  #server: Server | null = null;
  #sockets: WebSocketServer | null = null;
  /** The Socket Mode connection the app holds now (it reconnects after a disconnect message). */
  #socket: WebSocket | null = null;
  #socketWaiters: Array<(socket: WebSocket) => void> = [];
  #acks = new Map<string, (payload: Record<string, unknown> | undefined) => void>();
  #envelopes = 0;
  /** Socket Mode connections accepted so far. */
  socketConnections = 0;
  #ts = 1_700_000_000;
  url = '';

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const path = req.url ?? '/';
        if (path.startsWith('/response/')) {
          this.responses.push({ id: path.slice('/response/'.length), body: JSON.parse(body || '{}') as Record<string, unknown> });
          return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
        }
        const method = path.replace(/^\/api\//, '').split('?')[0] ?? '';
        const args: Record<string, unknown> = {};
        const type = String(req.headers['content-type'] ?? '');
        if (type.startsWith('application/json')) Object.assign(args, JSON.parse(body || '{}'));
        else for (const [key, value] of new URLSearchParams(body)) args[key] = /^[[{]/.test(value) ? JSON.parse(value) : value;
        const auth = String(req.headers.authorization ?? '');
        this.calls.push({ method, args, token: auth.startsWith('Bearer ') ? auth.slice(7) : null });
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(this.#answer(method, args)));
      });
    });
    this.#sockets = new WebSocketServer({ server: this.#server, path: '/link/' });
    this.#sockets.on('connection', (socket) => {
      this.socketConnections++;
      this.#socket = socket;
      socket.on('message', (data) => {
        const ack = JSON.parse(String(data)) as { envelope_id?: string; payload?: Record<string, unknown> };
        const settle = ack.envelope_id === undefined ? undefined : this.#acks.get(ack.envelope_id);
        if (!settle) return;
        this.#acks.delete(ack.envelope_id!);
        settle(ack.payload);
      });
      socket.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake-slack' }, connection_info: { app_id: 'A1' } }));
      for (const waiter of this.#socketWaiters.splice(0)) waiter(socket);
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', () => resolve()));
    const address = this.#server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  async stop(): Promise<void> {
    for (const client of this.#sockets?.clients ?? []) client.terminate();
    this.#sockets?.close();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server?.closeAllConnections();
  }

  /** The app's open Socket Mode connection, once it has one. */
  connected(): Promise<WebSocket> {
    const open = this.#socket;
    if (open && open.readyState === open.OPEN) return Promise.resolve(open);
    return new Promise((resolve) => this.#socketWaiters.push(resolve));
  }

  /**
   * Delivers an envelope over Socket Mode, as Slack does for a slash command ('slash_commands') or a click
   * ('interactive'); resolves with the payload of the app's ack ({} for a bare ack).
   */
  async deliver(type: 'slash_commands' | 'interactive', payload: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
    const socket = await this.connected();
    const envelopeId = `env-${++this.#envelopes}`;
    const acked = new Promise<Record<string, unknown> | undefined>((resolve, reject) => {
      // Slack waits three seconds for an ack; the client has no timer of its own, so the fake keeps the deadline.
      const timer = setTimeout(() => reject(new Error(`no ack for ${envelopeId} (${type}) within 3 s`)), 3000);
      this.#acks.set(envelopeId, (ack) => {
        clearTimeout(timer);
        resolve(ack);
      });
    });
    socket.send(JSON.stringify({ envelope_id: envelopeId, type, payload, accepts_response_payload: type === 'slash_commands', retry_attempt: 0, retry_reason: '' }));
    return acked;
  }

  /** Slack's way of rotating a connection: the app should open a new one and carry on. */
  askToReconnect(): void {
    this.#socket?.send(JSON.stringify({ type: 'disconnect', reason: 'refresh_requested', debug_info: { host: 'fake-slack' } }));
    this.#socket = null;
  }

  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  called(method: string): SlackCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  thread(ts: string): Posted[] {
    return [...this.messages.values()].filter((m) => m.thread_ts === ts);
  }

  #answer(method: string, args: Record<string, unknown>): Record<string, unknown> {
    switch (method) {
      case 'apps.connections.open':
        return { ok: true, url: `${this.url.replace(/^http/, 'ws')}/link/?ticket=${this.socketConnections + 1}` };
      case 'auth.test':
        return { ok: true, user_id: 'UBOT', user: 'patchpilot', bot_id: 'BBOT', team_id: 'T1', team: 'Test' };
      case 'chat.postMessage': {
        const ts = `${++this.#ts}.000100`;
        const message: Posted = { channel: String(args.channel), ts, text: String(args.text ?? ''), blocks: (args.blocks as unknown[]) ?? [] };
        if (args.thread_ts) message.thread_ts = String(args.thread_ts);
        if (args.reply_broadcast === true || args.reply_broadcast === 'true') message.reply_broadcast = true;
        this.messages.set(ts, message);
        return { ok: true, channel: args.channel, ts, message };
      }
      case 'chat.update': {
        const existing = this.messages.get(String(args.ts));
        if (!existing || existing.channel !== args.channel) return { ok: false, error: 'message_not_found' };
        existing.text = String(args.text ?? existing.text);
        existing.blocks = (args.blocks as unknown[]) ?? existing.blocks;
        return { ok: true, channel: args.channel, ts: args.ts };
      }
      case 'chat.postEphemeral':
        return { ok: true, message_ts: `${++this.#ts}.000200` };
      case 'views.open':
        return { ok: true, view: { id: 'V1' } };
      case 'views.publish': {
        // Slack refuses a view that is not a Home tab, or one with more than 100 blocks.
        const view = args.view as { type?: string; blocks?: unknown[] } | undefined;
        if (view?.type !== 'home' || !Array.isArray(view.blocks) || view.blocks.length > 100) return { ok: false, error: 'invalid_arguments' };
        return { ok: true, view: { id: 'VHOME', type: 'home' } };
      }
      case 'usergroups.users.list':
        return { ok: true, users: this.groups.get(String(args.usergroup)) ?? [] };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }
}

export const SIGNING_SECRET = 'test-signing-secret-8c1d2e';

export function signedHeaders(body: string, secret = SIGNING_SECRET, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  const signature = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  return { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': signature };
}

/** A slash command's fields, as Slack sends them (form-encoded over HTTP, as an envelope's payload over Socket Mode). */
export function slashPayload(fake: FakeSlack, text: string, user: string, channel = 'C1', id = `${Math.random()}`.slice(2)): Record<string, string> {
  return {
    command: '/patch',
    text,
    user_id: user,
    user_name: user.toLowerCase(),
    channel_id: channel,
    channel_name: 'ops',
    team_id: 'T1',
    team_domain: 'test',
    response_url: `${fake.url}/response/${id}`,
    trigger_id: `trig-${id}`,
    api_app_id: 'A1',
    token: 'legacy',
  };
}

export function slashBody(fake: FakeSlack, text: string, user: string, channel = 'C1', id = `${Math.random()}`.slice(2)): string {
  return new URLSearchParams(slashPayload(fake, text, user, channel, id)).toString();
}

/** A button click's block_actions payload. */
export function buttonPayload(fake: FakeSlack, actionId: string, value: string, user: string, channel = 'C1', messageTs = '1.0'): Record<string, unknown> {
  const id = `${Math.random()}`.slice(2);
  return {
    type: 'block_actions',
    user: { id: user, team_id: 'T1' },
    team: { id: 'T1' },
    api_app_id: 'A1',
    channel: { id: channel, name: 'ops' },
    container: { type: 'message', message_ts: messageTs, channel_id: channel },
    message: { ts: messageTs, text: '' },
    response_url: `${fake.url}/response/${id}`,
    trigger_id: `trig-${id}`,
    actions: [{ type: 'button', action_id: actionId, block_id: `approval:${value}`, value, action_ts: `${Date.now() / 1000}` }],
  };
}

export function buttonBody(fake: FakeSlack, actionId: string, value: string, user: string, channel = 'C1', messageTs = '1.0'): string {
  return new URLSearchParams({ payload: JSON.stringify(buttonPayload(fake, actionId, value, user, channel, messageTs)) }).toString();
}

/** POSTs a body to the bot with the given headers; returns the status and the text of the answer. */
export async function send(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/slack/events`, { method: 'POST', body, headers });
  return { status: res.status, text: await res.text() };
}

/** An Events API delivery (event_callback), as Slack POSTs it as JSON to the request URL. */
export function eventBody(event: Record<string, unknown>): string {
  return JSON.stringify({ token: 'legacy', team_id: 'T1', api_app_id: 'A1', event, type: 'event_callback', event_id: `Ev${`${Math.random()}`.slice(2, 12)}`, event_time: Math.floor(Date.now() / 1000), authorizations: [{ team_id: 'T1', user_id: 'UBOT', is_bot: true }] });
}
