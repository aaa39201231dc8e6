/**
 * The `patchpilot` command line. Parses arguments once, turns every user mistake into one clear message (exit 2)
 * instead of a stack trace, and leaves the work to the service and store modules.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { PlanError } from '../engine/plan.ts';
import { ScheduleError } from '../engine/schedule.ts';
import { OrchestratorError } from '../service/orchestrator.ts';
import { StoreError } from '../store/errors.ts';
import { demo, DemoError } from './demo.ts';
import { listRuns, showAudit, showRun, verifyAudit } from './history.ts';
import { openCliStore, DEFAULT_DB } from './paths.ts';
import { planCheck } from './plan-check.ts';

const positiveInt = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a whole number above 0');
  return n;
};

const nonNegative = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number, 0 or more');
  return n;
};

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

  program
    .command('demo')
    .description('patch a small in-memory cluster with the real engine, in virtual time, with live progress')
    .option('--db <path>', dbOption)
    .option('--resume <run>', 'resume an interrupted demo run')
    .option('--speed <n>', 'virtual seconds per real second (default 120 in a terminal, 0 = no pause)', nonNegative)
    .option('--json', 'print the result as JSON instead of the live view')
    .action(async (opts: { db?: string; resume?: string; speed?: number; json?: boolean }) => {
      process.exitCode = await demo(opts, { out: process.stdout, now: () => Date.now() });
    });

  const runs = program
    .command('runs')
    .description('list runs, newest first')
    .option('--db <path>', dbOption)
    .option('--cluster <name>', 'only this cluster')
    .option('--active', 'only runs that have not finished')
    .option('--limit <n>', 'at most this many', positiveInt, 20)
    .action((opts: { db?: string; cluster?: string; active?: boolean; limit: number }) => {
      const store = openCliStore(opts.db);
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
      const store = openCliStore(opts.db ?? runs.opts<{ db?: string }>().db);
      try {
        print(showRun(store, run));
      } finally {
        store.close();
      }
    });

  const audit = program.command('audit').description('the append-only, hash-chained audit log');
  audit
    .command('verify')
    .description('check that no audit record was changed or deleted (exit 1 if one was)')
    .option('--db <path>', dbOption)
    .action((opts: { db?: string }) => {
      const store = openCliStore(opts.db);
      try {
        const result = verifyAudit(store);
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
      const store = openCliStore(opts.db);
      try {
        print(showAudit(store, { limit: opts.limit, ...(opts.run ? { runId: opts.run } : {}) }));
      } finally {
        store.close();
      }
    });

  program
    .command('plan')
    .description('work with plan files')
    .command('check <file>')
    .description('validate a plan file (YAML or JSON) and show the resolved plan, its schedule and version hash')
    .option('--trigger <id>', 'trigger id to compute the version hash for', 'on-demand')
    .action((file: string, opts: { trigger: string }) => {
      print(planCheck(file, { trigger: opts.trigger, now: Date.now() }));
    });

  return program;
}

/** Every error a user can cause, as the text to show. Anything else is a bug and keeps its stack trace. */
export function describeUserError(err: unknown): string | null {
  if (err instanceof PlanError || err instanceof ScheduleError) return `error: ${err.message}`;
  if (err instanceof StoreError || err instanceof OrchestratorError || err instanceof DemoError) {
    return `error: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`;
  }
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
    const message = describeUserError(err);
    if (message === null) throw err;
    process.stderr.write(`${message}\n`);
    return 2;
  }
}
