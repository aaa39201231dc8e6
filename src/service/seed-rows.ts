/**
 * The rows and sections of the seed's troubleshooting guide ("Palette On-Demand OS Patching Guide") that doctor's
 * findings answer, so that a reader can find each finding's cause and the guide's own fix. One place, quoted as the
 * guide writes them.
 */
const NOTHING = 'Nothing Happens After Clicking On-Demand Update';

export const SEED_ROWS = {
  inProgress: `${NOTHING} › "Previous patch still in progress" (wait for current patch to complete)`,
  timestamp: `${NOTHING} › "Timestamp stuck in the past" (clear the timestamp and retry)`,
  marked: `${NOTHING} › "Nodes already marked as patched" (reset the patch tracking labels)`,
  agent: `${NOTHING} › "Cluster agent issues" (check cluster health and agent connectivity)`,
  noMatch: `${NOTHING} › "No matching nodes" (check that nodes have the required OS labels)`,
  keyserver: 'Patching Fails with GPG Keyserver Errors',
  aptLock: 'Patching Seems Stuck › "Package lock - is another apt/yum process running?"',
  rebootPending: 'How On-Demand Patching Works › "Reboots nodes only when kernel updates require it"',
  jobs: 'Patching Jobs and Status › "Common Job states"',
  logs: 'Monitoring Progress › "Patching logs" (kubectl logs -n os-patch -l app.kubernetes.io/name=crony)',
  nodeStatus: 'Monitoring Progress › "Node patch status" (node annotations matching spectronodetask)',
  monitoring: 'Monitoring Progress › "Via kubectl (on the target cluster)"',
  /** Not a row of the guide: patchpilot's own bookkeeping of the cordons it made. */
  ownCordon: "not in the guide: a cordon patchpilot made and did not lift (the guide's manual steps end with kubectl uncordon)",
} as const;
