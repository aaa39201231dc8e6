/**
 * Orchestrators racing for one cluster, as real processes: `patchpilot sandbox` in a process of its own, serving a
 * simulated cluster over HTTP, and several `patchpilot run --wait` processes on the same trigger, some sharing a
 * database. A seeded chaos monkey SIGKILLs the lease holder, or SIGSTOPs it until another process has taken the
 * cluster over (longer than the lease) and then lets it wake. The invariants are read from a watch of the API server
 * (client-node's Watch on Nodes, Jobs and the Lease), never from what the orchestrators say about themselves.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CoreV1Api, KubeConfig, Watch, type V1Job, type V1Lease, type V1Node } from '@kubernetes/client-node';
import { expect } from 'vitest';
import { randomInt, seededRandom } from '../helpers/random.ts';
import { until } from '../helpers/until.ts';

const BIN = resolve(import.meta.dirname, '../../bin/patchpilot.js');
export const LABEL_KEY = 'patchpilot.io/os-patch';
const CORDONED_BY = 'patchpilot.io/cordoned-by';
const CORDON_GENERATION = 'patchpilot.io/cordon-generation';

export interface RaceOptions {
  seed: number;
  /** Orchestrator processes started together (each killed one is replaced by a new process on its database). */
  orchestrators: number;
  /** Databases they share, round robin: 1 = all on one database, `orchestrators` = each its own. */
  databases: number;
  concurrency: number;
  workers: number;
  leaseSeconds: number;
  /** Chaos budget for the round. */
  kills: number;
  pauses: number;
}

export interface RaceFigures {
  seed: number;
  processes: number;
  kills: number;
  pauses: number;
  takeovers: number;
  maxInFlight: number;
  maxControlPlanesInFlight: number;
  patchJobs: number;
  /** Per node, the patch Jobs created for the trigger's hash (by uid, as the watch saw them). */
  jobsPerNode: Record<string, number>;
  cordonedAtEnd: string[];
  /** Every node of the cluster (each has updates, so each must end with exactly one patch Job). */
  nodes: string[];
  unpatched: string[];
  exitCodes: (number | string)[];
  auditProblems: string[];
  /** Watches that could not resume where they stopped: the round's view of the cluster has holes (must be 0). */
  watchGaps: number;
  /** Cordons and patch Jobs written under a lease generation after a newer one was granted (a fence that leaked). */
  staleWrites: string[];
  wallMs: number;
}

interface Orchestrator {
  child: ChildProcess;
  db: string;
  output: string;
  exited: Promise<number | string>;
  done: boolean;
}

function scenario(options: RaceOptions): string {
  return [
    'name: race',
    'description: one control-plane node and some workers, patched by racing orchestrators',
    `seed: ${options.seed}`,
    'cluster:',
    '  nodes:',
    '    - { name: cp-1, os: ubuntu-22.04, role: control-plane }',
    `    - { name: worker, os: ubuntu-22.04, count: ${options.workers} }`,
    'updates: { security: [openssl, curl] }',
    `plan: { concurrency: ${options.concurrency} }`,
    '',
  ].join('\n');
}

/** Nodes, patch Jobs and the Lease, as a watch delivers them; every invariant is checked on every event. */
export class ClusterWatch {
  readonly nodes = new Map<string, V1Node>();
  readonly patchJobs = new Map<string, Set<string>>();
  maxInFlight = 0;
  maxControlPlanesInFlight = 0;
  holders: string[] = [];
  cordonEvents = 0;
  readonly #controllers: AbortController[] = [];
  readonly #onCordon: (() => void)[] = [];
  readonly kc: KubeConfig;

  constructor(kc: KubeConfig) {
    this.kc = kc;
  }

  async start(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    const list = await core.listNode();
    for (const node of list.items) this.#node('ADDED', node);
    await Promise.all([
      this.#watch('/api/v1/nodes', list.metadata?.resourceVersion ?? '', (phase, obj) => this.#node(phase, obj as V1Node)),
      this.#watch('/apis/batch/v1/namespaces/os-patch/jobs', '', (phase, obj) => this.#job(phase, obj as V1Job)),
      this.#watch('/apis/coordination.k8s.io/v1/namespaces/os-patch/leases', '', (_phase, obj) => this.#lease(obj as V1Lease)),
    ]);
  }

  onCordon(fn: () => void): void {
    this.#onCordon.push(fn);
  }

  stop(): void {
    for (const c of this.#controllers) c.abort();
  }

  cordonedByUs(): V1Node[] {
    return [...this.nodes.values()].filter((n) => n.spec?.unschedulable === true && n.metadata?.annotations?.[CORDONED_BY] !== undefined);
  }

  get holder(): string {
    return this.holders.at(-1) ?? '';
  }

  /**
   * Watches `path` from `resourceVersion`, for the whole round in one request where the server allows it (a day of
   * the sandbox's time), with bookmarks keeping our resourceVersion fresh. Should the server end it anyway, it goes
   * on from the last version seen; should that version be gone (410), the round has a gap in what it saw, and the
   * gap is counted: the invariants demand none.
   */
  async #watch(path: string, resourceVersion: string, handle: (phase: string, obj: unknown) => void): Promise<void> {
    const controller = new AbortController();
    this.#controllers.push(controller);
    let from = resourceVersion;
    const run = async (): Promise<void> => {
      if (controller.signal.aborted) return;
      const ended = new Promise<void>((done) => {
        void new Watch(this.kc)
          .watch(
            path,
            { ...(from ? { resourceVersion: from } : {}), allowWatchBookmarks: true, timeoutSeconds: 86_400 },
            (phase, obj: { metadata?: { resourceVersion?: string }; code?: number }) => {
              if (phase === 'ERROR') {
                this.watchGaps += 1;
                from = '';
                return;
              }
              from = obj.metadata?.resourceVersion ?? from;
              if (phase !== 'BOOKMARK') handle(phase, obj);
            },
            () => done(),
          )
          .then((c) => controller.signal.addEventListener('abort', () => c.abort()), () => done());
      });
      await ended;
      if (!controller.signal.aborted) setTimeout(() => void run(), 50);
    };
    void run();
  }

  /** Times a watch could not resume where it stopped (410 Gone): events may have been missed. */
  watchGaps = 0;

  #node(phase: string, node: V1Node): void {
    const name = node.metadata?.name ?? '';
    const before = this.nodes.get(name);
    if (phase === 'DELETED') this.nodes.delete(name);
    else this.nodes.set(name, node);
    const cordoned = this.cordonedByUs();
    this.maxInFlight = Math.max(this.maxInFlight, cordoned.length);
    const controlPlanes = cordoned.filter((n) => n.metadata?.labels?.['node-role.kubernetes.io/control-plane'] !== undefined).length;
    this.maxControlPlanesInFlight = Math.max(this.maxControlPlanesInFlight, controlPlanes);
    const wasCordoned = before?.spec?.unschedulable === true;
    const stamp = node.metadata?.annotations?.[CORDON_GENERATION];
    if (node.spec?.unschedulable === true && (!wasCordoned || stamp !== before?.metadata?.annotations?.[CORDON_GENERATION])) {
      this.#checkFence(`cordon of ${name}`, stamp, node.metadata?.resourceVersion);
    }
    if (!wasCordoned && node.spec?.unschedulable === true) {
      this.cordonEvents += 1;
      for (const fn of this.#onCordon) fn();
    }
  }

  #job(phase: string, job: V1Job): void {
    if (phase === 'ADDED') this.#checkFence(`Job ${job.metadata?.name}`, job.metadata?.labels?.['patchpilot.io/lease-generation'], job.metadata?.resourceVersion);
    if (job.metadata?.labels?.['patchpilot.io/action'] !== 'patch') return;
    const node = job.metadata.labels['patchpilot.io/node'] ?? '?';
    const key = `${node}@${job.metadata.labels['patchpilot.io/hash'] ?? '?'}`;
    const uids = this.patchJobs.get(key) ?? new Set<string>();
    uids.add(job.metadata.uid ?? '');
    this.patchJobs.set(key, uids);
  }

  /** Changes of holder without a release in between: a holder that died or was paused, taken over after expiry. */
  takeovers = 0;
  #released = true;

  /** When (resourceVersion: the API server's one global order) each lease generation began. */
  readonly #generations: { rv: number; generation: number }[] = [];
  /** Cordons and patch Jobs stamped with a lease generation older than one already granted before they were written. */
  readonly staleWrites: string[] = [];

  /** The newest generation granted before the change at `rv`. */
  #generationBefore(rv: number): number {
    let newest = -1;
    for (const g of this.#generations) if (g.rv < rv) newest = Math.max(newest, g.generation);
    return newest;
  }

  /** A write stamped `generation` at `rv`, by a holder that had already lost the cluster then? */
  #checkFence(what: string, generation: string | undefined, rv: string | undefined): void {
    if (generation === undefined || rv === undefined) return;
    const newer = this.#generationBefore(Number(rv));
    if (Number(generation) < newer) this.staleWrites.push(`${what} under generation ${generation} after generation ${newer} was granted`);
  }

  #lease(lease: V1Lease): void {
    const transitions = lease.spec?.leaseTransitions;
    if (typeof transitions === 'number' && !this.#generations.some((g) => g.generation === transitions)) {
      this.#generations.push({ rv: Number(lease.metadata?.resourceVersion ?? 0), generation: transitions });
    }
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder === '') this.#released = true;
    else if (holder !== this.holder) {
      if (!this.#released) this.takeovers += 1;
      this.holders.push(holder);
      this.#released = false;
    }
  }
}

function pidOf(holder: string): number | null {
  const match = /^patchpilot\/[^/]+\/(\d+)\//.exec(holder);
  return match ? Number(match[1]) : null;
}

export async function raceRound(dir: string, options: RaceOptions): Promise<RaceFigures> {
  const startedAt = Date.now();
  const random = seededRandom(options.seed);
  const scenarioFile = join(dir, 'race.yaml');
  writeFileSync(scenarioFile, scenario(options));
  const kubeconfig = join(dir, 'race.kubeconfig');
  const env = { ...process.env, NO_COLOR: '1' };
  const sandbox = spawn(process.execPath, [BIN, 'sandbox', '--scenario', scenarioFile, '--kubeconfig', kubeconfig, '--speed', '300', '--quiet'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let sandboxErr = '';
  sandbox.stderr?.on('data', (c: Buffer) => (sandboxErr += c.toString()));
  const orchestrators: Orchestrator[] = [];
  const watch: { current: ClusterWatch | null } = { current: null };
  try {
    // Written, not just created: the file can be seen empty for a moment.
    const kc = new KubeConfig();
    await until(
      'the sandbox to write its kubeconfig',
      () => {
        if (!existsSync(kubeconfig)) return false;
        try {
          kc.loadFromFile(kubeconfig);
          return kc.getCurrentCluster() !== null;
        } catch {
          return false;
        }
      },
      { context: () => sandboxErr, giveUpIf: () => (sandbox.exitCode !== null ? `sandbox exited ${sandbox.exitCode}` : undefined) },
    );
    const cluster = new ClusterWatch(kc);
    watch.current = cluster;
    await cluster.start();
    const plan = kubeconfig.replace(/\.kubeconfig$/, '.plan.yaml');
    const trigger = `race-${options.seed}`;

    const launch = (db: string): Orchestrator => {
      const args = [BIN, 'run', '--kubeconfig', kubeconfig, '--plan', plan, '--trigger', trigger, '--db', db, '--lease-seconds', String(options.leaseSeconds), '--wait'];
      const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const o: Orchestrator = { child, db, output: '', exited: Promise.resolve(0), done: false };
      child.stdout?.on('data', (c: Buffer) => (o.output += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (o.output += c.toString()));
      o.exited = new Promise((done) =>
        child.on('exit', (code, signal) => {
          o.done = true;
          // Kept beside the databases: a failing round's directory tells what each process saw.
          writeFileSync(join(dir, `orchestrator-${child.pid}.log`), `${args.join(' ')}\nexit ${code ?? signal}\n${o.output}`);
          done(code ?? signal ?? 'unknown');
        }),
      );
      orchestrators.push(o);
      return o;
    };
    for (let i = 0; i < options.orchestrators; i++) launch(join(dir, `db-${i % options.databases}.db`));

    // Chaos, triggered by what the watch sees (a node just cordoned: its holder is mid-node), never by a timer.
    let kills = 0;
    let pauses = 0;
    let chaos: Promise<void> = Promise.resolve();
    const byPid = (pid: number | null) => orchestrators.find((o) => o.child.pid === pid && !o.done);
    cluster.onCordon(() => {
      chaos = chaos.then(async () => {
        const victim = byPid(pidOf(cluster.holder));
        if (!victim) return;
        const roll = random();
        if (kills < options.kills && roll < 0.5) {
          kills += 1;
          victim.child.kill('SIGKILL');
          await victim.exited;
          // A replacement on the same database, as a restarted Deployment pod or a second operator would be.
          launch(victim.db);
        } else if (pauses < options.pauses && roll >= 0.5) {
          pauses += 1;
          const holder = cluster.holder;
          victim.child.kill('SIGSTOP');
          const alive = () => orchestrators.some((o) => o !== victim && !o.done);
          // Paused until another process holds the cluster (which takes longer than the lease), or nobody is left to.
          await until('another orchestrator to take the cluster over from a paused holder', () => cluster.holder !== holder || !alive(), { timeoutMs: 120_000 });
          victim.child.kill('SIGCONT');
        }
      });
    });

    await until('every orchestrator to exit', () => orchestrators.every((o) => o.done), {
      timeoutMs: 240_000,
      context: () => orchestrators.map((o) => `--- pid ${o.child.pid} (${o.db})\n${o.output.slice(-1500)}`).join('\n'),
    });
    await chaos;
    // The cluster as the watch saw it last: give the watch a moment to deliver the final events (observed, not timed).
    const linux = [...cluster.nodes.keys()];
    await until('the watch to see every node labelled and none cordoned', () => linux.every((n) => cluster.nodes.get(n)?.metadata?.labels?.[LABEL_KEY]) && cluster.cordonedByUs().length === 0, {
      timeoutMs: 5000,
    }).catch(() => undefined);

    const hashes = new Set([...cluster.nodes.values()].map((n) => n.metadata?.labels?.[LABEL_KEY]).filter(Boolean));
    const jobsPerNode: Record<string, number> = {};
    for (const [key, uids] of cluster.patchJobs) {
      const [node, hash] = key.split('@') as [string, string];
      if (hashes.has(hash)) jobsPerNode[node] = uids.size;
    }
    const databases = [...new Set(orchestrators.map((o) => o.db))];
    const auditProblems = databases.flatMap((db) => {
      const verify = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--db', db], { encoding: 'utf8', env });
      return verify.status === 0 ? [] : [`${db}: ${verify.stdout}${verify.stderr}`];
    });
    return {
      seed: options.seed,
      processes: orchestrators.length,
      kills,
      pauses,
      takeovers: cluster.takeovers,
      maxInFlight: cluster.maxInFlight,
      maxControlPlanesInFlight: cluster.maxControlPlanesInFlight,
      patchJobs: Object.values(jobsPerNode).reduce((a, b) => a + b, 0),
      jobsPerNode,
      cordonedAtEnd: cluster.cordonedByUs().map((n) => n.metadata?.name ?? ''),
      nodes: linux,
      unpatched: linux.filter((n) => !cluster.nodes.get(n)?.metadata?.labels?.[LABEL_KEY]),
      exitCodes: await Promise.all(orchestrators.map((o) => o.exited)),
      auditProblems,
      watchGaps: cluster.watchGaps,
      staleWrites: cluster.staleWrites,
      wallMs: Date.now() - startedAt,
    };
  } finally {
    watch.current?.stop();
    for (const o of orchestrators) {
      if (!o.done) {
        o.child.kill('SIGCONT');
        o.child.kill('SIGKILL');
      }
    }
    sandbox.kill('SIGTERM');
    await new Promise((done) => (sandbox.exitCode !== null ? done(null) : sandbox.on('exit', done)));
  }
}

/** The round's options for a seed: orchestrator count, shared or separate databases and chaos, all from the seed. */
export function roundOptions(seed: number): RaceOptions {
  const random = seededRandom(seed * 7919 + 1);
  const orchestrators = randomInt(random, 3, 4);
  return {
    seed,
    orchestrators,
    databases: [1, 2, orchestrators][randomInt(random, 0, 2)]!,
    concurrency: randomInt(random, 1, 2),
    workers: 3,
    leaseSeconds: 2,
    kills: randomInt(random, 0, 2),
    pauses: randomInt(random, 0, 1),
  };
}

export function describeFigures(all: RaceFigures[]): string {
  const sum = (f: (r: RaceFigures) => number) => all.reduce((a, r) => a + f(r), 0);
  return (
    `race: ${all.length} round(s), ${sum((r) => r.processes)} orchestrator processes, ${sum((r) => r.kills)} SIGKILLs, ` +
    `${sum((r) => r.pauses)} SIGSTOP/SIGCONT pauses, ${sum((r) => r.takeovers)} takeovers, max in flight ${Math.max(...all.map((r) => r.maxInFlight))}, ` +
    `max control planes in flight ${Math.max(...all.map((r) => r.maxControlPlanesInFlight))}, ${sum((r) => r.patchJobs)} patch Jobs, ` +
    `${Math.round(sum((r) => r.wallMs) / 1000)} s`
  );
}

/** The invariants of a round, each failure showing the round's figures. */
export function expectInvariants(figures: RaceFigures, concurrency: number): void {
  const context = JSON.stringify(figures);
  // What the watch saw is complete: without this the other figures could be short.
  expect(figures.watchGaps, context).toBe(0);
  expect(figures.maxInFlight, context).toBeLessThanOrEqual(concurrency);
  expect(figures.staleWrites, context).toEqual([]);
  expect(figures.maxControlPlanesInFlight, context).toBeLessThanOrEqual(1);
  expect(figures.nodes.map((n) => `${n}: ${figures.jobsPerNode[n] ?? 0}`), context).toEqual(figures.nodes.map((n) => `${n}: 1`));
  expect(figures.cordonedAtEnd, context).toEqual([]);
  expect(figures.unpatched, context).toEqual([]);
  expect(figures.auditProblems, context).toEqual([]);
  // Every orchestrator finished (0), was refused or stopped for another holder (3), or was killed by the monkey.
  expect(figures.exitCodes.every((code) => code === 0 || code === 3 || code === 'SIGKILL'), context).toBe(true);
}
