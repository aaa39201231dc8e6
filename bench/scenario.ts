/**
 * The benchmark's cluster, as scenario text: 3 control-plane nodes and NODES-3 workers over three zones and all five
 * Linux OSes; a random FAULT_RATE of the workers get one fault (lock contention, a kernel that needs a reboot, a slow
 * or failed rejoin, a full disk, a PDB that blocks the drain, an agent crash, an unreachable repository, API errors).
 */
import { Random } from '../src/sim/random.ts';

export function benchScenarioText(nodes: number, concurrency: number, faultRate: number): { text: string; faults: number } {
  const KINDS = [
    { kind: 'apt-lock', holdSeconds: 120 },
    { kind: 'reboot-required' },
    { kind: 'rejoin-slow', delaySeconds: 300 },
    { kind: 'rejoin-fails' },
    { kind: 'disk-full' },
    { kind: 'pdb-blocks-drain', forSeconds: 90 },
    { kind: 'agent-crash' },
    { kind: 'repo-unreachable' },
    { kind: 'api-errors', rate: 0.2 },
  ];
  const OSES = ['ubuntu-22.04', 'ubuntu-24.04', 'debian-12', 'rocky-9', 'rhel-9'];
  const random = new Random('bench');
  const workers = nodes - 3;
  const perOs = Math.ceil(workers / OSES.length);
  const faults: object[] = [];
  for (let i = 0; i < workers; i++) {
    if (!random.chance(faultRate)) continue;
    const os = OSES[Math.floor(i / perOs)]!;
    faults.push({ node: `${os.replace('.', '')}-${(i % perOs) + 1}`, ...random.pick(KINDS) });
  }
  const text = JSON.stringify({
    name: 'bench',
    seed: 1,
    cluster: {
      nodes: [
        { name: 'cp', os: 'ubuntu-22.04', role: 'control-plane', count: 3 },
        ...OSES.map((os, i) => ({ name: os.replace('.', ''), os, count: Math.max(1, Math.min(perOs, workers - i * perOs)) })),
      ],
    },
    updates: { security: ['openssl', 'curl', 'systemd'], other: ['vim'] },
    plan: { concurrency, maxFailures: nodes, retry: { attempts: 5, backoffSeconds: 5 } },
    faults,
  });
  return { text, faults: faults.length };
}
