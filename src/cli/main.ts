/**
 * The `patchpilot` command line. Parses arguments once, turns every user mistake into one clear message (exit 2)
 * instead of a stack trace, and leaves the work to the service and store modules.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { PlanError } from '../engine/plan.ts';
import { ScheduleError } from '../engine/schedule.ts';
import { StalledRunError } from '../service/drive.ts';
import { isRunId, OrchestratorError } from '../service/orchestrator.ts';
import { StoreError } from '../store/errors.ts';
import { demo } from './demo.ts';
import { listRuns, parseAnchorOption, showAudit, showRun, verifyAudit } from './history.ts';
import { openCliStore, DEFAULT_DB } from './paths.ts';
import { planCheck } from './plan-check.ts';
import { ScenarioError } from '../sim/scenario.ts';
import { MAX_SPEED, speedProblem } from '../sim/scaled-clock.ts';
import type { SimOptions } from './sim.ts';
import type { SandboxOptions } from './sandbox.ts';
import type { BotCliOptions } from './bot.ts';
import { BotConfigError } from '../bot/config.ts';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import type { RunOptions } from './run.ts';
import { KubeConfigError } from '../cluster/kube/config-error.ts';
import { KubeApiError, KubeNotAnApiServerError } from '../cluster/kube/errors.ts';
import { UserError } from './user-error.ts';
import { describeErrno, UserFileError } from '../io/user-file.ts';
import { describeUnreachable } from './network-error.ts';
import type { ResetCliOptions, TargetOptions as DoctorCliOptions } from './doctor.ts';
import type { ScanCliOptions, StatusCliOptions } from './status.ts';

/**
 * Numbers as a user types them in decimal: Number() also takes "0x50" (a port 80 nobody asked for), "0b1", "1e3",
 * " 5" and "" (0). Anything else is NaN, which every parser below refuses with its own message.
 */
export function decimal(value: string, fraction = false): number {
  return (fraction ? /^(\d+(\.\d*)?|\.\d+)$/ : /^\d+$/).test(value) ? Number(value) : Number.NaN;
}

const positiveInt = (value: string): number => {
  const n = decimal(value);
  // Safe integers only: SQLite refuses a LIMIT beyond 2^63, and 1e20 is no whole number a user meant.
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a whole number from 1 to ${Number.MAX_SAFE_INTEGER}`);
  return n;
};

const portNumber = (value: string): number => {
  const n = decimal(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('expected a port number (0 for a free one)');
  return n;
};

/** --speed of a ScaledClock (the sandbox, the bot's --sim): above 0 and at most MAX_SPEED, scaled-clock.ts's rule. */
const clockSpeed = (value: string): number => {
  const n = decimal(value, true);
  const problem = speedProblem(n);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return n;
};

const chaosRate = (value: string): number => {
  const n = decimal(value, true);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('expected a share of requests, at least 0 and below 1 (0.05 is one in twenty)');
  return n;
};

const nonNegative = (value: string): number => {
  const n = decimal(value, true);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number, 0 or more');
  return n;
};

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function buildProgram(): Command {
  const program = new Command()
    .name('patchpilot')
    .description('Safe, resumable OS security patching for Kubernetes nodes')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const dbOption = `SQLite database with the run history and audit log (default ${DEFAULT_DB})`;

  const collect = (value: string, previous: string[]) => [...previous, value];
  const seed = (value: string): number => {
    const n = decimal(value);
    // Safe integers only: 99999999999999999999 is read as 1e20, another seed than the one typed (and printed as such).
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`);
    return n;
  };
  program
    .command('sim <scenarios...>')
    .description('run failure scenarios (files, directories or quoted globs of fixtures/scenarios/*.yaml) against the simulated cluster; exit 0 when every expectation holds, 1 when not, 2 on invalid input')
    .option('--json', 'print the result as one JSON document')
    .option('--seed <n>', "override the scenario's seed", seed)
    .option('--report <file.html>', 'one scenario: write a self-contained HTML report (timeline, summary, expectations)')
    .option('--record <file.jsonl>', 'one scenario: where to write the recording ("-" for none)')
    .option('--speed <n>', 'one scenario: virtual seconds per real second in a terminal (default 0: as fast as possible)', nonNegative)
    .option('--junit <file.xml>', 'write JUnit XML: one test case per scenario run and expectation (and invariant)')
    .option('--jobs <n>', 'scenarios run at once, each in its own worker thread (default: the number of cores)', positiveInt)
    .action(async (files: string[], opts: SimOptions & { junit?: string; jobs?: number }) => {
      const single = files.length === 1 && files[0] !== undefined && !/[*?[{]/.test(files[0]) && !isDirectory(files[0]);
      if (single && opts.junit === undefined && opts.jobs === undefined) {
        // Loaded when used: the simulator is most of what the CLI could load, and `runs` or `audit` need none of it.
        const { simCommand } = await import('./sim.ts');
        process.exitCode = await simCommand(files[0]!, opts, { out: process.stdout });
        return;
      }
      if (opts.report !== undefined || opts.record !== undefined) throw new UserError('--report and --record take one scenario', 'run that scenario alone: patchpilot sim FILE --report FILE.html');
      const { simBatchCommand } = await import('./sim-batch.ts');
      process.exitCode = await simBatchCommand(files, { ...(opts.junit ? { junit: opts.junit } : {}), ...(opts.jobs ? { jobs: opts.jobs } : {}), ...(opts.seed !== undefined ? { seed: opts.seed } : {}), ...(opts.json ? { json: true } : {}) }, { out: process.stdout });
    });

  program
    .command('replay <recording>')
    .description('re-run a recorded run in the simulator, nodes behaving as recorded, optionally with another policy')
    .option('--set <key=value>', 'change a plan setting (repeatable): concurrency=2, maxFailures=1, drain.onTimeout=keep-cordoned', collect, [])
    .option('--json', 'print the result as one JSON document')
    .option('--report <file.html>', 'write a self-contained HTML report')
    .option('--record <file.jsonl>', 'where to write the replay\'s own recording ("-" for none)')
    .option('--speed <n>', 'virtual seconds per real second in a terminal', nonNegative)
    .action(async (file: string, opts: SimOptions & { set: string[] }) => {
      const { replayCommand } = await import('./sim.ts');
      process.exitCode = await replayCommand(file, opts.set, opts, { out: process.stdout });
    });

  program
    .command('demo')
    .description('a durable run on a small in-memory cluster: interrupt it with Ctrl-C and resume it with --resume')
    .option('--db <path>', dbOption)
    .option('--resume <run>', 'resume an interrupted demo run', runIdOption)
    .option('--speed <n>', 'virtual seconds per real second (default 120 in a terminal, 0 = no pause)', nonNegative)
    .option('--json', 'print the result as JSON instead of the live view')
    .action(async (opts: { db?: string; resume?: string; speed?: number; json?: boolean }) => {
      process.exitCode = await demo(opts, { out: process.stdout, now: () => Date.now() });
    });

  program
    .command('run')
    .description('patch a real cluster: its nodes one by one (or a few), cordoned, drained, patched by the agent Job, rebooted if needed')
    .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the pod\'s service account)')
    .option('--context <name>', 'kubeconfig context to use (default: its current context)')
    .option('--plan <file>', 'plan file (YAML or JSON; default: every default, cluster named after the context\'s)')
    .option('--trigger <id>', 'trigger id for the version hash (the same id again patches only nodes without its label)', triggerId)
    .option('--dry-run', 'list the nodes that would be patched, in order, and why the others would not; change nothing')
    .option('--db <path>', dbOption)
    .option('--metrics-port <n>', 'serve Prometheus metrics at http://0.0.0.0:<n>/metrics while the run lasts (0: a free port)', portNumber)
    .option('--wait', 'when another orchestrator holds the cluster, wait for its lease instead of exiting 3')
    .option('--lease-seconds <n>', "the cluster lease's duration: renewed every third of it, taken over only after it (default 60)", positiveInteger('--lease-seconds', MAX_LEASE_SECONDS))
    .action(async (opts: RunOptions) => {
      const { runCommand } = await import('./run.ts');
      process.exitCode = await runCommand(opts, { out: process.stdout });
    });

  const fleetOptions = (command: Command) =>
    command
      .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the pod\'s service account)')
      .option('--context <name>', 'a kubeconfig context: one cluster each, repeatable (default: the current context)', collect, [])
      .option('--all-contexts', 'every context of the kubeconfig')
      .option('--plan <file>', 'plan file (its cluster name, label key, package policy); one context only')
      .option('--db <path>', dbOption)
      .option('--json', 'print {"clusters":[{"name","compliant","total","lastScanAt","nodes":[...]}]}');
  fleetOptions(program.command('scan'))
    .description('run the agent report-only on every Linux node (a Job each, no cordon) and record what it finds on the node and in the history; then print the status')
    .option('--concurrency <n>', 'nodes scanned at once per cluster (default 5)', positiveInt)
    .option('--timeout <seconds>', 'how long a node\'s scan Job may take to report (default 600)', positiveInt)
    .option('--every <duration>', 'scan again every so often (6h, 1d) until stopped: the scheduled scan')
    .option('--metrics-port <n>', 'with --every: serve the fleet metrics at http://0.0.0.0:<n>/metrics (0: a free port)', portNumber)
    .action(async (opts: ScanCliOptions) => {
      const { scanCommand } = await import('./status.ts');
      process.exitCode = await scanCommand(opts, { out: process.stdout });
    });
  fleetOptions(program.command('status'))
    .description('per node: OS, kernel, security updates pending, reboot, last patch, cordon, compliance; per cluster: compliant X of Y. Exit 1 when a cluster could not be read')
    .option('--report <file.html>', 'also write an HTML page: compliance tables and a chart of pending updates over time')
    .action(async (opts: StatusCliOptions) => {
      const { statusCommand } = await import('./status.ts');
      process.exitCode = await statusCommand(opts, { out: process.stdout });
    });

  const targetOptions = (command: Command) =>
    command
      .option('--kubeconfig <path>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the pod\'s service account)')
      .option('--context <name>', 'kubeconfig context to use (default: its current context)')
      .option('--plan <file>', 'plan file (its cluster name, label key, node selector, mode)')
      .option('--cluster <name>', 'the cluster\'s name, as in its runs and Lease (default: the plan\'s, else the context\'s cluster)')
      .option('--db <path>', dbOption)
      .option('--palette-cluster <uid>', 'the cluster\'s uid in Palette (default $PALETTE_CLUSTER_UID; needs $PALETTE_API_KEY)');
  targetOptions(program.command('doctor'))
    .description('why does an On-Demand Update do nothing? checks every known cause; exit 0 when none is found, 1 when some are')
    .option('--json', 'print the report as JSON')
    .action(async (opts: DoctorCliOptions) => {
      const { doctorCommand } = await import('./doctor.ts');
      process.exitCode = await doctorCommand(opts, { out: process.stdout });
    });
  targetOptions(program.command('unstick'))
    .description('clear a stuck Palette onDemandPatchAfter, release an expired Lease, cancel a scheduled run nobody drives (audited)')
    .action(async (opts: DoctorCliOptions) => {
      const { unstickCommand } = await import('./doctor.ts');
      process.exitCode = await unstickCommand(opts, { out: process.stdout });
    });
  targetOptions(program.command('reset'))
    .description('remove the task label and patchpilot\'s annotations so nodes are patched again; prints the plan, changes only with --yes')
    .option('--nodes <a,b>', 'only these nodes (every name must exist)', nodeListOption)
    .option('--include-disabled', 'also remove a "disabled" opt-out')
    .option('--yes', 'do it (without: print what would be removed, exit 1)')
    .action(async (opts: ResetCliOptions) => {
      const { resetCommand } = await import('./doctor.ts');
      process.exitCode = await resetCommand(opts, { out: process.stdout, in: process.stdin });
    });

  program
    .command('bot')
    .description('the Slack bot (/patch): configuration from SLACK_* and PATCHPILOT_* variables (see the README), until stopped')
    .option('--sim <scenario>', 'against a simulated cluster: the scenario served in-process, time sped up')
    .option('--kubeconfig <path>', 'against a real cluster')
    .option('--context <name>', 'kubeconfig context: one cluster each, repeatable (several: each cluster named after its context)', collect, [])
    .option('--plan <file>', 'the cluster\'s plan (YAML or JSON; one context only; with --sim it replaces the scenario\'s)')
    .option('--scan-every <duration>', 'scan every cluster this often (6h, 1d): the agent report-only on every Linux node')
    .option('--db <path>', dbOption)
    .option('--socket', 'Socket Mode (SLACK_APP_TOKEN) instead of an HTTP endpoint')
    .option('--speed <n>', `with --sim: virtual seconds per real second (default 60, at most ${MAX_SPEED})`, clockSpeed)
    .option('--port <n>', 'HTTP port (default $PORT or 3000; 0: a free one)', portNumber)
    .action(async (opts: BotCliOptions) => {
      const { botCommand } = await import('./bot.ts');
      process.exitCode = await botCommand(opts, { out: process.stdout });
    });

  program
    .command('sandbox')
    .description('serve a scenario\'s simulated cluster as a Kubernetes API on 127.0.0.1, for kubectl and `patchpilot run`, until stopped')
    .option('--scenario <file>', 'the cluster to simulate: nodes, faults, updates, plan (default: the demo scenario)')
    .option('--port <n>', 'port to listen on (default: a free one)', portNumber)
    .option('--kubeconfig <path>', `where to write its kubeconfig (default ${join('.patchpilot', 'sandbox.kubeconfig')})`)
    .option('--speed <n>', `virtual seconds per real second (default 10, at most ${MAX_SPEED})`, clockSpeed)
    .option('--quiet', 'do not narrate node and Job changes')
    .option('--chaos <rate>', 'fail this share of API requests transiently (429 with Retry-After, 500, 409 on Node writes) and drop watches (0 to below 1; default: the scenario\'s apiChaos, else 0)', chaosRate)
    .action(async (opts: SandboxOptions) => {
      const { sandboxCommand } = await import('./sandbox.ts');
      process.exitCode = await sandboxCommand(opts, { out: process.stdout });
    });

  const runs = program
    .command('runs')
    .description('list runs, newest first')
    .option('--db <path>', dbOption)
    .option('--cluster <name>', 'only this cluster')
    .option('--active', 'only runs that have not finished')
    .option('--limit <n>', 'at most this many', positiveInt, 20)
    // Words after `runs` reach this action (it has one as well as the show subcommand), so a misspelt subcommand is
    // named here; commander would say only "too many arguments".
    .allowExcessArguments(true)
    .action((opts: { db?: string; cluster?: string; active?: boolean; limit: number }, command: Command) => {
      refuseUnknownSubcommand(command);
      const store = openCliStore(opts.db, { readOnly: true });
      try {
        print(listRuns(store, { limit: opts.limit, ...(opts.cluster ? { cluster: opts.cluster } : {}), ...(opts.active ? { active: true } : {}) }));
      } finally {
        store.close();
      }
    });
  runs
    .command('show <run>')
    .description('one run: its outcome and every node')
    .option('--db <path>', dbOption)
    .action((run: string, opts: { db?: string }) => {
      const store = openCliStore(opts.db ?? runs.opts<{ db?: string }>().db, { readOnly: true });
      try {
        print(showRun(store, run));
      } finally {
        store.close();
      }
    });

  program
    .command('dead-letters')
    .description('notifications that every retry failed to deliver (webhook, Slack incoming webhook), oldest first')
    .option('--db <path>', dbOption)
    .option('--json', 'print them as JSON')
    .action((opts: { db?: string; json?: boolean }) => {
      const store = openCliStore(opts.db, { readOnly: true });
      try {
        const letters = store.deadLetters();
        if (opts.json) print(JSON.stringify(letters.map((l) => ({ ...l, body: JSON.parse(l.body) as unknown })), null, 2));
        else if (letters.length === 0) print('no undelivered notification');
        else print(letters.map((l) => `${new Date(l.failedAt).toISOString()}  ${l.event}  to ${l.sink}: ${l.lastError} after ${l.attempts} attempt(s)`).join('\n'));
      } finally {
        store.close();
      }
    });

  const audit = program.command('audit').description('the append-only, hash-chained audit log');
  audit
    .command('verify')
    .description('check that no audit record was changed, removed or added: the hash chain, and the anchors it can reach (exit 1 if anything does not match)')
    .option('--db <path>', dbOption)
    .option('--kubeconfig <path>', "also check the audit head each cluster keeps (ConfigMap patchpilot-audit-<cluster> in patchpilot's namespace)")
    .option('--context <name>', 'kubeconfig context to use (default: its current context)')
    .option('--cluster <name>', "the cluster whose anchor to read (default: every cluster the database's runs name)")
    .option('--anchor <seq:hash>', "an audit head from a run's Slack thread (repeatable)", (value: string, all: string[] = []) => [...all, value])
    .action(async (opts: { db?: string; kubeconfig?: string; context?: string; cluster?: string; anchor?: string[] }) => {
      const store = openCliStore(opts.db, { readOnly: true });
      try {
        const anchors = (opts.anchor ?? []).map(parseAnchorOption);
        const notChecked: string[] = [];
        if (opts.kubeconfig !== undefined) {
          const { clusterAnchors } = await import('./audit-anchors.ts');
          const found = await clusterAnchors(store, { kubeconfig: opts.kubeconfig, ...(opts.context ? { context: opts.context } : {}), ...(opts.cluster ? { cluster: opts.cluster } : {}) });
          // The check asked for cannot be made: bad input (an API server that cannot be reached), never "intact".
          if (found.failed.length > 0) {
            throw new UserError(
              `audit verify --kubeconfig ${opts.kubeconfig}: cannot read the audit anchor: ${found.failed.join('; ')}`,
              'nothing was verified; check that the API server is running and that the kubeconfig (and --context) points at it, or leave --kubeconfig out to check the chain (and any --anchor) alone',
            );
          }
          anchors.push(...found.anchors);
          notChecked.push(...found.notChecked);
        }
        const result = verifyAudit(store, anchors, notChecked, { kubeconfig: opts.kubeconfig !== undefined });
        print(result.text);
        process.exitCode = result.ok ? 0 : 1;
      } finally {
        store.close();
      }
    });
  audit
    .command('show')
    .description('print audit records, oldest first')
    .option('--db <path>', dbOption)
    .option('--run <run>', 'only this run')
    .option('--limit <n>', 'at most this many', positiveInt, 200)
    .action((opts: { db?: string; run?: string; limit: number }) => {
      const store = openCliStore(opts.db, { readOnly: true });
      try {
        print(showAudit(store, { limit: opts.limit, ...(opts.run !== undefined ? { runId: opts.run } : {}) }));
      } finally {
        store.close();
      }
    });

  program
    .command('plan')
    .description('work with plan files')
    .command('check <file>')
    .description('validate a plan file (YAML or JSON) and show the resolved plan, its schedule and version hash')
    .option('--trigger <id>', 'trigger id to compute the version hash for (default: as `run` derives it from the plan)', triggerId)
    .action((file: string, opts: { trigger?: string }) => {
      print(planCheck(file, { ...(opts.trigger === undefined ? {} : { trigger: opts.trigger }), now: Date.now() }));
    });

  program.hook('preAction', (_program, command) => refuseEmptyOptionValues(command));
  return program;
}

/**
 * `--plan "$PLAN"` with PLAN unset: an empty value is never what was meant, and was taken as "no such option" (a run
 * with every default instead of the plan; no report, recording or JUnit file, exit 0) or, for --db, as SQLite's
 * temporary database (a run whose audit log vanished with the process). Every option that takes a value refuses it.
 */
function refuseEmptyOptionValues(command: Command): void {
  const values = command.opts<Record<string, unknown>>();
  for (const option of command.options) {
    if (!option.required && !option.optional) continue;
    const value = values[option.attributeName()];
    const empty = (Array.isArray(value) ? value : [value]).find((v): v is string => typeof v === 'string' && v.trim() === '');
    if (empty !== undefined) command.error(`error: option '${option.flags}' argument '${empty}' is invalid. It is empty (is a shell variable unset?)`, { code: 'commander.invalidArgument', exitCode: 2 });
  }
}

/**
 * Exit code of a command refused or stopped because another orchestrator holds the cluster (or drives the run): not
 * a mistake (2) nor a failed run (1), so scripts can wait and try again (or pass --wait).
 */
export const EXIT_CLUSTER_BUSY = 3;
const CLUSTER_BUSY_CODES = new Set(['LEASE_HELD', 'LEASE_LOST', 'RUN_OWNED']);

/** Parses a whole number above 0, or says which option was wrong (commander turns it into exit 2). */
function positiveInteger(option: string, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) <= 0) throw new InvalidArgumentError(`${option} must be a whole number of seconds above 0, got "${value}"`);
    if (Number(value) > max) throw new InvalidArgumentError(`${option} must be at most ${max}, got "${value}"`);
    return Number(value);
  };
}

/** A day: a longer lease only delays a takeover after a crash (the Lease's own field would take up to int32). */
const MAX_LEASE_SECONDS = 86_400;

/** Letters to change to turn `a` into `b` (Levenshtein), for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

/** Commander's "unknown command 'x' (Did you mean y?)" for a command that has both an action and subcommands. */
function refuseUnknownSubcommand(command: Command): void {
  const word = command.args[0];
  if (word === undefined) return;
  const names = command.commands.map((c) => c.name());
  const near = names.filter((name) => editDistance(word, name) <= Math.max(1, Math.floor(name.length / 3)));
  command.error(`error: unknown command '${word}'${near.length > 0 ? `\n(Did you mean ${near.join(' or ')}?)` : ` (${command.name()} takes: ${names.join(', ')})`}`, { code: 'commander.unknownCommand', exitCode: 2 });
}

/**
 * A list of node names, read here once for the command: given once (a second --nodes would silently replace the
 * first, commander keeping the last), naming a node, and no name twice (a typo for another node, as a plan file's
 * `nodes` says).
 */
function nodeListOption(value: string, previous: string[] | undefined): string[] {
  if (previous !== undefined) throw new InvalidArgumentError('--nodes is given twice: name every node in one --nodes a,b');
  const names = value.split(',').map((name) => name.trim()).filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError('--nodes names no node: name nodes as --nodes worker-1,worker-2, or leave --nodes out for every node');
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) throw new InvalidArgumentError(`${JSON.stringify(twice.slice(0, 63))} is listed twice: a typo for another node?`);
  return names;
}

/** `--resume ''` (an unset shell variable) must not silently start a new demo instead. */
function runIdOption(value: string): string {
  if (!isRunId(value)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a run id (npx patchpilot runs lists them)`);
  return value;
}

/** An empty id (an unset shell variable) would hash as a trigger of its own and silently patch every node again. */
function triggerId(value: string): string {
  if (value.trim() === '' || /[\u0000-\u001f\u007f]/.test(value)) throw new InvalidArgumentError(`--trigger must be a non-empty id without control characters, got ${JSON.stringify(value)}`);
  return value;
}

/** Filesystem errors a user's path or disk causes; network ones (ECONNREFUSED, ...) are describeUnreachable's. */
const PATH_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'ELOOP', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR', 'ENOENT', 'ENAMETOOLONG', 'EIO', 'EFBIG', 'EMFILE', 'ENFILE', 'EEXIST', 'ENXIO']);

/**
 * The last line of defence: a Node system error that escaped the code that should have named its option (a write to
 * a full disk, a symlink loop) is still one line naming the path, not a stack trace.
 */
function describeSystemError(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const { code, path, dest, syscall } = err as NodeJS.ErrnoException & { dest?: string };
  // A server that cannot listen (bot, run --metrics-port, scan --metrics-port): the port, not a trace.
  const { port, address } = err as { port?: unknown; address?: unknown };
  if (syscall === 'listen' && typeof port === 'number') {
    const where = `port ${port}${typeof address === 'string' ? ` on ${address}` : ''}`;
    if (code === 'EADDRINUSE') return `error: ${where} is already in use\nhint: stop what listens there, or choose another port (--port, --metrics-port, PORT)`;
    if (code === 'EACCES') return `error: not allowed to listen on ${where} (ports below 1024 need privileges)\nhint: choose a port above 1024`;
    if (code === 'EADDRNOTAVAIL') return `error: cannot listen on ${where}: no such address on this machine`;
  }
  if (typeof code !== 'string' || !PATH_ERRORS.has(code) || typeof path !== 'string') return null;
  const reason = describeErrno(code) ?? code;
  return `error: ${path}${dest ? ` (to ${dest})` : ''} ${reason}`;
}

/** Every error a user can cause, as the text to show. Anything else is a bug and keeps its stack trace. */
export function describeUserError(err: unknown): string | null {
  // A run that cannot finish in the virtual time allowed (demo, a restored run gone wrong): what it was doing, in a line.
  if (err instanceof PlanError || err instanceof ScheduleError || err instanceof ScenarioError || err instanceof StalledRunError) return `error: ${err.message}`;
  if (err instanceof StoreError || err instanceof OrchestratorError || err instanceof UserError || err instanceof KubeConfigError || err instanceof BotConfigError || err instanceof UserFileError) {
    return `error: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`;
  }
  // Credentials the cluster refuses (an expired token) or a user without a permission: the kubeconfig's, not a bug.
  if (err instanceof KubeApiError && err.status === 401) return `error: the API server refused the kubeconfig's credentials: ${err.message}\nhint: refresh them, then check with: kubectl --kubeconfig PATH auth whoami`;
  const system = describeSystemError(err);
  if (system !== null) return system;
  if (err instanceof KubeApiError && err.status === 403) return `error: the kubeconfig's user is not allowed this: ${err.message}\nhint: patchpilot run --dry-run lists every permission a run needs and which are missing`;
  // A kubeconfig pointing at something else, or an API server failing even after retries: its message names both.
  if (err instanceof KubeNotAnApiServerError || (err instanceof KubeApiError && (err.status >= 500 || err.status === 429))) return `error: ${err.message}`;
  return null;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; anything else commander reports is a usage mistake.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : 2;
    }
    const unreachable = describeUnreachable(err);
    const message =
      describeUserError(err) ??
      (unreachable === null ? null : `error: cannot reach the server: ${unreachable}\nhint: check the address (the kubeconfig's server, SLACK_API_URL) and that the server is running`);
    if (message === null) throw err;
    process.stderr.write(`${message}\n`);
    return err instanceof OrchestratorError && CLUSTER_BUSY_CODES.has(err.code) ? EXIT_CLUSTER_BUSY : 2;
  }
}
