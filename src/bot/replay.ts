/**
 * The replay guard over HTTP, on Bolt's own hooks. Bolt verifies each request's signature and refuses timestamps more
 * than five minutes old, but accepts a validly signed request again and again within those five minutes, and accepts
 * timestamps in the future, which a captured request could carry to outlive the window. So the receiver hands each
 * verified request's signature and timestamp to the context (customPropertiesExtractor), a global middleware refuses
 * a signature it has seen and a timestamp too far ahead, and the receiver answers that refusal with 401
 * (processEventErrorHandler). Socket Mode requests carry no signature and pass.
 */
import { HTTPModuleFunctions, type AnyMiddlewareArgs, type BufferedIncomingMessage, type Middleware, type ReceiverProcessEventErrorHandlerArgs } from '@slack/bolt';
import type { BotMetrics } from '../service/metrics.ts';
import type { BotLog } from './deps.ts';

const REPLAY_WINDOW_MS = 5 * 60_000;

/** A request the guard refused; Bolt hands a coded error to the error handler as it is. */
export class RequestRefused extends Error {
  override readonly name = 'RequestRefused';
  readonly code = 'patchpilot_request_refused';
}

export interface ReplayGuard {
  customPropertiesExtractor(request: BufferedIncomingMessage): Record<string, string>;
  middleware: Middleware<AnyMiddlewareArgs>;
  processEventErrorHandler(args: ReceiverProcessEventErrorHandlerArgs): Promise<boolean>;
}

export function replayGuard(options: { metrics: BotMetrics; log: BotLog }): ReplayGuard {
  const { metrics, log } = options;
  // Each signature seen, until its timestamp would no longer pass Bolt's check.
  const seen = new Map<string, number>();
  const refuse = (why: string): never => {
    metrics.replayRefused();
    log('warn', `refused a request: ${why}`);
    throw new RequestRefused(why);
  };
  return {
    customPropertiesExtractor: (request) => ({
      requestSignature: String(request.headers['x-slack-signature'] ?? ''),
      requestTimestamp: String(request.headers['x-slack-request-timestamp'] ?? ''),
    }),
    middleware: async ({ context, next }) => {
      const signature = typeof context.requestSignature === 'string' ? context.requestSignature : '';
      if (signature === '') return next();
      const now = Date.now();
      const stamp = Number(context.requestTimestamp) * 1000;
      if (Number.isFinite(stamp) && stamp - now > REPLAY_WINDOW_MS) refuse('timestamp too far in the future');
      for (const [key, until] of seen) if (until < now) seen.delete(key);
      if (seen.has(signature)) refuse('replayed request');
      seen.set(signature, Math.max(now, Number.isFinite(stamp) ? stamp : now) + REPLAY_WINDOW_MS);
      await next();
    },
    processEventErrorHandler: async (args) => {
      if (!(args.error instanceof RequestRefused)) return HTTPModuleFunctions.defaultProcessEventErrorHandler(args);
      // An Events API request was acknowledged before any middleware ran; it is still not processed.
      if (!args.response.headersSent) args.response.writeHead(401, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: args.error.message }));
      return false;
    },
  };
}
