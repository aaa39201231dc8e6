/**
 * The bot's configuration, read once from the environment and checked before anything starts. Every error names the
 * variable and what is wrong with it, never its value: these are secrets.
 */
import { z } from 'zod';

export interface BotConfig {
  mode: 'http' | 'socket';
  signingSecret: string | null;
  botToken: string;
  appToken: string | null;
  /** Base URL of the Slack Web API (tests, gateways); Slack's own when null. */
  apiUrl: string | null;
  /** User ids (U…, W…) and user group ids (S…) allowed to approve; empty: anyone but the requester. */
  approvers: string[];
  /** Channel id → cluster name. Empty: with one cluster, every channel is bound to it. */
  channels: Map<string, string>;
  port: number;
}

export class BotConfigError extends Error {
  override readonly name = 'BotConfigError';
  readonly hint: string;

  constructor(message: string, hint = 'set the variables in the environment (or a .env file read by your process manager); see the README, Slack bot') {
    super(message);
    this.hint = hint;
  }
}

const ID = /^[UWS][A-Z0-9]{2,}$/;
const CHANNEL = /^[CGD][A-Z0-9]{2,}$/;
const CLUSTER = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Tokens and secrets are printable ASCII without spaces. A line break pasted with one otherwise surfaces much later,
 * as a header error from the HTTP client that quotes the whole value: the secret in a log.
 */
const SECRET_CHARS = /^[\x21-\x7E]+$/;
const SECRET_CHARS_MESSAGE = 'contains a space, a line break or another character no Slack token or secret has (set it to the value alone)';

const schema = z.object({
  SLACK_SIGNING_SECRET: z.string().trim().min(8, 'is too short to be a signing secret').regex(SECRET_CHARS, SECRET_CHARS_MESSAGE).optional(),
  SLACK_BOT_TOKEN: z.string({ error: 'is not set' }).trim().regex(/^xoxb-/, 'must be a bot token (it starts with xoxb-)').regex(SECRET_CHARS, SECRET_CHARS_MESSAGE),
  SLACK_APP_TOKEN: z.string().trim().regex(/^xapp-/, 'must be an app-level token (it starts with xapp-)').regex(SECRET_CHARS, SECRET_CHARS_MESSAGE).optional(),
  // z.url() alone takes ftp:// or mailto:, which then fail at start-up as "cannot reach Slack": named here, with the rest.
  SLACK_API_URL: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL such as https://slack.com/api/' }).optional(),
  PATCHPILOT_APPROVERS: z.string().optional(),
  PATCHPILOT_CHANNELS: z.string().optional(),
  PORT: z.string().regex(/^\d+$/, 'must be a port number').optional(),
});

/** Reads the configuration; `socket` asks for Socket Mode (SLACK_APP_TOKEN instead of a public HTTP endpoint). */
export function loadBotConfig(env: NodeJS.ProcessEnv, options: { socket?: boolean } = {}): BotConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([key, value]) => key in schema.shape && value !== undefined && value !== ''));
  const parsed = schema.safeParse(present);
  const problems: string[] = [];
  if (!parsed.success) for (const issue of parsed.error.issues) problems.push(`${String(issue.path[0])} ${issue.message}`);
  // Every problem is reported at once, so the checks below read the raw values whether or not the schema passed.
  const values = (parsed.success ? parsed.data : present) as z.infer<typeof schema>;
  const mode = options.socket ? 'socket' : 'http';
  if (mode === 'http' && !present.SLACK_SIGNING_SECRET) problems.push('SLACK_SIGNING_SECRET is not set (needed to verify that requests come from Slack)');
  if (mode === 'socket' && !present.SLACK_APP_TOKEN) problems.push('SLACK_APP_TOKEN is not set (Socket Mode needs an app-level token with connections:write)');
  const approvers = (values.PATCHPILOT_APPROVERS ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  const badApprover = approvers.find((a) => !ID.test(a));
  if (badApprover !== undefined) problems.push(`PATCHPILOT_APPROVERS has "${badApprover}", which is not a Slack user id (U…, W…) or user group id (S…)`);
  // Set to commas and spaces only, it would silently mean "anyone but the requester": a list that lost its ids.
  if (values.PATCHPILOT_APPROVERS !== undefined && approvers.length === 0) problems.push('PATCHPILOT_APPROVERS names no one (only commas and spaces); unset it to let anyone but the requester approve');
  const channels = new Map<string, string>();
  for (const entry of (values.PATCHPILOT_CHANNELS ?? '').split(',').map((e) => e.trim()).filter(Boolean)) {
    const [channel, cluster, ...extra] = entry.split(':');
    if (!channel || !cluster || extra.length > 0 || !CHANNEL.test(channel) || !CLUSTER.test(cluster)) {
      problems.push(`PATCHPILOT_CHANNELS has "${entry}": expected CHANNEL_ID:cluster, e.g. C0123ABCD:prod-east`);
      continue;
    }
    const earlier = channels.get(channel);
    // The later entry would silently win: a channel bound to one cluster is never also bound to another.
    if (earlier !== undefined && earlier !== cluster) problems.push(`PATCHPILOT_CHANNELS binds ${channel} twice (to ${earlier} and to ${cluster}); a channel acts on one cluster`);
    channels.set(channel, cluster);
  }
  if (values.PATCHPILOT_CHANNELS !== undefined && channels.size === 0 && !problems.some((p) => p.startsWith('PATCHPILOT_CHANNELS'))) {
    problems.push('PATCHPILOT_CHANNELS binds no channel (only commas and spaces); unset it to let every channel act on the one cluster');
  }
  const port = values.PORT === undefined ? 3000 : Number(values.PORT);
  // 0 asks for a free port, as `--port 0` does; the start-up line names the one taken.
  if (parsed.success && port > 65_535) problems.push('PORT must be a port number (0 to 65535; 0: a free one)');
  if (problems.length > 0) throw new BotConfigError(`the bot's configuration is not valid:\n  - ${problems.join('\n  - ')}`);
  return {
    mode,
    signingSecret: values.SLACK_SIGNING_SECRET ?? null,
    botToken: values.SLACK_BOT_TOKEN,
    appToken: values.SLACK_APP_TOKEN ?? null,
    apiUrl: values.SLACK_API_URL ?? null,
    approvers,
    channels,
    port,
  };
}

/** Every secret the configuration holds, for redaction. */
export function secretsOf(config: BotConfig): string[] {
  return [config.signingSecret, config.botToken, config.appToken].filter((s): s is string => typeof s === 'string' && s.length > 0);
}
