/**
 * The bot's log: pino, one JSON object per line. Secrets are kept out twice over: pino's `redact` removes them from
 * structured fields wherever they sit (a token, an Authorization header, a config object someone logs whole), and
 * `scrub` removes the known secrets and anything shaped like a Slack token from the text of messages and errors,
 * which `redact` (it works on keys) cannot see.
 */
import { LogLevel, type Logger as BoltLogger } from '@slack/bolt';
import { pino, stdSerializers, type Logger } from 'pino';

/** Structured fields that carry credentials, at any of the depths the bot and Bolt log them. */
export const REDACTED_PATHS = [
  'token',
  'botToken',
  'appToken',
  'signingSecret',
  'apiKey',
  'authorization',
  '*.token',
  '*.botToken',
  '*.appToken',
  '*.signingSecret',
  '*.apiKey',
  'headers.authorization',
  '*.headers.authorization',
  'headers["x-slack-signature"]',
  '*.headers["x-slack-signature"]',
];

/** Removes `secrets` (at least six characters) and anything shaped like a Slack token from a text. */
export function scrubber(secrets: readonly string[]): (text: string) => string {
  const list = secrets.filter((s) => s.length >= 6).sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const secret of list) out = out.split(secret).join('[redacted]');
    // Tokens the bot does not know of (a user pasting one) are redacted by shape.
    return out.replace(/xox[abposr]-[A-Za-z0-9-]{8,}/g, 'xox?-[redacted]').replace(/xapp-[A-Za-z0-9-]{8,}/g, 'xapp-[redacted]');
  };
}

export interface BotLoggerOptions {
  secrets: readonly string[];
  /** Where lines go (stderr by default): each call gets one JSON line without its newline. */
  write?: (line: string) => void;
  level?: string;
}

export function createBotLogger(options: BotLoggerOptions): Logger {
  const scrub = scrubber(options.secrets);
  const scrubAll = (value: unknown): unknown => (typeof value === 'string' ? scrub(value) : value);
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  return pino(
    {
      level: options.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: {
        err: (err: Error) => {
          const serialized = stdSerializers.err(err);
          return { ...serialized, message: scrub(serialized.message), stack: scrub(serialized.stack) };
        },
      },
      hooks: {
        // Message text and extra string arguments: the part of a log call `redact` does not look at.
        logMethod(args, method) {
          method.apply(this, args.map(scrubAll) as Parameters<typeof method>);
        },
      },
    },
    { write: (line: string) => write(scrub(line.replace(/\n$/, ''))) },
  );
}

export type LevelName = 'debug' | 'info' | 'warn' | 'error';

/** A log call of free-form parts: an Error among them is logged as `err` (its stack kept), the rest joins the text. */
export function logParts(logger: Logger, level: LevelName, parts: readonly unknown[]): void {
  const err = parts.find((p): p is Error => p instanceof Error);
  const text = parts.filter((p) => !(p instanceof Error)).map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
  if (err) logger[level]({ err }, text);
  else logger[level](text);
}

/** Bolt's Logger interface over a pino logger (Bolt logs free-form arguments). */
export function boltLogger(logger: Logger): BoltLogger {
  const levels: Record<LogLevel, LevelName> = { [LogLevel.DEBUG]: 'debug', [LogLevel.INFO]: 'info', [LogLevel.WARN]: 'warn', [LogLevel.ERROR]: 'error' };
  let level = LogLevel.INFO;
  return {
    debug: (...m: unknown[]) => logParts(logger, 'debug', m),
    info: (...m: unknown[]) => logParts(logger, 'info', m),
    warn: (...m: unknown[]) => logParts(logger, 'warn', m),
    error: (...m: unknown[]) => logParts(logger, 'error', m),
    setLevel: (l: LogLevel) => {
      level = l;
      logger.level = levels[l];
    },
    getLevel: () => level,
    setName: () => {},
  };
}
