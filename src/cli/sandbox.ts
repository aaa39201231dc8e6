/**
 * `patchpilot sandbox`: a scenario's simulated cluster served as a Kubernetes API on 127.0.0.1, in sped-up real time,
 * for kubectl and for `patchpilot run --kubeconfig`. It writes a kubeconfig once the server answers, prints what to do
 * with it, narrates what happens to the nodes and Jobs, and stops cleanly on SIGINT or SIGTERM.
 */
import { closeSync, mkdirSync, openSync, readSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { stringify as stringifyYaml } from 'yaml';
import { DISABLED } from '../engine/selection.ts';
import { startKubeApiServer, kubeconfig, type KubeApiServer } from '../sim/kube-api/index.ts';
import type { ChangeEvent } from '../sim/kube-api/hooks.ts';
import { ScaledClock } from '../sim/scaled-clock.ts';
import { createSandbox } from '../sim/sandbox/index.ts';
import { ApiChaos } from '../sim/kube-api/chaos.ts';
import { loadScenario, type Scenario } from '../sim/scenario.ts';
import { isProcessAlive } from '../service/holder.ts';
import { checkOutputFile } from './output-file.ts';
import { untilSignal } from './signals.ts';
import { SandboxError } from './user-error.ts';

export const DEFAULT_SANDBOX_SCENARIO = fileURLToPath(new URL('../../fixtures/scenarios/demo.yaml', import.meta.url));
export const DEFAULT_SANDBOX_KUBECONFIG = join('.patchpilot', 'sandbox.kubeconfig');
/** Ten virtual seconds per real one: a node reboots in about ten seconds, an apt lock of five minutes lasts thirty. */
export const DEFAULT_SANDBOX_SPEED = 10;

export interface SandboxOptions {
  scenario?: string;
  port?: number;
  kubeconfig?: string;
  speed?: number;
  /** Print nothing about nodes and Jobs (tests, scripts). */
  quiet?: boolean;
  /** Share of API requests failed transiently (and of watches dropped); default the scenario's apiChaos. */
  chaos?: number;
}

export interface SandboxIo {
  out: Writable;
  /** Resolves when the sandbox should stop; default: SIGINT or SIGTERM. */
  stopped?: Promise<string>;
  /** Called once the kubeconfig is written (tests). */
  onReady?: (info: { url: string; kubeconfig: string; plan: string }) => void;
}

function planPathFor(kubeconfigPath: string): string {
  return kubeconfigPath.replace(/(\.kubeconfig|\.ya?ml)?$/, '.plan.yaml');
}

/** The first line of both files the sandbox writes: it removes them when it stops, so it must know they are its own. */
const writtenBy = (pid: number) => `# written by patchpilot sandbox (pid ${pid}); removed when it stops\n`;
const WRITTEN_BY = /^# written by patchpilot sandbox \(pid (\d+)\)/;

/**
 * An output path the sandbox may write, and later delete: one that does not exist, or a file an earlier sandbox wrote
 * and left behind when it was killed. A user's own kubeconfig (`--kubeconfig ~/.kube/config`) or the files of a
 * sandbox still running are refused, never overwritten.
 */
function checkSandboxFile(path: string, option: string): void {
  checkOutputFile(path, option);
  let head: string;
  try {
    // A FIFO would block the read below until someone writes into it.
    if (!statSync(path).isFile()) throw new SandboxError(`${option} ${path} exists and is not a regular file: it is left as it is`, 'give --kubeconfig a new file path, for example --kubeconfig out/sandbox.kubeconfig');
    const fd = openSync(path, 'r');
    try {
      const buffer = Buffer.alloc(120);
      head = buffer.subarray(0, readSync(fd, buffer, 0, buffer.length, 0)).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if (err instanceof SandboxError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new SandboxError(`${option} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'give --kubeconfig a new file path, for example --kubeconfig out/sandbox.kubeconfig');
  }
  const owner = WRITTEN_BY.exec(head);
  if (!owner) {
    throw new SandboxError(`${option} ${path} already exists and was not written by patchpilot sandbox: it is left as it is`, 'give --kubeconfig a new file path, for example --kubeconfig out/sandbox.kubeconfig');
  }
  const pid = Number(owner[1]);
  if (pid !== process.pid && isProcessAlive(pid)) {
    throw new SandboxError(`${option} ${path} belongs to a sandbox that is still running (pid ${pid})`, 'stop that sandbox first, or give this one another --kubeconfig');
  }
}

/**
 * Removes the folders the sandbox created for its files (`created`, the first one mkdirSync made, and those below it
 * down to `deepest`), deepest first and each only while empty: a folder something else was put into since stays, and
 * with it the folders above it.
 */
function removeCreatedFolders(deepest: string, created: string | undefined): void {
  if (created === undefined) return;
  for (let dir = deepest; ; dir = dirname(dir)) {
    try {
      rmdirSync(dir);
    } catch {
      return;
    }
    if (dir === created || dirname(dir) === dir) return;
  }
}

export async function sandboxCommand(options: SandboxOptions, io: SandboxIo): Promise<number> {
  const file = options.scenario ?? DEFAULT_SANDBOX_SCENARIO;
  const scenario = loadScenario(file);
  const path = resolve(options.kubeconfig ?? DEFAULT_SANDBOX_KUBECONFIG);
  // Both files are written only once the server listens; checked first so a mistake starts nothing.
  checkSandboxFile(path, '--kubeconfig');
  checkSandboxFile(planPathFor(path), '--kubeconfig (its plan file beside it)');
  const speed = options.speed ?? DEFAULT_SANDBOX_SPEED;
  const clock = new ScaledClock(speed);
  const { binding, store } = createSandbox(scenario, clock, { heartbeats: true });
  const chaosRate = options.chaos ?? scenario.apiChaos ?? 0;
  let server: KubeApiServer;
  try {
    // No credentials: kubectl sends no bearer token over plain HTTP, and the sandbox listens on 127.0.0.1 only.
    server = await startKubeApiServer({ store, port: options.port ?? 0, ...(chaosRate > 0 ? { chaos: new ApiChaos({ rate: chaosRate, seed: scenario.seed }) } : {}) });
  } catch (err) {
    binding.close();
    clock.clearAll();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new SandboxError(`port ${options.port} on 127.0.0.1 is already in use`, 'choose another with --port, or leave --port out for a free one');
    throw err;
  }
  const planPath = planPathFor(path);
  const written: string[] = [];
  // A --kubeconfig in folders that do not exist gets them, as every output file of patchpilot does (the default
  // .patchpilot/ too), and they go with the files when the sandbox stops: it leaves nothing behind it made.
  let createdFolder: string | undefined;
  const removeOurFiles = () => {
    for (const file of written) rmSync(file, { force: true });
    removeCreatedFolders(dirname(path), createdFolder);
  };
  try {
    createdFolder = mkdirSync(dirname(path), { recursive: true });
    // Named before writing: a write that fails half-way (a full disk) leaves a partial file to remove too.
    written.push(path);
    writeFileSync(path, writtenBy(process.pid) + kubeconfig(server.url, undefined, `sandbox-${scenario.clusterName}`));
    // The scenario's plan, for `patchpilot run --plan`: the engine then patches the sandbox as the scenario would.
    written.push(planPath);
    writeFileSync(planPath, writtenBy(process.pid) + stringifyYaml({ ...scenario.planInput, cluster: scenario.clusterName }));
  } catch (err) {
    // The checks above cannot foresee every refusal (a read-only or special file system): stop, and leave no file.
    binding.close();
    clock.clearAll();
    await server.close();
    removeOurFiles();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    throw new SandboxError(`--kubeconfig ${path}: cannot write it and its plan file (${code})`, 'give --kubeconfig a file path in a folder you may write into, for example --kubeconfig out/sandbox.kubeconfig');
  }
  // A sandbox that dies of an error it did not expect (the process exits on an uncaught exception) still removes its
  // files: they point at a server that is gone. Only SIGKILL leaves them, for the next sandbox to take over.
  process.on('exit', removeOurFiles);
  const write = (text: string) => io.out.write(`${text}\n`);
  const shown = relative(process.cwd(), path) || path;
  const shownPlan = relative(process.cwd(), planPath) || planPath;
  write(banner(scenario, file, server.url, shown, shownPlan, speed, chaosRate));
  io.onReady?.({ url: server.url, kubeconfig: path, plan: planPath });

  const narrator = options.quiet ? null : narrate(store, clock, scenario, write);
  const timers = scheduleEvents(scenario, clock, binding.sim, write);
  const reason = await (io.stopped ?? untilSignal());
  for (const id of timers) clock.clearTimeout(id);
  narrator?.();
  binding.close();
  clock.clearAll();
  await server.close();
  process.off('exit', removeOurFiles);
  removeOurFiles();
  write(`sandbox stopped (${reason}); ${shown} and ${shownPlan} removed`);
  return 0;
}

function banner(scenario: Scenario, file: string, url: string, kubeconfigPath: string, planPath: string, speed: number, chaosRate: number): string {
  const palette = scenario.plan.mode === 'palette';
  const faults = scenario.faults.filter((f) => f.kind !== 'orchestrator-crash' && f.kind !== 'palette-stale-timestamp');
  const lines = [
    `patchpilot sandbox: cluster ${scenario.clusterName} (${scenario.nodes.length} simulated nodes, ${faults.length} fault(s) from ${relative(process.cwd(), file) || file})`,
    `  API server   ${url}   (time runs ${speed}x${chaosRate > 0 ? `; API chaos: ${Math.round(chaosRate * 100)}% of requests fail transiently` : ''})`,
    `  kubeconfig   ${kubeconfigPath}`,
    `  plan         ${planPath}   (the scenario's plan${palette ? ', Palette mode' : ''})`,
    '',
    'Try, in another terminal:',
    `  export KUBECONFIG=${kubeconfigPath}`,
    '  kubectl get nodes -w',
    `  npx patchpilot run --kubeconfig ${kubeconfigPath} --plan ${planPath} --dry-run`,
    `  npx patchpilot run --kubeconfig ${kubeconfigPath} --plan ${planPath}`,
    '  kubectl get jobs -n os-patch',
  ];
  if (palette) lines.push(`  kubectl get nodes --show-labels | grep task.cluster.spectrocloud.com`);
  if (scenario.palette) {
    // The sandbox plays a Palette-managed cluster: Palette's own task, crony Jobs and logs are there to look at.
    lines.push('  kubectl get spectrosystemtask -n os-patch', '  kubectl logs -n os-patch -l app.kubernetes.io/name=crony --tail=3', `  npx patchpilot doctor --kubeconfig ${kubeconfigPath}`);
  }
  lines.push('', 'Stop with Ctrl-C.', '');
  return lines.join('\n');
}


/** Scenario events the cluster itself can play (a node joining, an operator's label or cordon); engine commands are not. */
function scheduleEvents(scenario: Scenario, clock: ScaledClock, sim: ReturnType<typeof createSandbox>['sim'], write: (t: string) => void): number[] {
  const ids: number[] = [];
  for (const event of scenario.events) {
    if (event.kind !== 'node-added' && event.kind !== 'exclude' && event.kind !== 'cordon') continue;
    ids.push(
      clock.setTimeout(() => {
        if (event.kind === 'node-added') sim.state.addNode(event.node);
        else if (event.kind === 'exclude') sim.state.setLabel(event.node, scenario.plan.labelKey, DISABLED);
        else sim.state.cordonByOthers(event.node);
        write(`${stamp(clock)} scenario event: ${event.kind} ${typeof event.node === 'string' ? event.node : event.node.name}`);
      }, event.at),
    );
  }
  return ids;
}

function stamp(clock: ScaledClock): string {
  return new Date(clock.now()).toISOString().slice(11, 19);
}

/** One line per thing an operator would want to see happen: cordons, readiness, reboots, Jobs starting and ending. */
function narrate(store: ReturnType<typeof createSandbox>['store'], clock: ScaledClock, scenario: Scenario, write: (t: string) => void): () => void {
  const say = (text: string) => write(`${stamp(clock)} ${text}`);
  const offNodes = store.hooks.onChange('nodes', (event: ChangeEvent) => {
    if (event.type !== 'MODIFIED' || !event.oldObject) return;
    const name = event.object.metadata.name!;
    const before = nodeFacts(event.oldObject);
    const after = nodeFacts(event.object);
    if (before.unschedulable !== after.unschedulable) say(`node ${name} ${after.unschedulable ? 'cordoned' : 'uncordoned'}`);
    if (before.ready !== after.ready) say(`node ${name} ${after.ready ? 'Ready' : 'NotReady'}${after.ready && before.bootId !== after.bootId ? ' (rebooted)' : ''}`);
    const label = scenario.plan.labelKey;
    if (before.labels[label] !== after.labels[label] && after.labels[label] !== undefined) say(`node ${name} labelled ${label}=${after.labels[label]}`);
  });
  const offJobs = store.hooks.onChange('jobs', (event: ChangeEvent) => {
    const name = event.object.metadata.name!;
    if (event.type === 'ADDED') say(`job ${name} created`);
    else if (event.type === 'DELETED') say(`job ${name} deleted`);
    else {
      const before = jobState(event.oldObject);
      const after = jobState(event.object);
      if (before !== after && after !== 'running') say(`job ${name} ${after}`);
    }
  });
  return () => {
    offNodes();
    offJobs();
  };
}

function nodeFacts(node: ChangeEvent['object']) {
  const status = (node.status ?? {}) as { conditions?: Array<{ type: string; status: string }>; nodeInfo?: { bootID?: string } };
  return {
    unschedulable: (node.spec as { unschedulable?: boolean } | undefined)?.unschedulable === true,
    ready: status.conditions?.find((c) => c.type === 'Ready')?.status === 'True',
    bootId: status.nodeInfo?.bootID ?? '',
    labels: node.metadata.labels ?? {},
  };
}

function jobState(job: ChangeEvent['object'] | undefined): string {
  const conditions = ((job?.status as { conditions?: Array<{ type: string; status: string; reason?: string }> } | undefined)?.conditions ?? []).filter((c) => c.status === 'True');
  const failed = conditions.find((c) => c.type === 'Failed');
  if (failed) return `failed (${failed.reason ?? 'Failed'})`;
  if (conditions.some((c) => c.type === 'Complete')) return 'completed';
  return 'running';
}
