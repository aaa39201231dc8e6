/**
 * `patchpilot doctor`, `unstick` and `reset`: thin front ends over src/service (the bot uses the same functions).
 * They build a ClusterTarget from the kubeconfig, the plan, the store and the Palette settings, call the service and
 * print its answer; refusals (a bad Palette key, unknown node names, a reset not confirmed) become one message and
 * exit 2, as everywhere in the CLI.
 */
import { hostname, userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';
import { parsePlan } from '../engine/plan.ts';
import { PaletteError } from '../palette/index.ts';
import { doctor, doctorHasProblems, formatDoctorReport } from '../service/doctor.ts';
import { formatResetPlan, planReset, reset, ResetError, ResetInterrupted } from '../service/reset.ts';
import { unstick } from '../service/unstick.ts';
import { loadPlanFile } from './plan-check.ts';
import { explain } from './run.ts';
import { kubeTarget, type KubeTarget } from './targets.ts';
import { UserError } from './user-error.ts';

export interface TargetOptions {
  kubeconfig?: string;
  context?: string;
  plan?: string;
  db?: string;
  /** The cluster's name (its Lease and runs); default the plan's, else the kubeconfig context's cluster. */
  cluster?: string;
  /** The cluster's uid in Palette; default $PALETTE_CLUSTER_UID. */
  paletteCluster?: string;
}

export interface OpsIo {
  out: Writable & { isTTY?: boolean };
  in?: Readable & { isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
  /** Where SIGINT and SIGTERM arrive (default: this process). */
  signals?: NodeJS.EventEmitter;
}

class OpsError extends UserError {
  override readonly name = 'OpsError';
}

function openTarget(options: TargetOptions, io: OpsIo): KubeTarget {
  const env = io.env ?? process.env;
  let plan = options.plan ? loadPlanFile(options.plan) : undefined;
  if (options.cluster !== undefined) plan = parsePlan({ ...(plan ?? {}), cluster: options.cluster }, '--cluster');
  return refusals(() =>
    kubeTarget({
      ...(options.kubeconfig !== undefined ? { kubeconfig: options.kubeconfig } : {}),
      ...(options.context !== undefined ? { context: options.context } : {}),
      ...(plan ? { plan } : {}),
      ...(options.db !== undefined ? { db: options.db } : {}),
      ...(options.paletteCluster !== undefined ? { palette: { clusterUid: options.paletteCluster } } : {}),
      env,
    }),
  );
}

/** Palette and reset refusals as UserErrors (message and hint, exit 2). */
function refusals<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw asUserError(err);
  }
}

function asUserError(err: unknown): unknown {
  if (err instanceof PaletteError || err instanceof ResetError) return new OpsError(err.message, err.hint);
  return err;
}

async function withTarget<T>(options: TargetOptions, io: OpsIo, body: (target: KubeTarget) => Promise<T>): Promise<T> {
  const target = openTarget(options, io);
  try {
    return await explain(() => body(target), target.cluster, target.source).catch((err: unknown) => {
      throw asUserError(err);
    });
  } finally {
    target.close();
  }
}

function whoAmI(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container running as an arbitrary uid): keep $USER.
  }
  return `${user}@${hostname()}`;
}

/** Exit 0: no problem found; 1: problems found. */
export async function doctorCommand(options: TargetOptions & { json?: boolean }, io: OpsIo): Promise<number> {
  return withTarget(options, io, async (target) => {
    const report = await doctor(target);
    io.out.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctorReport(report)}\n`);
    return doctorHasProblems(report) ? 1 : 0;
  });
}

export async function unstickCommand(options: TargetOptions & { by?: string }, io: OpsIo): Promise<number> {
  return withTarget(options, io, async (target) => {
    const result = await unstick(target, { by: options.by ?? whoAmI() });
    const lines = [`patchpilot unstick: cluster ${result.cluster}`];
    for (const action of result.actions) lines.push(`  done: ${action}`);
    for (const note of result.notes) lines.push(`  ${note}`);
    io.out.write(`${lines.join('\n')}\n`);
    return 0;
  });
}

export interface ResetCliOptions extends TargetOptions {
  /** Parsed by the command line (main.ts nodeListOption): names, at least one, none twice. */
  nodes?: string[];
  includeDisabled?: boolean;
  yes?: boolean;
  by?: string;
}

/** Without --yes: prints what it would remove and exits 1 (asking first only on a terminal). */
export async function resetCommand(options: ResetCliOptions, io: OpsIo): Promise<number> {
  return withTarget(options, io, async (target) => {
    // Said before the plan is shown and confirmed, not after (reset itself checks again before changing anything).
    if (options.yes === true) target.store?.assertWritable();
    const plan = await planReset(target, {
      ...(options.nodes !== undefined ? { nodes: options.nodes } : {}),
      includeDisabled: options.includeDisabled === true,
    });
    const write = (text: string) => io.out.write(`${text}\n`);
    write(formatResetPlan(plan));
    if (plan.nodes.length === 0) return 0;
    let confirmed = options.yes === true;
    if (!confirmed && io.in?.isTTY === true && io.out.isTTY === true) {
      const prompt = createInterface({ input: io.in, output: io.out });
      try {
        confirmed = /^y(es)?$/i.test((await prompt.question(`remove them from ${plan.nodes.length} node(s)? [y/N] `)).trim());
      } finally {
        prompt.close();
      }
    }
    if (!confirmed) {
      write('nothing was changed: run again with --yes to remove them');
      return 1;
    }
    const done: string[] = [];
    const clear: string[] = [];
    let unaudited: string | null = null;
    /** What a reset stopped part-way did, so that the user knows what a second reset will find. */
    const sofar = (before: string) => {
      const rest = plan.nodes.map((n) => n.name).filter((n) => !done.includes(n) && !clear.includes(n));
      return (
        `reset ${done.length} of ${plan.nodes.length} node(s) ${before}: ${done.join(', ') || '-'}${unaudited !== null ? ` (${unaudited} without its audit record)` : ''}` +
        `${clear.length > 0 ? `; already clear: ${clear.join(', ')}` : ''}${rest.length > 0 ? `; not reset: ${rest.join(', ')}` : ''}`
      );
    };
    // Ctrl-C (or SIGTERM) finishes the node in progress, its patch and its audit record, and stops before the next;
    // a second one stops at once, as the user insists.
    const interrupt = new AbortController();
    const signals = io.signals ?? process;
    const onSignal = () => {
      if (interrupt.signal.aborted) process.exit(130);
      interrupt.abort();
      write('interrupted: finishing the node in progress (its audit record first); press Ctrl-C again to stop at once');
    };
    signals.on('SIGINT', onSignal);
    signals.on('SIGTERM', onSignal);
    let result;
    try {
      result = await reset(target, plan, {
        by: options.by ?? whoAmI(),
        confirmed: true,
        interrupt: interrupt.signal,
        onNode: (node, outcome) => {
          if (outcome === 'already clear') clear.push(node);
          else done.push(node);
          if (outcome === 'reset, not audited') unaudited = node;
        },
      });
    } catch (err) {
      if (err instanceof ResetInterrupted) {
        write(sofar('before the interrupt'));
        write('run the same reset again to finish it');
        return 130;
      }
      // Part-way (the API server failing at the third node): the nodes already reset stay reset, and audited. A
      // node whose patch went through before the database failed is reset, without its audit record.
      if (done.length > 0) write(sofar('before the error'));
      throw err;
    } finally {
      signals.removeListener('SIGINT', onSignal);
      signals.removeListener('SIGTERM', onSignal);
    }
    write(`reset ${result.changed.length} node(s): ${result.changed.join(', ') || '-'}${result.unchanged.length > 0 ? `; already clear: ${result.unchanged.join(', ')}` : ''}`);
    write('they are selected again by the next run');
    return 0;
  });
}
