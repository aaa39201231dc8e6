/**
 * Patch Job names, and the label values that point at a node or a run. Palette names one Job per node
 * `apply-on-demand-os-patch-on-<node>`; ours carry the plan and the hash as system-upgrade-controller does
 * (`apply-<plan>-on-<node>-with-<hash>`), so a new trigger never collides with an old Job. Both must be valid DNS-1123
 * labels of at most 63 characters (the job-name label on the Pod has that limit) whatever the node is called: node names
 * are DNS-1123 subdomains of up to 253 characters (`ip-10-0-1-2.eu-central-1.compute.internal`).
 */
import { createHash } from 'node:crypto';
import type { PatchJobSpec, ScanSpec } from './port.ts';

const MAX = 63;

/** The plan name in our Job names when none is given. */
export const DEFAULT_PLAN_NAME = 'os-patch';

function dnsLabel(raw: string): string {
  return raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * Keeps a name as it is when it is already a valid label; otherwise cleans and truncates it and appends a digest of
 * the original, so that two names that clean to the same text (`a.b`, `a-b`) still get different Jobs.
 */
export function boundedName(raw: string): string {
  const clean = dnsLabel(raw);
  if (clean && clean === raw && clean.length <= MAX) return clean;
  const digest = createHash('sha256').update(raw).digest('hex').slice(0, 8);
  const head = clean.slice(0, MAX - digest.length - 1).replace(/-+$/g, '');
  return head ? `${head}-${digest}` : digest;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * A Kubernetes label value naming `raw` (a node, a run): kept as it is when valid (dots and upper case are allowed in
 * values), otherwise bounded as a name is. Put the full text in an annotation beside it when it must be read back.
 */
export function labelValue(raw: string): string {
  return raw.length <= MAX && LABEL_VALUE.test(raw) ? raw : boundedName(raw);
}

export interface JobNameOptions {
  /** Prefetch: the download-only Job, which runs before the node is cordoned. */
  downloadOnly?: boolean;
  /** Scan: the report-only Job (the agent's dry run), which runs before the node is cordoned. */
  reportOnly?: boolean;
  /** The plan's name in our own names (`apply-<plan>-on-…`); Palette's names have none. */
  plan?: string;
}

/** The name of the patch (or prefetch) Job for one node. */
export function patchJobName(mode: 'native' | 'palette', node: string, hash: string, options: JobNameOptions = {}): string {
  const { downloadOnly = false, reportOnly = false, plan = DEFAULT_PLAN_NAME } = options;
  // Palette has no scan either: our name, with the hash, so a scan never meets a patch Job.
  if (reportOnly) return boundedName(`scan-${plan}-on-${node}-with-${hash}`);
  // Palette has no prefetch, so a download-only Job always has our name (with the hash, so it never meets a patch Job).
  if (downloadOnly) return boundedName(`prefetch-${plan}-on-${node}-with-${hash}`);
  return mode === 'palette' ? boundedName(`apply-on-demand-os-patch-on-${node}`) : boundedName(`apply-${plan}-on-${node}-with-${hash}`);
}

/** The Job spec of a scan: the agent report-only (`--dry-run`) with the patch's package policy, under our scan name. */
export function scanJobSpec(spec: ScanSpec): PatchJobSpec {
  return {
    ...spec,
    agent: 'modern',
    rebootIfRequired: false,
    jobName: patchJobName(spec.mode, spec.node, spec.hash, { reportOnly: true }),
    downloadOnly: false,
    reportOnly: true,
  };
}
