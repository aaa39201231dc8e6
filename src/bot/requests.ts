/**
 * The shape of a request to /slack/events, checked once its signature is, before Bolt's HTTPReceiver dispatches it.
 * Bolt takes any signed body that parses as JSON: `payload=null` threw in the receiver and stopped the process, a
 * slash command without `user_id` reached the store as a NOT NULL failure, and a body no listener matches (another
 * command, a button or view the bot never made, `{}`) was left unanswered for three seconds and then got an empty
 * 404. Here each is answered at once, 400 with an ephemeral text that says what is wrong; unsigned or oversized
 * requests keep Bolt's 401 and 413, with a reason. What passes goes on to Bolt with its body already read.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { HTTPModuleFunctions, type HTTPReceiver } from '@slack/bolt';

export interface RequestShapes {
  /** The slash commands the bot answers ('/patch'). */
  commands: () => readonly string[];
  /** The action ids of the buttons it makes. */
  actions: () => readonly string[];
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isText = (value: unknown): value is string => typeof value === 'string' && value !== '';

/** Why a parsed, signed body is not a request the bot can answer; null when it is. */
export function malformedRequest(body: unknown, shapes: RequestShapes): string | null {
  if (!isObject(body)) return `the request body is ${body === null ? 'null' : Array.isArray(body) ? 'an array' : `a ${typeof body}`}, not an object`;
  if (body.ssl_check === '1' || body.type === 'url_verification') return null;
  if ('command' in body) {
    if (!isText(body.command)) return 'the slash command has no command name';
    if (!shapes.commands().includes(body.command)) return `the bot has no command ${body.command} (it answers ${shapes.commands().join(', ')})`;
    for (const field of ['user_id', 'channel_id', 'response_url'] as const) if (!isText(body[field])) return `the slash command has no ${field}`;
    if ('text' in body && typeof body.text !== 'string') return 'the slash command\'s text is not a string';
    return null;
  }
  switch (body.type) {
    case 'block_actions': {
      if (!isObject(body.user) || !isText(body.user.id)) return 'the button click has no user id';
      const actions = body.actions;
      if (!Array.isArray(actions) || actions.length === 0) return 'the button click has no actions';
      for (const action of actions) {
        if (!isObject(action) || !isText(action.action_id)) return 'a button click\'s action has no action_id';
        if (!shapes.actions().includes(action.action_id)) return `the bot has no button ${JSON.stringify(action.action_id)}`;
      }
      if (!isText(body.response_url)) return 'the button click has no response_url';
      return null;
    }
    case 'event_callback':
      return isObject(body.event) && isText(body.event.type) ? null : 'the event has no event type';
    case 'view_submission':
    case 'view_closed':
      return 'the bot opens no views, so it has none to submit or close';
    case undefined:
      return 'the request is neither a slash command, an interaction nor an event';
    default:
      return `the bot does not handle requests of type ${JSON.stringify(String(body.type)).slice(0, 80)}`;
  }
}

function answer(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ response_type: 'ephemeral', text }));
}

/** Puts the check in front of the receiver's listener for POSTs to `path`. */
export function checkRequestShapes(receiver: HTTPReceiver, options: { signingSecret: string; path: string; shapes: RequestShapes; warn: (message: string) => void }): void {
  const next: RequestListener = receiver.requestListener;
  receiver.requestListener = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== options.path) return next(req, res);
    void (async () => {
      let buffered;
      try {
        buffered = await HTTPModuleFunctions.parseAndVerifyHTTPRequest({ enabled: true, signingSecret: options.signingSecret, bodyLimit: HTTPModuleFunctions.defaultBodyLimit }, req);
      } catch (err) {
        if (HTTPModuleFunctions.isRawBodyError(err) && ((err as { type?: string }).type === 'entity.too.large' || (err as { statusCode?: number }).statusCode === 413)) {
          options.warn('refused a request: body larger than 4 MB');
          return answer(res, 413, `Refused: the request body is larger than ${HTTPModuleFunctions.defaultBodyLimit} bytes.`);
        }
        options.warn('refused a request: signature not verified');
        return answer(res, 401, 'Refused: the request is not signed by Slack (signature or timestamp missing, stale or wrong).');
      }
      let body: unknown;
      try {
        body = HTTPModuleFunctions.parseHTTPRequestBody(buffered);
      } catch {
        const type = String(req.headers['content-type'] ?? 'none');
        options.warn(`refused a request: body not readable as ${type}`);
        return answer(res, 400, `Refused: the request body is not readable (content type ${type.slice(0, 80)}; Slack sends application/x-www-form-urlencoded or JSON).`);
      }
      const why = malformedRequest(body, options.shapes);
      if (why !== null) {
        options.warn(`refused a request: ${why}`);
        return answer(res, 400, `Refused: ${why}.`);
      }
      next(buffered, res);
    })().catch((err: unknown) => {
      options.warn(`refused a request: ${err instanceof Error ? err.message : String(err)}`);
      answer(res, 400, 'Refused: the request could not be read.');
    });
  };
}
