/** The scenario's `palette:` key and palette-* fault kinds: what the loader accepts, and one clear line for each mistake. */
import { describe, expect, it } from 'vitest';
import { parseScenario, ScenarioError } from '../../src/sim/scenario.ts';

const base = `name: t
cluster:
  nodes:
    - { name: cp-1, os: ubuntu-22.04, role: control-plane }
    - { name: worker, os: ubuntu-22.04, count: 2 }
`;

function problems(text: string): string[] {
  try {
    parseScenario(text, 'p.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return [...(err as ScenarioError).problems];
  }
  throw new Error('expected the scenario to be refused');
}

describe('palette scenarios', () => {
  it('accepts palette: { managed: true } with defaults, and every palette fault kind', () => {
    const s = parseScenario(`${base}palette: { managed: true }\nfaults:\n  - { kind: palette-task-in-progress, node: worker-1 }\n  - { kind: palette-agent-not-ready }\n  - { kind: palette-no-matching-nodes }\n  - { kind: palette-reboot-pending, node: cp-1 }\n`);
    expect(s.palette).toEqual({ managed: true, clusterUid: '6851ddd04b1b188784c06291', lastRun: 'completed', lastRunAgo: 7_200_000 });
    expect(s.faults.map((f) => f.kind)).toEqual(['palette-task-in-progress', 'palette-agent-not-ready', 'palette-no-matching-nodes', 'palette-reboot-pending']);
    expect(s.faults[0]).toMatchObject({ sinceSeconds: 600 });
    for (const kind of ['palette-crony-crashloop', 'palette-keyserver-eof', 'palette-apt-lock']) {
      expect(parseScenario(`${base}palette: { managed: true }\nfaults: [{ kind: ${kind}, node: worker-2 }]\n`).faults[0]!.kind).toBe(kind);
    }
    expect(parseScenario(`${base}palette: { managed: false }\n`).palette).toBeNull();
    expect(parseScenario(base).palette).toBeNull();
  });

  it('a palette fault without a Palette-managed cluster names the line and the key to add', () => {
    expect(problems(`${base}faults:\n  - { kind: palette-keyserver-eof, node: worker-1 }\n`)).toEqual([
      'p.yaml:7: faults[0].kind: a palette-keyserver-eof fault needs a Palette-managed cluster: add "palette: { managed: true }" to the scenario',
    ]);
  });

  it('a node fault without a node, or with an unknown one', () => {
    expect(problems(`${base}palette: { managed: true }\nfaults:\n  - { kind: palette-apt-lock }\n`)).toEqual(['p.yaml:8: faults[0]: a palette-apt-lock fault needs a "node"']);
    expect(problems(`${base}palette: { managed: true }\nfaults:\n  - { kind: palette-crony-crashloop, node: worker-9 }\n`)[0]).toBe('p.yaml:8: faults[0].node: no node named "worker-9" (nodes: cp-1, worker-1, worker-2)');
  });

  it('Palette\'s run stops at one node: two stoppers, or a reboot pending where it stopped, are refused', () => {
    expect(problems(`${base}palette: { managed: true }\nfaults:\n  - { kind: palette-apt-lock, node: worker-1 }\n  - { kind: palette-keyserver-eof, node: worker-2 }\n`)).toEqual([
      'p.yaml:9: faults[1]: palette-apt-lock on worker-1 and palette-keyserver-eof on worker-2: Palette patches one node at a time, so its run stops at one node; keep one of them',
    ]);
    expect(problems(`${base}palette: { managed: true }\nfaults:\n  - { kind: palette-apt-lock, node: worker-1 }\n  - { kind: palette-reboot-pending, node: worker-1 }\n`)).toEqual([
      'p.yaml:9: faults[1].node: palette-reboot-pending on worker-1, where Palette\'s run stopped (palette-apt-lock): a reboot is pending only on a node whose Job completed',
    ]);
  });

  it('lastRun none leaves nothing for a run fault; bad values name their field', () => {
    expect(problems(`${base}palette: { managed: true, lastRun: none }\nfaults: [{ kind: palette-reboot-pending, node: worker-1 }]\n`)).toEqual([
      'p.yaml:7: faults[0].kind: a palette-reboot-pending fault needs a Palette run, but palette.lastRun is "none": leave lastRun out (default "completed")',
    ]);
    expect(problems(`${base}palette: { managed: true, clusterUid: ABC }\n`)).toEqual(['p.yaml:6: palette.clusterUid: must be 24 lower-case hex digits, as Palette uids are']);
    expect(problems(`${base}palette: { managed: true, lastRun: sometimes }\n`)[0]).toMatch(/^p\.yaml:6: palette\.lastRun: /);
    expect(problems(`${base}palette: { managed: true, mode: agent }\n`)).toEqual(['p.yaml:6: palette.mode: unknown field(s) "mode"']);
    expect(problems(`${base}palette: { managed: true }\nfaults: [{ kind: palette-crony-crashloop, node: worker-1, restarts: 0 }]\n`)[0]).toMatch(/^p\.yaml:7: faults\[0\]\.restarts: /);
  });
});
