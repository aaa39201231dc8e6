/**
 * The Slack app: `/patch` and the approval buttons on Bolt, over HTTP (signed requests, replays refused, /healthz and
 * /metrics beside /slack/events) or Socket Mode. It talks to the engine only through src/service: an Orchestrator per
 * cluster for runs, and doctor, unstick and reset on the cluster's target. Every command and decision is answered
 * (errors and refusals ephemerally, to the person who acted) and written to the audit log.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { App, HTTPReceiver, LogLevel, type Logger, type RespondFn } from '@slack/bolt';
import { parsePlan, type Plan } from '../engine/plan.ts';
import { describeSchedule, nextFireTime, scheduleSchema, type ScheduleInput } from '../engine/schedule.ts';
import { deriveRunStart } from '../engine/run-start.ts';
import { selectNodes } from '../engine/selection.ts';
import {
  Orchestrator,
  OrchestratorError,
  doctor,
  formatDoctorReport,
  formatResetPlan,
  planReset,
  reset,
  unstick,
  type ClusterTarget,
  type RunEvent,
} from '../service/index.ts';
import type { MembershipResolver } from '../service/orchestrator.ts';
import { parsePatchCommand, type PatchCommand } from './commands.ts';
import { BotConfigError, secretsOf, type BotConfig } from './config.ts';
import { PatchpilotMetrics } from '../service/metrics.ts';
import { readClusterStatus, triggerOfRun, type ClusterStatus } from '../service/fleet-status.ts';
import { scanCluster } from '../service/scan.ts';
import { clusterStatusText, homeView } from './fleet.ts';
import { createBotLogger, scrubber } from './logger.ts';
import type { Logger as PinoLogger } from 'pino';
import { RunProgress } from './progress.ts';
import { ACTIONS, cardBlocks, cardText, resetBlocks, type CardFacts } from './views.ts';

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

interface Card {
  channel: string;
  ts: string;
  facts: CardFacts;
  progress: RunProgress;
}

const REPLAY_WINDOW_MS = 5 * 60_000;
const SCHEDULE_ACTION = 'slack.schedule';

export function createBot(options: BotOptions): Bot {
  const { config } = options;
  if (options.clusters.length === 0) throw new Error('the bot needs at least one cluster');
  const secrets = [...secretsOf(config), ...(options.secrets ?? [])];
  // Texts shown to users (error replies) are scrubbed the same way as the log.
  const redact = scrubber(secrets);
  const pinoLogger = createBotLogger({ secrets, ...(options.log ? { write: options.log } : {}) });
  const log = (level: 'debug' | 'info' | 'warn' | 'error', ...parts: unknown[]) => {
    const err = parts.find((p): p is Error => p instanceof Error);
    const text = parts.filter((p) => !(p instanceof Error)).map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
    if (err) pinoLogger[level]({ err }, text);
    else pinoLogger[level](text);
  };
  const logger = boltLogger(pinoLogger.child({ component: 'bolt' }));
  const registry = options.metrics ?? new PatchpilotMetrics();
  const metrics = registry.bot();
  const clusters = new Map(options.clusters.map((t) => [t.name, t]));
  const cards = new Map<string, Card>();
  const orchestrators = new Map<string, Orchestrator>();
  const intervalMs = options.progressIntervalMs ?? 2000;

  const receiver =
    config.mode === 'http'
      ? new HTTPReceiver({ signingSecret: config.signingSecret!, endpoints: '/slack/events', logger, unhandledRequestTimeoutMillis: 3001 })
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

  for (const target of options.clusters) {
    orchestrators.set(
      target.name,
      new Orchestrator({ cluster: target.cluster, clock: target.clock, store: target.store, membership: (user, entries) => membership(user, entries), onEvent: (event) => onRunEvent(target.name, event) }),
    );
  }

  /**
   * Recent reads of each cluster's status: fifty people asking at once cost one list of the nodes, not fifty (the
   * answer goes into Slack's 3 s acknowledgement). A scan drops its cluster's entry.
   */
  const statusCache = new Map<string, { at: number; status: Promise<ClusterStatus> }>();
  const STATUS_CACHE_MS = 5000;
  function fleetStatusOf(target: ClusterTarget, timeoutMs = 2000): Promise<ClusterStatus> {
    const cached = statusCache.get(target.name);
    if (cached && Date.now() - cached.at < STATUS_CACHE_MS) return cached.status;
    const status = readFleetStatus(target, timeoutMs);
    statusCache.set(target.name, { at: Date.now(), status });
    // A cluster that could not be read is asked again next time.
    void status.then((s) => {
      if (s.error !== undefined && statusCache.get(target.name)?.status === status) statusCache.delete(target.name);
    });
    return status;
  }

  /** A cluster's status, read from the cluster; given up after `timeoutMs` (a status answer must fit Slack's 3 s ack). */
  async function readFleetStatus(target: ClusterTarget, timeoutMs: number): Promise<ClusterStatus> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const read = readClusterStatus(target.cluster, { labelKey: target.plan.labelKey, signal: controller.signal, ...(target.store ? { triggerOf: (id: string) => triggerOfRun(target.store!, id) } : {}) });
      const gaveUp = new Promise<ClusterStatus>((resolve) =>
        controller.signal.addEventListener('abort', () => resolve({ name: target.name, compliant: 0, total: 0, lastScanAt: null, oldestUnpatched: null, nodes: [], error: `the cluster did not answer within ${timeoutMs / 1000} s` })),
      );
      const status = await Promise.race([read, gaveUp]);
      return status.error === undefined ? status : { ...status, error: redact(status.error) };
    } finally {
      clearTimeout(timer);
    }
  }
  registry.watchFleet(() => Promise.all([...clusters.values()].map((t) => fleetStatusOf(t, 10_000))));

  async function statusAnswer(targets: readonly ClusterTarget[]): Promise<string> {
    const statuses = await Promise.all(targets.map((t) => fleetStatusOf(t)));
    const now = Date.now();
    return statuses.map((status, i) => clusterStatusText(status, statusText(targets[i]!), now)).join('\n\n');
  }

  /** Scheduled scans: one timer per cluster on its own clock, re-armed after each scan ends (never two at once). */
  const scanTimers = new Map<string, number>();
  let scansStopped = false;
  function armScan(target: ClusterTarget, everyMs: number): void {
    if (scansStopped) return;
    scanTimers.set(
      target.name,
      target.clock.setTimeout(() => {
        scanCluster({ cluster: target.cluster, plan: target.plan, clock: target.clock, store: target.store })
          .then((summary) => (statusCache.delete(target.name), log('info', `scheduled scan of ${target.name}: ${summary.nodes.length} node(s), ${summary.nodes.filter((n) => n.findings.pending === null).length} not scanned`)))
          .catch((err: unknown) => log('warn', `scheduled scan of ${target.name} failed:`, err))
          .finally(() => armScan(target, everyMs));
      }, everyMs),
    );
  }

  app.event('app_home_opened', async ({ event, client }) => {
    if (event.tab !== 'home') return;
    const statuses = await Promise.all([...clusters.values()].map((t) => fleetStatusOf(t)));
    await client.views.publish({ user_id: event.user, view: homeView(statuses, Date.now()) as never });
  });

  function onRunEvent(cluster: string, event: RunEvent): void {
    registry.observeRun(cluster, event);
    // A node's mark changed its annotations: the next status reads them again.
    if (event.type === 'node.finished' || event.type === 'run.finished') statusCache.delete(cluster);
    const card = cards.get(event.runId);
    if (!card) return;
    card.progress.handle(event);
  }

  function audit(target: ClusterTarget | undefined, entry: { actor: string; action: string; runId?: string | null; details: Record<string, unknown> }): void {
    try {
      target?.store?.appendAudit({ at: target.clock.now(), actor: `slack:${entry.actor}`, action: entry.action, runId: entry.runId ?? null, details: entry.details });
    } catch (err) {
      log('error', 'audit record not written:', err);
    }
  }

  /** The cluster a channel may act on: named and bound, or the channel's own, or the only one. */
  function clusterFor(channel: string, named: string | undefined): { target: ClusterTarget } | { refusal: string } {
    const bound = config.channels.get(channel);
    if (named !== undefined) {
      const target = clusters.get(named);
      if (!target) return { refusal: `there is no cluster "${named}" here (clusters: ${[...clusters.keys()].join(', ')})` };
      if (config.channels.size > 0 && bound !== named) return { refusal: `this channel is not bound to cluster ${named}${bound ? ` (it is bound to ${bound})` : ''}` };
      return { target };
    }
    if (bound) {
      const target = clusters.get(bound);
      return target ? { target } : { refusal: `this channel is bound to cluster ${bound}, which this bot does not serve` };
    }
    if (config.channels.size === 0 && clusters.size === 1) return { target: [...clusters.values()][0]! };
    return { refusal: config.channels.size > 0 ? 'this channel is not bound to any cluster (PATCHPILOT_CHANNELS)' : `name the cluster: one of ${[...clusters.keys()].join(', ')}` };
  }

  /**
   * Slack user groups among the approvers (ids starting with S), resolved through usergroups.users.list and cached
   * for a while: the Orchestrator's injected membership resolver. The engine decides with the answer.
   */
  const groupCache = new Map<string, { members: readonly string[]; until: number }>();
  const groupTtlMs = options.groupCacheTtlMs ?? 5 * 60_000;
  async function groupMembers(group: string): Promise<readonly string[]> {
    const cached = groupCache.get(group);
    if (cached && cached.until > Date.now()) return cached.members;
    try {
      const answer = await app.client.usergroups.users.list({ usergroup: group });
      const members = answer.users ?? [];
      groupCache.set(group, { members, until: Date.now() + groupTtlMs });
      return members;
    } catch (err) {
      log('warn', `user group ${group} could not be read:`, err);
      return [];
    }
  }
  const membership: MembershipResolver = async (user, entries) => {
    const groups = entries.filter((entry) => /^S[A-Z0-9]+$/.test(entry));
    const found = await Promise.all(groups.map(async (group) => ((await groupMembers(group)).includes(user) ? group : null)));
    return found.filter((group): group is string => group !== null);
  };

  app.command('/patch', async ({ command, ack, respond, client }) => {
    const started = performance.now();
    const parsed = parsePatchCommand(command.text ?? '');
    const user = command.user_id;
    const channel = command.channel_id;
    if (!parsed.ok) {
      await ack({ response_type: 'ephemeral', text: `${parsed.error}\nUsage: \`${parsed.usage}\`` });
      metrics.ack(performance.now() - started);
      metrics.refusal('usage');
      audit(clusterOrNull(channel), { actor: user, action: 'slack.command.refused', details: { channel, text: command.text, reason: parsed.error } });
      return;
    }
    const cmd = parsed.command;
    metrics.command(cmd.kind);
    if (cmd.kind === 'help') {
      await ack({ response_type: 'ephemeral', text: (await import('./commands.ts')).HELP_TEXT });
      metrics.ack(performance.now() - started);
      return;
    }
    const named = 'cluster' in cmd ? cmd.cluster : undefined;
    if (cmd.kind === 'status' && named === undefined && config.channels.size === 0 && clusters.size > 1) {
      // No cluster named where no channel is bound: the whole fleet, one paragraph per cluster.
      await ack({ response_type: 'ephemeral', text: await statusAnswer([...clusters.values()]) });
      metrics.ack(performance.now() - started);
      audit(clusterOrNull(channel), { actor: user, action: 'slack.command.status', details: { channel, text: command.text } });
      return;
    }
    const runTarget = 'runId' in cmd ? targetOfRun(cmd.runId) : undefined;
    const resolved = runTarget ? { target: runTarget } : clusterFor(channel, named);
    if ('refusal' in resolved) {
      await ack({ response_type: 'ephemeral', text: `Refused: ${resolved.refusal}.` });
      metrics.ack(performance.now() - started);
      metrics.refusal('channel');
      audit(clusterOrNull(channel), { actor: user, action: 'slack.command.refused', details: { channel, command: cmd.kind, reason: resolved.refusal } });
      return;
    }
    const { target } = resolved;
    if (runTarget && config.channels.size > 0 && config.channels.get(channel) !== runTarget.name) {
      await ack({ response_type: 'ephemeral', text: `Refused: this channel is not bound to cluster ${runTarget.name}.` });
      metrics.ack(performance.now() - started);
      metrics.refusal('channel');
      audit(target, { actor: user, action: 'slack.command.refused', details: { channel, command: cmd.kind, reason: 'channel not bound' } });
      return;
    }
    if (cmd.kind === 'status' || cmd.kind === 'history') {
      // Answered at once, in the ack itself, with no second request to Slack: the cluster's compliance (read with a
      // deadline inside Slack's three seconds) and the store's last run.
      const text = cmd.kind === 'status' ? await statusAnswer([target]) : historyText(target);
      await ack({ response_type: 'ephemeral', text });
      metrics.ack(performance.now() - started);
      audit(target, { actor: user, action: `slack.command.${cmd.kind}`, details: { channel, text: command.text } });
      return;
    }
    await ack({ response_type: 'ephemeral', text: `Working on \`/patch ${command.text.trim()}\` for ${target.name}…` });
    metrics.ack(performance.now() - started);
    try {
      const result = await execute(cmd, target, { user, channel, respond, post: client.chat.postMessage.bind(client.chat) });
      audit(target, { actor: user, action: `slack.command.${cmd.kind}`, runId: 'runId' in cmd ? cmd.runId : result.runId ?? null, details: { channel, text: command.text, result: result.summary } });
    } catch (err) {
      // A refusal the user can act on (another orchestrator holds the cluster: who, since when, what to do) keeps its hint.
      const hint = err instanceof OrchestratorError ? ` (${err.hint})` : '';
      const message = `${err instanceof Error ? err.message : String(err)}${hint}`;
      if (err instanceof BotRefusal) {
        metrics.refusal('usage');
        audit(target, { actor: user, action: 'slack.command.refused', details: { channel, text: command.text, reason: message } });
        await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${message}.` }).catch(() => {});
        return;
      }
      log('error', `/patch ${cmd.kind} failed:`, err);
      audit(target, { actor: user, action: `slack.command.${cmd.kind}`, details: { channel, text: command.text, error: message } });
      await respond({ response_type: 'ephemeral', replace_original: false, text: `:warning: \`/patch ${cmd.kind}\` failed: ${redact(message)}` }).catch(() => {});
    }
  });

  function clusterOrNull(channel: string): ClusterTarget | undefined {
    const r = clusterFor(channel, undefined);
    return 'target' in r ? r.target : [...clusters.values()][0];
  }

  function targetOfRun(runId: string): ClusterTarget | undefined {
    for (const target of clusters.values()) if (target.store?.getRun(runId)) return target;
    return undefined;
  }

  interface Context {
    user: string;
    channel: string;
    respond: RespondFn;
    post: App['client']['chat']['postMessage'];
  }

  async function execute(cmd: PatchCommand, target: ClusterTarget, ctx: Context): Promise<{ summary: string; runId?: string }> {
    const say = async (text: string) => {
      await ctx.respond({ response_type: 'ephemeral', replace_original: false, text });
      return { summary: text.split('\n')[0] ?? '' };
    };
    const orchestrator = orchestrators.get(target.name)!;
    switch (cmd.kind) {
      case 'status':
        return say(await statusAnswer([target]));
      case 'scan': {
        await ctx.respond({ response_type: 'ephemeral', replace_original: false, text: `Scanning the Linux nodes of ${target.name} (the agent report-only, no cordon)…` });
        const summary = await scanCluster({ cluster: target.cluster, plan: target.plan, clock: target.clock, store: target.store });
        statusCache.delete(target.name);
        const failed = summary.nodes.filter((n) => n.findings.pending === null);
        const head = `Scanned ${summary.nodes.length} node(s) of ${target.name}${failed.length ? `; ${failed.length} could not be scanned: ${failed.map((n) => `\`${n.node}\` (${redact(n.findings.error ?? '')})`).join(', ')}` : ''}.`;
        return say(`${head}\n${await statusAnswer([target])}`);
      }
      case 'history':
        return say(historyText(target));
      case 'doctor':
        return say(redact(formatDoctorReport(await doctor(target, { command: (verb, args) => `/patch ${[verb, target.name, ...args.filter((a) => a !== '--cluster' && a !== target.name)].join(' ')}` }))));
      case 'unstick': {
        const result = await unstick(target, { by: `slack:${ctx.user}` });
        return say([result.changed ? `*unstick ${target.name}:*` : `*unstick ${target.name}:* nothing to unstick`, ...result.actions.map((a) => `• ${a}`), ...result.notes.map((n) => `_${n}_`)].join('\n'));
      }
      case 'reset': {
        const plan = await planReset(target, cmd.nodes ? { nodes: cmd.nodes } : {});
        const nodes = plan.nodes.map((n) => n.name);
        if (nodes.length === 0) return say(`Nothing to reset on ${target.name}: no node carries the patch labels.`);
        await ctx.respond({ response_type: 'ephemeral', replace_original: false, text: formatResetPlan(plan), blocks: resetBlocks(formatResetPlan(plan), target.name, nodes) });
        return { summary: `asked to confirm the reset of ${nodes.length} node(s)` };
      }
      case 'approve':
      case 'reject':
        return decide(target, cmd.runId, ctx.user, cmd.kind === 'approve', ctx.respond);
      case 'pause':
      case 'resume':
      case 'cancel': {
        const answer = orchestrator.command(cmd.runId, { type: cmd.kind.toUpperCase() as 'PAUSE', by: `slack:${ctx.user}` });
        return say(answer.ok ? `:ok_hand: ${answer.message}` : `Refused: ${answer.message}.`);
      }
      case 'schedule': {
        const spec = cmd.schedule.kind === 'off' ? null : cmd.schedule.kind === 'preset' ? { kind: 'preset' as const, preset: cmd.schedule.preset } : { kind: 'cron' as const, expression: cmd.schedule.cron };
        // The audit log is the schedule's durable record: the newest entry for a cluster is restored at start-up.
        audit(target, { actor: ctx.user, action: SCHEDULE_ACTION, details: { cluster: target.name, channel: ctx.channel, schedule: spec } });
        const next = applySchedule(target, spec, ctx.channel, ctx.user);
        return say(
          spec === null
            ? `No schedule for ${target.name} any more.`
            : `${target.name} is patched ${describeSchedule(scheduleSchema.parse(spec))}: each time, a run asks for approval in this channel (requested by <@${ctx.user}>). Next: ${next === null ? 'never' : new Date(next).toISOString().replace('T', ' ').slice(0, 16)} UTC.`,
        );
      }
      case 'run':
        return startRun(cmd, target, ctx);
      case 'help':
        return say('');
    }
  }

  const schedules = new Map<string, { timer: number | undefined; stopped: boolean }>();

  /** Arms (or with null, clears) a cluster's schedule; each fire asks for a run as `by` would, in `channel`. */
  function applySchedule(target: ClusterTarget, spec: ScheduleInput | null, channel: string, by: string): number | null {
    const previous = schedules.get(target.name);
    if (previous) {
      previous.stopped = true;
      if (previous.timer !== undefined) target.clock.clearTimeout(previous.timer);
      schedules.delete(target.name);
    }
    if (spec === null) return null;
    const schedule = scheduleSchema.parse(spec);
    const entry: { timer: number | undefined; stopped: boolean } = { timer: undefined, stopped: false };
    schedules.set(target.name, entry);
    const arm = (): number | null => {
      const now = target.clock.now();
      const next = nextFireTime(schedule, now);
      if (next === null || entry.stopped) return null;
      entry.timer = target.clock.setTimeout(() => {
        const active = target.store?.listRuns({ cluster: target.name, active: true, limit: 1 })[0];
        if (active) {
          // One run at a time: a fire while a run is still active (or still waiting for approval) is skipped.
          audit(target, { actor: by, action: 'slack.schedule.skipped', runId: active.id, details: { cluster: target.name, reason: `run ${active.id} is ${active.status}` } });
          arm();
          return;
        }
        const noReply: RespondFn = async () => ({}) as never;
        startRun({ kind: 'run', noReboot: false }, target, { user: by, channel, respond: noReply, post: app.client.chat.postMessage.bind(app.client.chat) })
          .then((r) => audit(target, { actor: by, action: 'slack.schedule.fired', runId: r.runId, details: { cluster: target.name, channel } }))
          .catch((err: unknown) => log('error', `the scheduled run of ${target.name} could not start:`, err))
          .finally(() => arm());
      }, next - now);
      return next;
    };
    return arm();
  }

  for (const target of options.clusters) {
    const last = (target.store?.auditRows({}) ?? []).filter((r) => r.action === SCHEDULE_ACTION && r.details.cluster === target.name).at(-1);
    if (!last) continue;
    try {
      applySchedule(target, (last.details.schedule as ScheduleInput | null) ?? null, String(last.details.channel), last.actor.replace(/^slack:/, ''));
    } catch (err) {
      log('warn', `the saved schedule of ${target.name} could not be restored:`, err);
    }
  }

  async function startRun(cmd: Extract<PatchCommand, { kind: 'run' }>, target: ClusterTarget, ctx: Context): Promise<{ summary: string; runId: string }> {
    const plan: Plan = parsePlan({
      ...target.plan,
      ...(cmd.nodes ? { nodes: cmd.nodes } : {}),
      ...(cmd.noReboot ? { rebootIfRequired: false } : {}),
      ...(cmd.concurrency !== undefined ? { concurrency: cmd.concurrency } : {}),
      trigger: { kind: 'on-demand' },
      // User groups stay in the list: the engine asks the membership resolver about them.
      approval: { required: true, approvers: config.approvers, twoPersonRule: true },
    });
    // Each Slack request is a trigger of its own, starting at once (deriveRunStart, as `run --trigger` does).
    const start = deriveRunStart(plan, target.clock.now(), { triggerId: `slack-${randomUUID().slice(0, 8)}`, notBefore: null });
    const nodes = await target.cluster.listNodes();
    const selection = selectNodes(nodes, { labelKey: plan.labelKey, hash: start.hash, nodeSelector: plan.nodeSelector, nodes: plan.nodes });
    if (selection.unknown.length > 0) {
      // Refused before a card is posted: nobody should approve a run that cannot start.
      throw new BotRefusal(`no node named ${selection.unknown.map((n) => `\`${n}\``).join(', ')} in ${target.name}`);
    }
    const orchestrator = orchestrators.get(target.name)!;
    const handle = await orchestrator.start({ plan, requestedBy: ctx.user, triggerId: start.triggerId, notBefore: start.notBefore });
    const facts: CardFacts = {
      runId: handle.runId,
      cluster: target.name,
      requester: ctx.user,
      plan,
      nodes: selection.selected.map((s) => s.name),
      excluded: selection.excluded.length,
      status: 'waiting for approval',
      decision: null,
    };
    const posted = await ctx.post({ channel: ctx.channel, text: cardText(facts), blocks: cardBlocks(facts) });
    const ts = posted.ts!;
    const card: Card = {
      channel: ctx.channel,
      ts,
      facts,
      progress: new RunProgress(
        {
          reply: async (text, broadcast) => {
            if (broadcast) await app.client.chat.postMessage({ channel: ctx.channel, thread_ts: ts, text, reply_broadcast: true });
            else await app.client.chat.postMessage({ channel: ctx.channel, thread_ts: ts, text });
          },
          auditHead: () => {
            const head = target.store?.auditHead();
            return head && head.seq > 0 ? `${head.seq}:${head.hash}` : null;
          },
          status: async (text) => {
            card.facts = { ...card.facts, status: text };
            await app.client.chat.update({ channel: ctx.channel, ts, text: cardText(card.facts), blocks: cardBlocks(card.facts) });
          },
        },
        { selected: facts.nodes.length, intervalMs },
      ),
    };
    cards.set(handle.runId, card);
    return { summary: `run ${handle.runId} requested, ${facts.nodes.length} node(s); card posted`, runId: handle.runId };
  }

  /** Compare-and-set through the store: of two clicks (or two approvers), one decides and the other is told. */
  async function decide(target: ClusterTarget, runId: string, user: string, approved: boolean, respond: RespondFn): Promise<{ summary: string }> {
    const orchestrator = orchestrators.get(target.name)!;
    const earlier = target.store?.getDecision(runId);
    if (earlier) {
      const text = `run ${runId} was already ${earlier.decision} by <@${earlier.approver}> at ${new Date(earlier.at).toISOString().slice(11, 16)} UTC`;
      metrics.decision(approved ? 'approve' : 'reject', false);
      audit(target, { actor: user, action: 'slack.decision.refused', runId, details: { why: text } });
      await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${text}.` });
      return { summary: text };
    }
    // The engine decides (approvalVerdict, rejectionVerdict; group approvers resolved through Slack); this only reports
    // its answer.
    const answer = await orchestrator.decide(runId, { type: approved ? 'APPROVE' : 'REJECT', by: user });
    metrics.decision(approved ? 'approve' : 'reject', answer.ok);
    if (!answer.ok) metrics.refusal('approver');
    audit(target, { actor: user, action: approved ? 'slack.decision.approve' : 'slack.decision.reject', runId, details: { accepted: answer.ok, message: answer.message } });
    if (!answer.ok) {
      await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${answer.message}.` });
      return { summary: answer.message };
    }
    const card = cards.get(runId);
    if (card) {
      card.facts = { ...card.facts, decision: { by: user, approved, at: target.clock.now() }, status: approved ? 'approved, starting' : 'rejected' };
      await app.client.chat.update({ channel: card.channel, ts: card.ts, text: cardText(card.facts), blocks: cardBlocks(card.facts) });
    }
    return { summary: answer.message };
  }

  for (const actionId of [ACTIONS.approve, ACTIONS.reject]) {
    app.action(actionId, async ({ ack, body, action, respond }) => {
      await ack();
      const user = body.user.id;
      const runId = 'value' in action && typeof action.value === 'string' ? action.value : '';
      const channel = body.channel?.id ?? '';
      const target = targetOfRun(runId);
      const approved = actionId === ACTIONS.approve;
      const refuse = async (why: string, reason: string) => {
        metrics.refusal(reason);
        audit(target ?? clusterOrNull(channel), { actor: user, action: approved ? 'slack.decision.refused' : 'slack.decision.refused', runId, details: { channel, why } });
        await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${why}.` });
      };
      if (!target) return refuse(`there is no run ${runId}`, 'unknown');
      if (config.channels.size > 0 && config.channels.get(channel) !== target.name) return refuse(`this channel is not bound to cluster ${target.name}`, 'channel');
      try {
        await decide(target, runId, user, approved, respond);
      } catch (err) {
        log('error', 'decision failed:', err);
        await respond({ response_type: 'ephemeral', replace_original: false, text: `:warning: the decision could not be recorded: ${redact(err instanceof Error ? err.message : String(err))}` });
      }
    });
  }

  app.action(ACTIONS.resetConfirm, async ({ ack, body, action, respond }) => {
    await ack();
    const user = body.user.id;
    const channel = body.channel?.id ?? '';
    let request: { cluster: string; nodes: string[] };
    try {
      request = JSON.parse('value' in action && typeof action.value === 'string' ? action.value : '{}') as { cluster: string; nodes: string[] };
    } catch {
      return void (await respond({ response_type: 'ephemeral', replace_original: false, text: 'Refused: the confirmation is not readable.' }));
    }
    const resolved = clusterFor(channel, request.cluster);
    if ('refusal' in resolved) {
      metrics.refusal('channel');
      return void (await respond({ response_type: 'ephemeral', replace_original: false, text: `Refused: ${resolved.refusal}.` }));
    }
    try {
      const plan = await planReset(resolved.target, { nodes: request.nodes });
      const result = await reset(resolved.target, plan, { by: `slack:${user}`, confirmed: true });
      audit(resolved.target, { actor: user, action: 'slack.reset', details: { channel, nodes: result.changed } });
      await respond({ response_type: 'ephemeral', replace_original: true, text: `Reset ${resolved.target.name}: labels removed from ${result.changed.length} node(s)${result.changed.length ? `: ${result.changed.join(', ')}` : ''}.` });
    } catch (err) {
      await respond({ response_type: 'ephemeral', replace_original: false, text: `:warning: reset failed: ${redact(err instanceof Error ? err.message : String(err))}` });
    }
  });

  app.error(async (error) => {
    log('error', 'unhandled in a listener:', error);
  });

  // The HTTP server: Slack's endpoint behind a replay guard, and the operational endpoints.
  const seen = new Map<string, number>();
  let server: Server | null = null;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
    if (req.method === 'GET' && path === '/metrics') {
      registry.render().then(
        (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
        (err: unknown) => {
          log('error', 'metrics not rendered:', err);
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics unavailable\n');
        },
      );
      return;
    }
    if (path === '/slack/events' && receiver) {
      const signature = String(req.headers['x-slack-signature'] ?? '');
      const now = Date.now();
      // Bolt refuses timestamps more than five minutes old but not ones in the future, which a captured request
      // could carry to outlive the replay window: both directions are refused here.
      const stamp = Number(req.headers['x-slack-request-timestamp']) * 1000;
      if (signature && Number.isFinite(stamp) && stamp - now > REPLAY_WINDOW_MS) {
        metrics.replayRefused();
        log('warn', 'refused a request stamped in the future');
        return void res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"timestamp too far in the future"}');
      }
      for (const [key, until] of seen) if (until < now) seen.delete(key);
      if (signature && seen.has(signature)) {
        // Bolt accepts a validly signed request again for five minutes; a captured request must not run twice.
        metrics.replayRefused();
        log('warn', 'refused a replayed request');
        return void res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"replayed request"}');
      }
      // Remembered for as long as Bolt would accept its timestamp.
      if (signature) seen.set(signature, Math.max(now, Number.isFinite(stamp) ? stamp : now) + REPLAY_WINDOW_MS);
      return receiver.requestListener(req, res);
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  };

  return {
    app,
    metrics: registry,
    handlers: { commands: ['/patch'], actions: [ACTIONS.approve, ACTIONS.reject, ACTIONS.resetConfirm] },
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
      if (!receiver) await app.start();
      if (options.scanEveryMs !== undefined) for (const target of clusters.values()) armScan(target, options.scanEveryMs);
      server = createServer(handle);
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(port, '0.0.0.0', () => resolve());
      });
      const address = server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      log('info', `listening on port ${actual}${receiver ? ' (/slack/events, /healthz, /metrics)' : ' (/healthz, /metrics; Slack over Socket Mode)'}`);
      return { url: `http://127.0.0.1:${actual}`, port: actual };
    },
    async stop() {
      scansStopped = true;
      for (const [name, timer] of scanTimers) clusters.get(name)?.clock.clearTimeout(timer);
      for (const [name, entry] of schedules) {
        entry.stopped = true;
        if (entry.timer !== undefined) clusters.get(name)?.clock.clearTimeout(entry.timer);
      }
      if (!receiver) await app.stop().catch(() => {});
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server?.closeAllConnections();
    },
    async settled() {
      await Promise.all([...cards.values()].map((c) => c.progress.idle()));
    },
  };
}

/** A request the bot turns down with a reason (answered ephemerally, audited), not a failure. */
class BotRefusal extends Error {
  override readonly name = 'BotRefusal';
}

function statusText(target: ClusterTarget): string {
  const store = target.store;
  if (!store) return `No run history is kept for ${target.name}.`;
  const [run] = store.listRuns({ cluster: target.name, limit: 1 });
  if (!run) return `No run of ${target.name} yet. Start one with \`/patch run ${target.name}\`.`;
  const nodes = store.getNodeRuns(run.id);
  const counts = new Map<string, number>();
  for (const n of nodes) counts.set(n.result, (counts.get(n.result) ?? 0) + 1);
  const tally = [...counts].map(([k, v]) => `${v} ${k}`).join(', ') || 'no nodes yet';
  return [
    `*${target.name}*: run \`${run.id}\` ${run.status === 'done' ? `finished ${run.outcome?.toUpperCase() ?? ''}` : run.status} (requested by <@${run.requestedBy}>)`,
    `nodes: ${tally}`,
    ...nodes.filter((n) => n.result === 'failed').map((n) => `• \`${n.node}\` failed${n.errorCode ? `: ${n.errorCode}` : ''}`),
  ].join('\n');
}

function historyText(target: ClusterTarget): string {
  const runs = target.store?.listRuns({ cluster: target.name, limit: 10 }) ?? [];
  if (runs.length === 0) return `No runs of ${target.name} yet.`;
  return [`*Last runs of ${target.name}:*`, ...runs.map((r) => `• \`${r.id}\` ${new Date(r.createdAt).toISOString().slice(0, 16).replace('T', ' ')} by <@${r.requestedBy}>: ${r.status === 'done' ? (r.outcome ?? '') : r.status}`)].join('\n');
}

/** Bolt's Logger interface over a pino logger (Bolt logs free-form arguments; errors keep their stack). */
function boltLogger(logger: PinoLogger): Logger {
  const write = (level: 'debug' | 'info' | 'warn' | 'error', parts: unknown[]) => {
    const err = parts.find((p): p is Error => p instanceof Error);
    const text = parts.filter((p) => !(p instanceof Error)).map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
    if (err) logger[level]({ err }, text);
    else logger[level](text);
  };
  const levels: Record<LogLevel, string> = { [LogLevel.DEBUG]: 'debug', [LogLevel.INFO]: 'info', [LogLevel.WARN]: 'warn', [LogLevel.ERROR]: 'error' };
  let level = LogLevel.INFO;
  return {
    debug: (...m: unknown[]) => write('debug', m),
    info: (...m: unknown[]) => write('info', m),
    warn: (...m: unknown[]) => write('warn', m),
    error: (...m: unknown[]) => write('error', m),
    setLevel: (l: LogLevel) => {
      level = l;
      logger.level = levels[l];
    },
    getLevel: () => level,
    setName: () => {},
  };
}
