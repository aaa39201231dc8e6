import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/sim/duration.ts';
import { runScenario } from '../../src/sim/runner.ts';
import { loadScenario, parseScenario, ScenarioError } from '../../src/sim/scenario.ts';
import { makeScratchDir } from '../helpers/scratch.ts';

const base = `name: t
cluster:
  nodes:
    - { name: cp-1, os: ubuntu-22.04, role: control-plane }
    - { name: worker, os: rocky-9, count: 3 }
`;

function problems(text: string, source = 'x.yaml'): string[] {
  try {
    parseScenario(text, source);
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return [...(err as ScenarioError).problems];
  }
  throw new Error('expected the scenario to be refused');
}

describe('scenario loader', () => {
  it('expands counts, defaults one on-demand trigger and parses the plan', () => {
    const s = parseScenario(`${base}plan: { concurrency: 2 }\n`);
    expect(s.nodes.map((n) => n.name)).toEqual(['cp-1', 'worker-1', 'worker-2', 'worker-3']);
    expect(s.nodes.map((n) => n.zone)).toEqual(['zone-a', 'zone-b', 'zone-c', 'zone-a']);
    expect(s.triggers).toEqual([{ at: 0, kind: 'on-demand', by: 'sim', id: 't1' }]);
    expect(s.plan.concurrency).toBe(2);
    expect(s.plan.cluster).toBe('t');
  });

  it('names the file, line and field of an unknown fault kind', () => {
    const p = problems(`${base}faults:\n  - { node: worker-1, kind: apt-lock }\n  - { node: worker-2, kind: cosmic-ray }\n`);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^x\.yaml:8: faults\[1\]\.kind: unknown fault kind; known kinds: apt-lock, /);
  });

  it('names a fault on a node that does not exist, with the nodes there are', () => {
    const p = problems(`${base}faults:\n  - { node: worker-9, kind: disk-full }\n`);
    expect(p).toEqual(['x.yaml:7: faults[0].node: no node named "worker-9" (nodes: cp-1, worker-1, worker-2, worker-3)']);
  });

  it('refuses a fault that could never strike in its scenario (the scenario passed, testing nothing)', () => {
    const p = problems(
      `${base}updates: { security: [openssl, curl] }\nfaults:\n  - { node: worker-1, kind: reboot-required, package: zzz }\n  - { node: worker-2, kind: postinst-fails, package: nonexistent }\n  - { kind: palette-stale-timestamp }\n`,
    );
    expect(p).toEqual([
      'x.yaml:8: faults[0].package: "zzz": the simulated node needs a reboot for a kernel update only (kernel, linux-image, linux-image-generic, linux-image-amd64); leave package out',
      'x.yaml:9: faults[1].package: "nonexistent" is not an update worker-2 is offered (openssl, curl): its postinst would never run',
      'x.yaml:10: faults[2].kind: a palette-stale-timestamp fault needs plan.mode: palette (only Palette\'s On-Demand timestamp can be stuck)',
    ]);
    // The same faults where they can strike are taken.
    expect(() => parseScenario(`${base}updates: { security: [openssl, curl] }\nplan: { mode: palette }\nfaults:\n  - { node: worker-1, kind: reboot-required, package: kernel }\n  - { node: worker-2, kind: postinst-fails, package: curl }\n  - { kind: palette-stale-timestamp }\n`)).not.toThrow();
  });

  it('a run longer than the simulator looks ahead says how far it looked (it said "after 0 more virtual days")', async () => {
    const scenario = parseScenario(
      `${base}plan: { readyTimeoutSeconds: 8640000 }\nfaults:\n  - { node: worker-1, kind: reboot-required }\n  - { node: worker-1, kind: rejoin-slow, delaySeconds: 8000000 }\n`,
    );
    await expect(runScenario(scenario, { horizonMs: 2 * 86_400_000 })).rejects.toThrow(/^the scenario has not finished within the simulator's 2 virtual days \(a plan timeout longer than that\?\): /);
  });

  it('refuses duplicate node names, including ones made by count', () => {
    const p = problems(`name: t\ncluster:\n  nodes:\n    - { name: worker, os: rocky-9, count: 2 }\n    - { name: worker-2, os: debian-12 }\n`);
    expect(p).toEqual(['x.yaml:5: cluster.nodes[1].name: duplicate node name "worker-2" (also cluster.nodes[0].name)']);
  });

  it('refuses negative and malformed durations and parameters', () => {
    const p = problems(`${base}faults:\n  - { node: worker-1, kind: apt-lock, holdSeconds: -5 }\n  - { node: worker-2, kind: rejoin-fails, at: -2h }\n  - { node: worker-3, kind: rejoin-fails, at: soon }\n`);
    expect(p).toEqual([
      'x.yaml:7: faults[0].holdSeconds: must not be negative',
      'x.yaml:8: faults[1].at: must not be negative',
      'x.yaml:9: faults[2].at: "soon" is not a duration (write e.g. 90s, 30m, 2h, 1h30m)',
    ]);
  });

  it('reports YAML syntax errors with their line', () => {
    const p = problems(`${base}faults:\n  - { node: worker-1, kind: apt-lock\nplan: {}\n`);
    expect(p[0]).toMatch(/^x\.yaml:\d+: YAML syntax: /);
  });

  it('names unknown fields and unknown plan keys', () => {
    const p = problems(`${base}plan: { concurency: 2 }\nexpected: {}\n`);
    expect(p).toContain('x.yaml:7: expected: unknown field(s) "expected"');
    expect(p.some((m) => m.startsWith('x.yaml:6: plan') && m.includes('"concurency"'))).toBe(true);
  });

  it('needs one expectation per on-demand trigger', () => {
    const p = problems(`${base}triggers:\n  - { at: 0s, kind: on-demand, id: a }\n  - { at: 1h, kind: on-demand, id: a }\nexpect: { outcome: succeeded }\n`);
    expect(p).toEqual(['x.yaml:9: expect: 1 expectation(s) for 2 on-demand trigger(s): give one per trigger, in order']);
  });

  it('names the key of every bad rollout-safety value, in the plan and in the new faults', () => {
    const p = problems(
      `${base}plan: { scanFirst: maybe, concurrency: "120%", maxFailures: "x%", healthGate: { maxNotReady: -1 }, canary: { nodes: -2 }, soakSeconds: -1, blockers: { podSelector: "a in (", prometheus: { url: "ftp://x", alertFilter: "[" } } }
` +
        `faults:
  - { kind: alert-firing, name: "not an alert!" }
  - { kind: blocking-pod, labels: {} }
  - { kind: alert-firing, name: Up, forSeconds: -5 }
`,
    );
    for (const key of [
      'plan.scanFirst',
      'plan.concurrency',
      'plan.maxFailures',
      'plan.healthGate.maxNotReady',
      'plan.canary.nodes',
      'plan.soakSeconds',
      'plan.blockers.podSelector',
      'plan.blockers.prometheus.url',
      'plan.blockers.prometheus.alertFilter',
      'faults[0].name',
      'faults[1].labels',
      'faults[2].forSeconds',
    ]) {
      expect(p.some((m) => m.includes(`: ${key}:`) || m.includes(` ${key}:`)), `${key} in\n${p.join('\n')}`).toBe(true);
    }
  });

  it('counts one run per node joining under an on-boot plan', () => {
    const p = problems(`${base}plan: { trigger: { kind: on-boot } }
events:
  - { at: 1h, kind: node-added, node: { name: new-1, os: ubuntu-24.04 } }
expect: { outcome: succeeded }
`);
    expect(p).toEqual([
      "x.yaml:9: expect: 1 expectation(s) for 2 run(s) (the on-demand triggers', then one per node joining under the on-boot plan): give one per run, in order",
    ]);
  });

  it('refuses a node fault without a node, and a node list in expect naming a stranger', () => {
    const p = problems(`${base}faults:\n  - { kind: disk-full }\nexpect: { patched: [cp-1, nobody] }\n`);
    expect(p).toEqual(['x.yaml:7: faults[0]: a disk-full fault needs a "node"', 'x.yaml:8: expect.patched[1]: no node named "nobody" (nodes: cp-1, worker-1, worker-2, worker-3)']);
  });

  it('says clearly when the file is missing or not a mapping', () => {
    expect(() => loadScenario('/nonexistent/s.yaml')).toThrow(/\/nonexistent\/s\.yaml: does not exist/);
    const dir = makeScratchDir('loader');
    const file = join(dir, 'list.yaml');
    writeFileSync(file, '- a\n- b\n');
    expect(() => loadScenario(file)).toThrow(/the file must be a YAML mapping/);
  });
});

describe('durations', () => {
  it('reads units, combinations and bare seconds', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('2d')).toBe(172_800_000);
    expect(parseDuration(12)).toBe(12_000);
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration('1x')).toMatch(/not a duration/);
    expect(parseDuration(-1)).toBe('must not be negative');
  });
});
