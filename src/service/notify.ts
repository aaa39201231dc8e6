/**
 * Notifications beyond the Slack bot: a signed JSON webhook and Slack incoming webhooks, for teams that run
 * `patchpilot run` (or the Deployment) without the bot. Four events: run started, node failed, run blocked, run
 * finished. Each delivery is retried with exponential backoff on the injected clock (virtual time in tests); one that
 * still fails goes to the store's dead-letter table. A run never waits for a notification.
 *
 * Secrets: the signing secret and the URLs (a Slack incoming-webhook URL is itself a credential) never appear in a
 * log line, an error or a dead letter: sinks are named by their origin only.
 *
 * Signature (for receivers): `X-Patchpilot-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">` with
 * `X-Patchpilot-Timestamp` (Unix seconds), as Stripe and Slack sign theirs; receivers should reject old timestamps
 * and compare in constant time. `X-Patchpilot-Delivery` is the same on every retry of one notification (dedupe on it).
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { Clock } from '../engine/clock.ts';
import type { Store } from '../store/index.ts';
import type { RunEvent } from './progress.ts';
import type { PatchpilotMetrics } from './metrics.ts';

export type NotifyEventType = 'run.started' | 'node.failed' | 'run.blocked' | 'run.finished';

export interface Notification {
  /** Stable across retries: receivers dedupe on it. */
  id: string;
  event: NotifyEventType;
  cluster: string;
  runId: string;
  /** ISO time of what happened. */
  at: string;
  /** One line for people. */
  text: string;
  details: Record<string, unknown>;
}

export interface Delivery {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface NotificationSink {
  /** Shown in logs and dead letters: the origin only, never the full URL. */
  readonly name: string;
  /** The HTTP request for a notification at `now`. */
  request(notification: Notification, now: number): Delivery;
  /** Whether the answer means "delivered"; otherwise why not. */
  accepted(status: number, body: string): string | null;
}

/** Where a URL points, without its path or query (which may carry a token). */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'an invalid URL';
  }
}

export function signature(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export class WebhookSink implements NotificationSink {
  readonly name: string;
  readonly #url: string;
  readonly #secret: string;

  constructor(url: string, secret: string) {
    this.#url = url;
    this.#secret = secret;
    this.name = `webhook ${originOf(url)}`;
  }

  request(notification: Notification, now: number): Delivery {
    const body = JSON.stringify(notification);
    const timestamp = Math.floor(now / 1000);
    return {
      url: this.#url,
      body,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'patchpilot',
        'x-patchpilot-event': notification.event,
        'x-patchpilot-delivery': notification.id,
        'x-patchpilot-timestamp': String(timestamp),
        'x-patchpilot-signature': signature(this.#secret, timestamp, body),
      },
    };
  }

  accepted(status: number): string | null {
    return status >= 200 && status < 300 ? null : `HTTP ${status}`;
  }
}

const EMOJI: Record<NotifyEventType, string> = { 'run.started': ':arrow_forward:', 'node.failed': ':x:', 'run.blocked': ':no_entry:', 'run.finished': ':checkered_flag:' };

/** Slack's incoming webhooks: `{text}`, answered with the body `ok` (errors are 4xx with a reason as the body). */
export class SlackWebhookSink implements NotificationSink {
  readonly name: string;
  readonly #url: string;

  constructor(url: string) {
    this.#url = url;
    this.name = `slack webhook ${originOf(url)}`;
  }

  request(notification: Notification): Delivery {
    return { url: this.#url, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: `${EMOJI[notification.event]} ${notification.text}` }) };
  }

  accepted(status: number, body: string): string | null {
    if (status >= 200 && status < 300) return body.trim() === 'ok' ? null : `HTTP ${status} without Slack's "ok" (${JSON.stringify(body.slice(0, 60))})`;
    return `HTTP ${status}${body ? ` ${body.slice(0, 60)}` : ''}`;
  }
}

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseMs: number;
  maxMs: number;
  /** Per attempt: a receiver slower than this counts as failed. */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseMs: 2_000, maxMs: 5 * 60_000, timeoutMs: 10_000 };

/** 4xx means the request itself is wrong: retrying cannot help, except after a timeout or a rate limit. */
const RETRYABLE_4XX = new Set([408, 425, 429]);

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal }) => Promise<{ status: number; text(): Promise<string> }>;

export interface NotifierOptions {
  sinks: NotificationSink[];
  clock: Clock;
  store?: Store | null;
  retry?: Partial<RetryPolicy>;
  fetch?: FetchLike;
  /** One line per event worth a log (failures, dead letters); never a secret. */
  log?: (line: string) => void;
  metrics?: PatchpilotMetrics | null;
}

export class Notifier {
  readonly #options: NotifierOptions;
  readonly #retry: RetryPolicy;
  readonly #fetch: FetchLike;
  readonly #pending = new Set<Promise<void>>();
  /** Runs already announced as started (a resumed run is not announced twice in one process). */
  readonly #started = new Set<string>();
  readonly #blocked = new Set<string>();

  constructor(options: NotifierOptions) {
    this.#options = options;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init));
  }

  get sinks(): readonly NotificationSink[] {
    return this.#options.sinks;
  }

  /** A run event, as front ends receive them; the four kinds that matter become notifications. */
  observeRun(cluster: string, event: RunEvent): void {
    const at = new Date(event.at).toISOString();
    if (event.type === 'run.state') {
      if (event.tags.includes('rolling') && !this.#started.has(event.runId) && !event.restored) {
        this.#started.add(event.runId);
        this.notify({ event: 'run.started', cluster, runId: event.runId, at, text: `patchpilot started patching cluster ${cluster} (run ${event.runId})`, details: { from: event.from } });
      }
      if (event.tags.includes('blocked')) {
        // Once per spell of blocking, however often the gate re-checks.
        if (this.#blocked.has(event.runId)) return;
        this.#blocked.add(event.runId);
        this.notify({
          event: 'run.blocked',
          cluster,
          runId: event.runId,
          at,
          text: `run ${event.runId} of cluster ${cluster} is blocked${event.detail ? `: ${event.detail}` : ''}; it starts no other node until that clears`,
          details: { reason: event.detail },
        });
      } else if (!event.tags.includes('gating')) {
        // The gate re-checks (gating → blocked) every little while; the spell ends only when a node may start again.
        this.#blocked.delete(event.runId);
      }
      return;
    }
    if (event.type === 'node.finished' && event.outcome.result === 'failed') {
      const error = event.outcome.error;
      this.notify({
        event: 'node.failed',
        cluster,
        runId: event.runId,
        at,
        text: `node ${event.outcome.node} of cluster ${cluster} failed${error ? `: ${error.code} ${error.message}` : ''}${event.outcome.cordonedAtEnd ? ' (left cordoned)' : ''}`,
        details: { node: event.outcome.node, error, cordonedAtEnd: event.outcome.cordonedAtEnd },
      });
      return;
    }
    if (event.type === 'run.finished') {
      const o = event.output;
      this.notify({
        event: 'run.finished',
        cluster,
        runId: event.runId,
        at,
        text: `run ${event.runId} of cluster ${cluster} finished ${o.outcome.toUpperCase()}${o.reason ? ` (${o.reason})` : ''}: ${Object.entries(o.tally).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ') || 'no node'}`,
        details: { outcome: o.outcome, reason: o.reason, tally: o.tally, failedNodes: o.failedNodes, notStarted: o.notStarted },
      });
    }
  }

  /** Sends to every sink in the background; `idle()` resolves when everything queued so far is delivered or dead. */
  notify(notification: Omit<Notification, 'id'>): void {
    const full: Notification = { id: randomUUID(), ...notification };
    for (const sink of this.#options.sinks) {
      const delivery = this.#deliver(sink, full).catch((err: unknown) => this.#options.log?.(`notification to ${sink.name} lost: ${err instanceof Error ? err.message : String(err)}`));
      this.#pending.add(delivery);
      void delivery.finally(() => this.#pending.delete(delivery));
    }
  }

  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  async #deliver(sink: NotificationSink, notification: Notification): Promise<void> {
    const { clock } = this.#options;
    let lastError = '';
    let attempts = 0;
    for (let attempt = 1; attempt <= this.#retry.attempts; attempt++) {
      attempts = attempt;
      const request = sink.request(notification, clock.now());
      const outcome = await this.#attempt(request, sink);
      if (outcome === null) {
        this.#options.metrics?.notificationsTotal.inc({ sink: sink.name, result: 'delivered' });
        return;
      }
      lastError = outcome.reason;
      if (!outcome.retryable) break;
      if (attempt < this.#retry.attempts) {
        this.#options.metrics?.notificationsTotal.inc({ sink: sink.name, result: 'retried' });
        const delay = Math.min(this.#retry.maxMs, this.#retry.baseMs * 2 ** (attempt - 1));
        this.#options.log?.(`${notification.event} to ${sink.name}: attempt ${attempt} failed (${lastError}); next in ${Math.round(delay / 1000)} s`);
        await new Promise<void>((resolve) => clock.setTimeout(resolve, delay));
      }
    }
    this.#options.metrics?.notificationsTotal.inc({ sink: sink.name, result: 'dead-lettered' });
    this.#options.log?.(`${notification.event} to ${sink.name} not delivered (${lastError}): kept as a dead letter`);
    this.#options.store?.addDeadLetter({ sink: sink.name, event: notification.event, body: JSON.stringify(notification), attempts, lastError, failedAt: clock.now() });
  }

  /** null when delivered; else why not, and whether another attempt may help. */
  async #attempt(request: Delivery, sink: NotificationSink): Promise<{ reason: string; retryable: boolean } | null> {
    const { clock } = this.#options;
    const controller = new AbortController();
    let timedOut = false;
    const timer = clock.setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#retry.timeoutMs);
    try {
      const response = await this.#fetch(request.url, { method: 'POST', headers: request.headers, body: request.body, signal: controller.signal });
      const body = await response.text().catch(() => '');
      const refused = sink.accepted(response.status, body);
      if (refused === null) return null;
      return { reason: refused, retryable: response.status >= 500 || RETRYABLE_4XX.has(response.status) || (response.status >= 200 && response.status < 300) };
    } catch (err) {
      // Network errors carry the cause's code (ECONNREFUSED); their messages may name the URL, which stays out.
      const code = (err as { cause?: { code?: string } }).cause?.code;
      return { reason: timedOut ? `no answer within ${this.#retry.timeoutMs / 1000} s` : (code ?? 'network error'), retryable: true };
    } finally {
      clock.clearTimeout(timer);
    }
  }
}

/** The sinks the environment configures (PATCHPILOT_WEBHOOK_URL with PATCHPILOT_WEBHOOK_SECRET, PATCHPILOT_SLACK_WEBHOOK_URL). */
export function sinksFromEnv(env: NodeJS.ProcessEnv): { sinks: NotificationSink[]; problems: string[] } {
  const sinks: NotificationSink[] = [];
  const problems: string[] = [];
  const url = env.PATCHPILOT_WEBHOOK_URL?.trim();
  const secret = env.PATCHPILOT_WEBHOOK_SECRET ?? '';
  if (url) {
    if (!/^https?:\/\//.test(url)) problems.push('PATCHPILOT_WEBHOOK_URL must be an http(s) URL');
    else if (secret.length < 16) problems.push('PATCHPILOT_WEBHOOK_SECRET must be set, at least 16 characters, to sign the webhook\'s requests');
    else sinks.push(new WebhookSink(url, secret));
  }
  const slack = env.PATCHPILOT_SLACK_WEBHOOK_URL?.trim();
  if (slack) {
    if (!/^https?:\/\//.test(slack)) problems.push('PATCHPILOT_SLACK_WEBHOOK_URL must be an http(s) URL (https://hooks.slack.com/services/...)');
    else sinks.push(new SlackWebhookSink(slack));
  }
  return { sinks, problems };
}
