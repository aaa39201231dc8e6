/**
 * The scenario's `palette:` key and the fault kinds that shape what a Palette-managed cluster shows (src/sim/sandbox/
 * palette.ts plays them). They cover the seed's "Nothing Happens After Clicking On-Demand Update" table and the crony
 * log failures its guide quotes. They change only Palette's own objects in the sandbox (its SpectroSystemTask, crony
 * Jobs, pods and logs, its node labels and annotations); patchpilot's simulator and engine never see them.
 */
import { z } from 'zod';
import { durationMs, secondsParam } from './duration.ts';

export const PALETTE_FAULT_KINDS = [
  /** Palette's task is applying on `node` (its crony Job running since `sinceSeconds`): "Previous patch still in progress". */
  'palette-task-in-progress',
  /** The crony pod on `node` is in CrashLoopBackOff: "Cluster agent issues". */
  'palette-crony-crashloop',
  /** The Palette agent pods (cluster-management-agent, palette-controller-manager) are not Ready: "Cluster agent issues". */
  'palette-agent-not-ready',
  /** No node carries the OS label Palette's task selects on: "No matching nodes". */
  'palette-no-matching-nodes',
  /** The crony Job on `node` failed with `gpg: keyserver receive failed: End of file`. */
  'palette-keyserver-eof',
  /** The crony Job on `node` waits for another apt process's lock (the seed's "Patching Seems Stuck"). */
  'palette-apt-lock',
  /** The crony Job on `node` installed a kernel and left `/var/run/reboot-required` (Reboot if required off). */
  'palette-reboot-pending',
] as const;
export type PaletteFaultKind = (typeof PALETTE_FAULT_KINDS)[number];

/** The faults that say where Palette's one-node-at-a-time run stopped: a scenario may have one of them. */
export const PALETTE_RUN_STOPPERS: ReadonlySet<string> = new Set(['palette-task-in-progress', 'palette-crony-crashloop', 'palette-keyserver-eof', 'palette-apt-lock']);

/** The fault schemas, sharing the scenario's `node`/`at` fields. */
export function paletteFaultSchemas<C extends Record<string, z.ZodType>>(common: C) {
  return [
    z.strictObject({ ...common, kind: z.literal('palette-task-in-progress'), sinceSeconds: secondsParam.default(600) }),
    z.strictObject({ ...common, kind: z.literal('palette-crony-crashloop'), restarts: z.number().int().min(1).max(99).default(7) }),
    z.strictObject({ ...common, kind: z.literal('palette-agent-not-ready') }),
    z.strictObject({ ...common, kind: z.literal('palette-no-matching-nodes') }),
    z.strictObject({ ...common, kind: z.literal('palette-keyserver-eof') }),
    z.strictObject({ ...common, kind: z.literal('palette-apt-lock'), sinceSeconds: secondsParam.default(5400) }),
    z.strictObject({ ...common, kind: z.literal('palette-reboot-pending') }),
  ] as const;
}

export const paletteScenarioSchema = z.strictObject({
  /** Serve Palette's objects: without it the sandbox is a cluster Palette does not manage. */
  managed: z.boolean(),
  /** The cluster's uid in Palette (24 hex digits): names the agent's `cluster-<uid>` namespace. */
  clusterUid: z.string().regex(/^[0-9a-f]{24}$/, 'must be 24 lower-case hex digits, as Palette uids are').default('6851ddd04b1b188784c06291'),
  /** `completed`: an On-Demand Update ran `lastRunAgo` before the sandbox started; `none`: never (no task yet). */
  lastRun: z.enum(['completed', 'none']).default('completed'),
  lastRunAgo: durationMs.default(2 * 3600 * 1000),
});
export type PaletteScenario = z.output<typeof paletteScenarioSchema>;
