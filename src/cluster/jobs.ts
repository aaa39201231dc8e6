/**
 * Patch Job names. Palette names one Job per node `apply-on-demand-os-patch-on-<node>`; ours carry the hash as
 * system-upgrade-controller does, so a new trigger never collides with an old Job. Both must be valid DNS-1123 labels
 * of at most 63 characters (the job-name label on the Pod has that limit) whatever the node is called.
 */
import { createHash } from 'node:crypto';

const MAX = 63;

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
  if (clean === raw && clean.length <= MAX) return clean;
  const digest = createHash('sha256').update(raw).digest('hex').slice(0, 8);
  const head = clean.slice(0, MAX - digest.length - 1).replace(/-+$/g, '');
  return head ? `${head}-${digest}` : digest;
}

export function patchJobName(mode: 'native' | 'palette', node: string, hash: string, downloadOnly = false): string {
  if (downloadOnly) return boundedName(`prefetch-os-patch-on-${node}-with-${hash}`);
  return mode === 'palette' ? boundedName(`apply-on-demand-os-patch-on-${node}`) : boundedName(`apply-os-patch-on-${node}-with-${hash}`);
}
