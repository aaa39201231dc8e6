/**
 * The Slack app on Bolt 5: the App and its receiver, one ClusterService per cluster, and the listeners of
 * src/bot/listeners registered on it. Over HTTP, Bolt's HTTPReceiver checks signatures, serves /healthz and /metrics
 * as its custom routes, and refuses replays through the guard of src/bot/replay.ts; in Socket Mode the health and
 * metrics endpoints are the service's small server. Runs, the store and the clusters are reached through src/service
 * only. Every command and decision is answered (errors and refusals ephemerally, to the person who acted) and audited.
 */
import { App, HTTPReceiver, LogLevel } from '@slack/bolt';
import { ClusterService, type ClusterTarget, type RunEvent } from '../service/index.ts';
import { operationalRoutes, PatchpilotMetrics, serveMetrics } from '../service/metrics.ts';
import { Cards } from './cards.ts';
import { BotConfigError, secretsOf, type BotConfig } from './config.ts';
import type { BotDeps, BotLog } from './deps.ts';
import { slackGroups } from './groups.ts';
import { registerListeners } from './listeners/index.ts';
import { boltLogger, createBotLogger, logParts, scrubber } from './logger.ts';
import { replayGuard, RequestRefused } from './replay.ts';
import { checkRequestShapes } from './requests.ts';
import { FleetStatusCache } from './status.ts';

export interface BotOptions {
  config: BotConfig;
  clusters: ClusterTarget[];
  /** Where log lines (pino's JSON) go (stderr by default); every secret is redacted before it gets there. */
  log?: (line: string) => void;
  /** Other secrets to keep out of the logs (a Palette API key). */
  secrets?: string[];
  /** Skip auth.test at start-up (tests with a fake Slack that knows the bot already). */
  botUserId?: string;
  /** Minimum time between two edits of a card's status line. */
  progressIntervalMs?: number;
  /** The process's metrics registry (one per process: the bot's counters join the run and fleet metrics). */
  metrics?: PatchpilotMetrics;
  /** Scan every cluster this often (the agent report-only), from start to stop; none when absent. */
  scanEveryMs?: number;
  /** How long a user group's members are trusted before Slack is asked again (default 5 minutes). */
  groupCacheTtlMs?: number;
}

export interface Bot {
  app: App;
  metrics: PatchpilotMetrics;
  handlers: { commands: string[]; actions: string[] };
  start(port?: number): Promise<{ url: string; port: number }>;
  stop(): Promise<void>;
  /** Resolves when every Slack call about runs queued so far has been made (tests). */
  settled(): Promise<void>;
}

export function createBot(options: BotOptions): Bot {
  const { config } = options;
  if (options.clusters.length === 0) throw new Error('the bot needs at least one cluster');
  const secrets = [...secretsOf(config), ...(options.secrets ?? [])];
  // Texts shown to users (error replies) are scrubbed the same way as the log.
  const redact = scrubber(secrets);
  const pinoLogger = createBotLogger({ secrets, ...(options.log ? { write: options.log } : {}) });
  const log: BotLog = (level, ...parts) => logParts(pinoLogger, level, parts);
  const logger = boltLogger(pinoLogger.child({ component: 'bolt' }));
  const registry = options.metrics ?? new PatchpilotMetrics();
  const metrics = registry.bot();
  const metricsFailed = (err: unknown) => log('error', 'metrics not rendered:', err);

  const guard = replayGuard({ metrics, log });
  const receiver =
    config.mode === 'http'
      ? new HTTPReceiver({
          signingSecret: config.signingSecret!,
          endpoints: '/slack/events',
          logger,
          unhandledRequestTimeoutMillis: 3001,
          customRoutes: operationalRoutes(registry, metricsFailed),
          customPropertiesExtractor: guard.customPropertiesExtractor,
          processEventErrorHandler: guard.processEventErrorHandler,
        })
      : undefined;
  const app = new App({
    token: config.botToken,
    logger,
    logLevel: LogLevel.INFO,
    tokenVerificationEnabled: false,
    ...(options.botUserId ? { botUserId: options.botUserId, botId: `B${options.botUserId.slice(1)}` } : {}),
    clientOptions: { ...(config.apiUrl ? { slackApiUrl: config.apiUrl } : {}), retryConfig: { retries: 2 } },
    ...(receiver ? { receiver } : { socketMode: true, appToken: config.appToken! }),
  });
  app.use(guard.middleware);
  app.error(async (error) => {
    // The guard's refusals go back to the receiver, which answers them with 401.
    if (error instanceof RequestRefused) throw error;
    log('error', 'unhandled in a listener:', error);
  });

  const services = new Map<string, ClusterService>();
  const fleet = new FleetStatusCache(redact);
  const cards = new Cards({ client: app.client, config, metrics, log }, { intervalMs: options.progressIntervalMs ?? 2000 });
  const membership = slackGroups(app.client, { ttlMs: options.groupCacheTtlMs ?? 5 * 60_000, log });
  const schedule = cards.scheduleHooks(services);
  for (const target of options.clusters) {
    const onEvent = (event: RunEvent) => {
      registry.observeRun(target.name, event);
      // A node's mark changed its annotations: the next status reads them again.
      if (event.type === 'node.finished' || event.type === 'run.finished') fleet.drop(target.name);
      cards.onRunEvent(event);
    };
    services.set(target.name, new ClusterService(target, { membership, onEvent, schedule }));
  }
  registry.watchFleet(() => Promise.all([...services.values()].map((s) => fleet.of(s, 10_000))));

  const deps: BotDeps = { config, services, client: app.client, metrics, log, redact, fleet, cards };
  const registered = registerListeners(app, deps);
  if (receiver) {
    checkRequestShapes(receiver, {
      signingSecret: config.signingSecret!,
      path: '/slack/events',
      shapes: { commands: () => registered.commands, actions: () => registered.actions },
      warn: (message) => log('warn', message),
    });
  }

  // Socket Mode's start waits until Slack's WebSocket answers, retrying for ever: a stop may come first.
  let stopping = false;
  let healthServer: { close(): Promise<void> } | null = null;
  return {
    app,
    metrics: registry,
    handlers: { commands: registered.commands, actions: registered.actions },
    async start(port = config.port) {
      if (!options.botUserId) {
        const auth = await app.client.auth.test().catch((err: unknown) => {
          const text = redact(err instanceof Error ? err.message : String(err));
          // @slack/web-api tells a refusal (an answer with ok: false) from a request that got no answer at all.
          if ((err as { code?: string }).code === 'slack_webapi_platform_error') throw new BotConfigError(`Slack refused the bot token (auth.test): ${text}`, 'check SLACK_BOT_TOKEN (an xoxb- token of this app, installed in the workspace)');
          throw new BotConfigError(`cannot reach Slack at ${config.apiUrl ?? 'https://slack.com/api/'}: ${text}`, 'check SLACK_API_URL (unset it to use Slack itself) and the network');
        });
        log('info', `connected to Slack as ${auth.user ?? '?'} in ${auth.team ?? '?'}`);
      }
      for (const service of services.values()) {
        if (stopping) break;
        try {
          service.scheduler.restore();
        } catch (err) {
          log('warn', `the saved schedule of ${service.name} could not be restored:`, err);
        }
        if (options.scanEveryMs !== undefined) {
          service.scanEvery(options.scanEveryMs, (outcome) => {
            if ('error' in outcome) return log('warn', `scheduled scan of ${service.name} failed:`, outcome.error);
            fleet.drop(service.name);
            const { nodes } = outcome.summary;
            log('info', `scheduled scan of ${service.name}: ${nodes.length} node(s), ${nodes.filter((n) => n.findings.pending === null).length} not scanned`);
          });
        }
      }
      // A stop that came while Slack was asked who we are: Bolt would otherwise start connecting after it.
      if (stopping) throw new BotConfigError('the bot was stopped while it started');
      let actual: number;
      if (receiver) {
        const address = (await app.start({ port, host: '0.0.0.0' })).address();
        actual = typeof address === 'object' && address ? address.port : port;
      } else {
        await app.start();
        // Bolt's Socket Mode receiver can serve custom routes too, but it neither waits for its port nor says which
        // one it got (port 0), so /healthz and /metrics get the service's own small server.
        const served = await serveMetrics(registry, port, '0.0.0.0', metricsFailed);
        healthServer = served;
        actual = served.port;
      }
      if (stopping) {
        await healthServer?.close();
        throw new BotConfigError('the bot was stopped while it started');
      }
      log('info', `listening on port ${actual}${receiver ? ' (/slack/events, /healthz, /metrics)' : ' (/healthz, /metrics; Slack over Socket Mode)'}`);
      return { url: `http://127.0.0.1:${actual}`, port: actual };
    },
    async stop() {
      stopping = true;
      for (const service of services.values()) service.stop();
      // Also while starting: it ends Socket Mode's attempts to connect (Bolt answers an app never started with an error).
      await app.stop().catch(() => {});
      await healthServer?.close();
    },
    settled: () => cards.settled(),
  };
}
