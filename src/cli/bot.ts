/**
 * `patchpilot bot`: the Slack bot, against a real cluster (`--kubeconfig`) or a simulated one (`--sim FILE`: the
 * scenario's cluster served in-process by the sandbox, with the engine on the same sped-up clock, so a demo run takes
 * seconds). Configuration comes from the environment (src/bot/config.ts); it runs until SIGINT or SIGTERM.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { createBot } from '../bot/app.ts';
import { loadBotConfig } from '../bot/config.ts';
import { parsePlan } from '../engine/plan.ts';
import { kubeconfig, startKubeApiServer } from '../sim/kube-api/index.ts';
import { createSandbox } from '../sim/sandbox/index.ts';
import { ScaledClock } from '../sim/scaled-clock.ts';
import { loadScenario } from '../sim/scenario.ts';
import { openStore } from '../store/index.ts';
import { DEFAULT_DB } from './paths.ts';
import { loadPlanFile } from './plan-check.ts';
import { untilSignal } from './signals.ts';
import { kubeTarget, type KubeTarget } from './targets.ts';
import { UserError } from './user-error.ts';
import { parseDuration } from '../sim/duration.ts';

export interface BotCliOptions {
  sim?: string;
  kubeconfig?: string;
  /** One cluster per context (repeatable); with several, each cluster is named after its context. */
  context?: string | string[];
  plan?: string;
  /** Scan every cluster this often (`6h`). */
  scanEvery?: string;
  db?: string;
  socket?: boolean;
  speed?: number;
  port?: number;
}

export async function botCommand(options: BotCliOptions, io: { out: Writable; env?: NodeJS.ProcessEnv; stopped?: Promise<string> }): Promise<number> {
  const env = io.env ?? process.env;
  if (options.sim && options.kubeconfig) throw new UserError('--sim and --kubeconfig exclude each other', 'choose a simulated cluster (--sim FILE) or a real one (--kubeconfig PATH)');
  if (!options.sim && !options.kubeconfig) throw new UserError('no cluster: give --sim FILE or --kubeconfig PATH', 'for a demo: npx patchpilot bot --sim fixtures/scenarios/sandbox-palette.yaml');
  const config = loadBotConfig(env, { socket: options.socket === true });
  const write = (text: string) => io.out.write(`${text}\n`);
  const cleanups: Array<() => void | Promise<void>> = [];
  let targets: KubeTarget[];
  const scanEveryMs = options.scanEvery === undefined ? undefined : parseDuration(options.scanEvery);
  if (typeof scanEveryMs === 'string') throw new UserError(`--scan-every ${scanEveryMs}`, 'give how often to scan, e.g. --scan-every 6h');
  if (scanEveryMs !== undefined && scanEveryMs < 60_000) throw new UserError('--scan-every must be at least 1m', 'scans run a Job on every node: every few hours is plenty');
  const contexts = options.context === undefined ? [] : [...new Set([options.context].flat())];
  if (contexts.length > 1 && options.plan) throw new UserError('--plan names one cluster, but several contexts were given', 'leave --plan out: each cluster is then named after its context, with the default plan');
  // Listened for from the start: a signal while the bot is still connecting (Socket Mode retries an unreachable
  // Slack) must stop it through the cleanups below, not kill the process with its temporary files left behind.
  const stopped = io.stopped ?? untilSignal();
  try {
    if (options.sim) {
      const scenario = loadScenario(options.sim);
      // --plan replaces the scenario's plan, as it does the default with --kubeconfig; read first, so a bad one starts nothing.
      const plan = options.plan ? loadPlanFile(options.plan) : parsePlan({ ...scenario.planInput, cluster: scenario.clusterName });
      const clock = new ScaledClock(options.speed ?? 60);
      const sandbox = createSandbox(scenario, clock);
      const server = await startKubeApiServer({ store: sandbox.store });
      const dir = mkdtempSync(join(tmpdir(), 'patchpilot-bot-sim-'));
      writeFileSync(join(dir, 'kubeconfig'), kubeconfig(server.url));
      const store = openStore(options.db ?? ':memory:');
      cleanups.push(async () => {
        store.close();
        sandbox.binding.close();
        clock.clearAll();
        await server.close();
        rmSync(dir, { recursive: true, force: true });
      });
      targets = [kubeTarget({ kubeconfig: join(dir, 'kubeconfig'), plan, db: store, clock, palette: null, env })];
      write(`simulated cluster ${scenario.clusterName}: ${scenario.nodes.length} nodes from ${options.sim}, time ${clock.speed}x (kubectl: KUBECONFIG=${join(dir, 'kubeconfig')})`);
    } else {
      const db = resolve(options.db ?? DEFAULT_DB);
      mkdirSync(dirname(db), { recursive: true });
      const store = openStore(db);
      cleanups.push(() => store.close());
      const plan = options.plan ? loadPlanFile(options.plan) : undefined;
      if (contexts.length > 1) {
        // Many clusters from one bot: each its own orchestrator, lease (in its own cluster) and runs in the store.
        targets = contexts.map((context) => kubeTarget({ kubeconfig: options.kubeconfig, context, plan: parsePlan({ cluster: context }), db: store, palette: null, env }));
      } else {
        targets = [kubeTarget({ kubeconfig: options.kubeconfig, ...(contexts[0] ? { context: contexts[0] } : {}), ...(plan ? { plan } : {}), db: store, env })];
      }
      for (const target of targets) write(`cluster ${target.name} at ${target.cluster.server} (${target.source})`);
    }
    // A binding to a cluster the bot does not serve would only be found when someone in that channel types /patch.
    const served = targets.map((target) => target.name);
    const unserved = [...new Set(config.channels.values())].filter((cluster) => !served.includes(cluster));
    if (unserved.length > 0) {
      throw new UserError(
        `PATCHPILOT_CHANNELS binds channels to ${unserved.length === 1 ? 'a cluster' : 'clusters'} this bot does not serve: ${unserved.join(', ')} (it serves ${served.join(', ')})`,
        'bind each channel to a cluster the bot serves, or give the bot that cluster (--context NAME)',
      );
    }
    const paletteKey = env.PALETTE_API_KEY;
    const bot = createBot({ config, clusters: targets, ...(scanEveryMs !== undefined ? { scanEveryMs } : {}), ...(paletteKey ? { secrets: [paletteKey] } : {}) });
    const starting = bot.start(options.port ?? config.port);
    // Stopped before it connected, the start may still fail afterwards: that is no longer anyone's concern.
    starting.catch(() => undefined);
    const started = await Promise.race([starting, stopped.then((reason) => ({ stoppedBy: reason }))]);
    if ('stoppedBy' in started) {
      await bot.stop();
      write(`bot stopped (${started.stoppedBy}) before it had connected`);
      return 0;
    }
    const { port } = started;
    write(
      config.mode === 'http'
        ? `patchpilot bot listening on port ${port}: point the Slack app's slash command and interactivity at https://<this host>/slack/events (health: /healthz, metrics: /metrics)`
        : `patchpilot bot connected over Socket Mode (health: http://127.0.0.1:${port}/healthz)`,
    );
    const reason = await stopped;
    await bot.stop();
    write(`bot stopped (${reason})`);
    return 0;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}
