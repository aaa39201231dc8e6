/**
 * `patchpilot demo` (what `npm start` runs): the real engine patching a small in-memory cluster in virtual time, with
 * the faults operators meet (a kernel update that needs a reboot, an API server hiccup, a PodDisruptionBudget that
 * blocks a drain, a node someone else cordoned). The run is durable: interrupt it with Ctrl-C and resume it.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleepReal } from 'node:timers/promises';
import { MemoryCluster, type MemoryClusterState, type MemoryNodeSpec } from '../cluster/memory.ts';
import { VirtualClock } from '../engine/clock.ts';
import type { NodeOutcome } from '../engine/node.machine.ts';
import { describeZodIssues, parsePlan } from '../engine/plan.ts';
import { agentReportSchema } from '../engine/report.ts';
import { DocumentError, parseJsonText } from '../engine/documents.ts';
import { MAX_STATE_BYTES, readUserFile, UserFileError } from '../io/user-file.ts';
import { z } from 'zod';
import { driveInVirtualTime } from '../service/drive.ts';
import { isRunId, Orchestrator, type RunEvent, type RunHandle } from '../service/orchestrator.ts';
import { showRun } from './history.ts';
import { LiveView, outcomeLine, summaryTable } from './live.ts';
import { DEFAULT_DB, openCliStore } from './paths.ts';
import { UserError } from './user-error.ts';

const ubuntu = 'Ubuntu 22.04.4 LTS';
const rocky = 'Rocky Linux 9.4 (Blue Onyx)';

export const DEMO_NODES: MemoryNodeSpec[] = [
  { name: 'cp-1', role: 'control-plane', zone: 'zone-a', osImage: ubuntu },
  {
    name: 'worker-1',
    zone: 'zone-a',
    osImage: ubuntu,
    behaviour: {
      report: {
        upgraded: [
          { name: 'linux-image-5.15.0-126-generic', from: '5.15.0-125.135', to: '5.15.0-126.136' },
          { name: 'openssl', from: '3.0.2-0ubuntu1.17', to: '3.0.2-0ubuntu1.18' },
        ],
        rebootRequired: true,
        rebootPackages: ['linux-image-5.15.0-126-generic'],
      },
    },
  },
  { name: 'worker-2', zone: 'zone-b', osImage: rocky, behaviour: { apiErrors: 2 } },
  { name: 'worker-3', zone: 'zone-b', osImage: ubuntu, unschedulable: true, annotations: { 'ops.example.com/reason': 'disk check' } },
  { name: 'worker-4', zone: 'zone-a', osImage: ubuntu, behaviour: { drainBlocked: true } },
  { name: 'worker-5', zone: 'zone-b', osImage: rocky },
  { name: 'win-1', os: 'windows', zone: 'zone-a' },
];

export const DEMO_PLAN = {
  cluster: 'demo',
  concurrency: 2,
  maxFailures: 1,
  drainTimeoutSeconds: 300,
  retry: { attempts: 3, backoffSeconds: 10 },
};

interface ClusterFile {
  now: number;
  state: MemoryClusterState;
}

/** The saved cluster is checked before it is trusted: a truncated or hand-edited file is a user mistake, not a crash. */
const stringRecord = z.record(z.string(), z.string());
/** A time in the demo's virtual clock: years 2000 to 2200 (1e20 broke the date formatting; -1e20 never reached a timer). */
const instant = z.number().min(Date.UTC(2000, 0, 1), 'must be a time after 2000').max(Date.UTC(2200, 0, 1), 'must be a time before 2200').int();
const duration = z.number().int().min(0).max(7 * 86_400_000, 'must be at most a week');
const partialReport = z.looseObject({
  result: z.enum(['patched', 'no-updates', 'failed']).optional(),
  upgraded: z.array(z.looseObject({ name: z.string(), from: z.string(), to: z.string() })).optional(),
  held: z.array(z.string()).optional(),
  rebootRequired: z.boolean().optional(),
  rebootPackages: z.array(z.string()).optional(),
  error: z.looseObject({ code: z.string(), message: z.string() }).nullable().optional(),
  durationSeconds: z.number().min(0).optional(),
});
const clusterFileSchema = z.object({
  now: instant,
  state: z.looseObject({
    name: z.string(),
    nodes: z.array(
      z.looseObject({
        name: z.string().min(1),
        labels: stringRecord,
        annotations: stringRecord,
        unschedulable: z.boolean(),
        ready: z.boolean(),
        bootCount: z.number().int().nonnegative(),
        kubeletVersion: z.string(),
        osImage: z.string(),
        timings: z.looseObject({ drainMs: duration, patchMs: duration, rebootMs: duration, prefetchMs: duration }),
        behaviour: z.looseObject({
          report: partialReport.optional(),
          scan: partialReport.optional(),
          drainBlocked: z.boolean().optional(),
          neverRejoins: z.boolean().optional(),
          kubeletAfterReboot: z.string().optional(),
          apiErrors: z.number().int().min(0).optional(),
          jobDiesWithoutReport: z.boolean().optional(),
        }),
        rebootKeys: z.array(z.string()),
        backAt: instant.nullable(),
      }),
    ).refine((nodes) => new Set(nodes.map((n) => n.name)).size === nodes.length, 'names a node twice'),
    jobs: z.record(
      z.string(),
      z.looseObject({ name: z.string(), node: z.string(), runId: z.string(), createdAt: instant, durationMs: duration, downloadOnly: z.boolean(), report: agentReportSchema, diesWithoutReport: z.boolean() }),
    ),
    lease: z.looseObject({ holder: z.string(), expiresAt: instant }).nullable(),
    // The audit anchor `audit verify` compares the database with: a hand-edited one must not pass for the truth.
    auditAnchors: z.record(z.string(), z.looseObject({ seq: z.number().int().min(0), hash: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 hash in hex'), at: instant })).optional(),
    patchJobsCreated: z.record(z.string(), z.number().int().min(0)),
    maxCordonedByUs: z.number().int().min(0),
  }),
});

function readClusterFile(path: string): ClusterFile {
  const hint = 'the saved demo cluster is damaged: start a new demo with: npx patchpilot demo';
  let value: unknown;
  try {
    value = parseJsonText(readUserFile(path, 'demo cluster file', MAX_STATE_BYTES));
  } catch (err) {
    if (err instanceof DocumentError) throw new DemoError(`cannot resume: ${path} is ${err.message}`, hint);
    if (err instanceof UserFileError) throw new DemoError(`cannot resume: ${err.message}`, hint);
    throw new DemoError(`cannot resume: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, hint);
  }
  const parsed = clusterFileSchema.safeParse(value);
  if (!parsed.success) throw new DemoError(`cannot resume: ${path}: ${describeZodIssues(parsed.error)[0]}`, hint);
  return parsed.data as unknown as ClusterFile;
}

export interface DemoOptions {
  db?: string;
  resume?: string;
  speed?: number;
  json?: boolean;
}

export interface DemoIo {
  out: NodeJS.WriteStream | (NodeJS.WritableStream & { isTTY?: boolean });
  now: () => number;
}

export async function demo(options: DemoOptions, io: DemoIo): Promise<number> {
  // Checked before the database is opened (or created), and an empty id too: '' used to start a new demo silently.
  if (options.resume !== undefined && !isRunId(options.resume)) throw new DemoError(`${JSON.stringify(options.resume)} is not a run id`, 'pass the id `demo` printed when it was interrupted (npx patchpilot runs lists them)');
  const store = openCliStore(options.db);
  const tty = !options.json && io.out.isTTY === true;
  const speed = options.speed ?? (tty ? 120 : 0);

  // One cluster file per run, so two demos on one database never share (nor rename over) each other's file, and
  // its temporary is private to this process.
  let clusterFile = options.resume !== undefined ? demoClusterFile(store.path, options.resume) : null;
  let saved: ClusterFile | null = null;
  if (options.resume !== undefined) {
    const legacy = `${store.path}.demo-cluster.json`;
    const file = existsSync(clusterFile!) ? clusterFile! : existsSync(legacy) ? legacy : null;
    if (!file) throw new DemoError(`no demo cluster to resume at ${clusterFile}`, 'start a new demo with: npx patchpilot demo');
    saved = readClusterFile(file);
    // The simulated cluster is this run's alone, and resume() claims the run only from a process that is gone: the
    // lease that process held in the file has run out (its holder stays named, so the run resumes step by step, as
    // it would from a crashed holder of a real cluster that nobody else took over).
    if (saved.state.lease) saved.state.lease = { ...saved.state.lease, expiresAt: Math.min(saved.state.lease.expiresAt, saved.now) };
  }
  const clock = new VirtualClock(saved?.now ?? io.now());
  const persist = (state: MemoryClusterState) => {
    if (clusterFile === null) return;
    const temporary = `${clusterFile}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify({ now: clock.now(), state } satisfies ClusterFile));
    renameSync(temporary, clusterFile);
  };
  const cluster = saved
    ? new MemoryCluster(saved.state, { clock, onChange: persist })
    : MemoryCluster.create('demo', DEMO_NODES, { clock, onChange: persist });

  const view = new LiveView({ out: io.out as NodeJS.WritableStream & NodeJS.WriteStream, tty, title: 'patchpilot demo · cluster demo', now: () => clock.now() });
  const outcomes: NodeOutcome[] = [];
  const onEvent = (event: RunEvent) => {
    if (event.type === 'node.finished') outcomes.push(event.outcome);
    if (!options.json) view.handle(event);
  };
  // The run lives in virtual time, but whether its owner is alive is a question of real time (another demo may ask).
  const orchestrator = new Orchestrator({ cluster, clock, store, onEvent, ownerNow: Date.now });
  // A run another live process drives is refused here (RUN_OWNED), before this process writes anything of it.
  const handle: RunHandle = options.resume !== undefined
    ? await orchestrator.resume(options.resume)
    : // Palette would wait ten minutes after an on-demand click; the demo starts at once.
      await orchestrator.start({ plan: parsePlan(DEMO_PLAN), requestedBy: 'demo', notBefore: null });
  clusterFile = demoClusterFile(store.path, handle.runId);
  persist(cluster.state as MemoryClusterState);
  if (!options.json && options.resume === undefined) {
    io.out.write(`${tty ? '' : '# '}run ${handle.runId}: patching ${DEMO_NODES.length - 1} Linux nodes of cluster "demo", 2 at a time (Ctrl-C to interrupt, then resume)\n`);
  }
  if (!options.json) view.expect(DEMO_NODES.filter((n) => n.os !== 'windows').map((n) => n.name));

  const interrupt = () => {
    handle.detach();
    persist(cluster.state as MemoryClusterState);
    const db = options.db ? ` --db ${options.db}` : '';
    io.out.write(`\ninterrupted: run ${handle.runId} is saved in ${store.path}.\nresume it with: npx patchpilot demo --resume ${handle.runId}${db}\n`);
    store.close();
    process.exit(130);
  };
  process.once('SIGINT', interrupt);

  let last = clock.now();
  const output = await driveInVirtualTime(handle, clock, {
    onTick: async (now) => {
      persist(cluster.state as MemoryClusterState);
      view.draw();
      if (speed > 0) await sleepReal(Math.min(1000, (now - last) / speed));
      last = now;
    },
  });
  process.removeListener('SIGINT', interrupt);
  view.draw();
  if (!output) {
    store.close();
    return 1;
  }
  // A resumed run's earlier nodes finished in another process: the store has all of them.
  const summary = options.resume !== undefined ? showRun(store, output.runId) : summaryTable(outcomes);
  store.close();
  if (options.json) {
    io.out.write(`${JSON.stringify({ ...output, nodes: outcomes }, null, 2)}\n`);
    return 0;
  }
  io.out.write(`\n${summary}\n\n${outcomeLine(output)}\n`);
  const db = options.db ? ` --db ${options.db}` : '';
  io.out.write(`history: npx patchpilot runs${db}   audit trail: npx patchpilot audit show --run ${output.runId}${db}   (${options.db ?? DEFAULT_DB})\n`);
  return 0;
}

/** Where `demo` keeps a run's simulated cluster, beside the database. */
export function demoClusterFile(dbPath: string, runId: string): string {
  return `${dbPath}.demo-${runId}.json`;
}

export class DemoError extends UserError {
  override readonly name = 'DemoError';
}
