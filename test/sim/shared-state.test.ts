/**
 * What simulated nodes share to keep a 100,000-node run small (offered updates, installed-package states) must never
 * make one node's state another's: two lists that differ are two offers, and a change reaches only its own node.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/engine/clock.ts';
import { SimCluster } from '../../src/sim/cluster.ts';
import { parseScenario } from '../../src/sim/scenario.ts';

function clusterOf(yaml: string) {
  const scenario = parseScenario(yaml);
  return new SimCluster(scenario.nodes, { name: 'sim', clock: new VirtualClock(0), seed: 7, epoch: 0, updates: scenario.updates, faults: scenario.faults });
}

describe('state nodes share', () => {
  it('is one offer per content: lists whose joined text would be the same stay apart', () => {
    const sim = clusterOf(`
name: offers
cluster:
  nodes:
    - { name: n1, os: ubuntu-22.04, updates: { security: ["curl wget"], other: [] } }
    - { name: n2, os: ubuntu-22.04, updates: { security: [curl, wget], other: [] } }
    - { name: n3, os: ubuntu-22.04, updates: { security: ["x|"], other: [] } }
    - { name: n4, os: ubuntu-22.04, updates: { security: [x], other: ["|"] } }
    - { name: n5, os: ubuntu-22.04, updates: { security: [curl, wget], other: [] } }
plan: { concurrency: 1 }
`);
    const offered = (n: string) => sim.state.require(n).offered;
    expect(offered('n1')).toEqual({ security: ['curl wget'], other: [] });
    expect(offered('n2')).toEqual({ security: ['curl', 'wget'], other: [] });
    expect(offered('n3')).toEqual({ security: ['x|'], other: [] });
    expect(offered('n4')).toEqual({ security: ['x'], other: ['|'] });
    // The same content is the same (frozen) object.
    expect(offered('n5')).toBe(offered('n2'));
    expect(Object.isFrozen(offered('n2').security)).toBe(true);
  });

  it('gives each node its own installed versions once one is patched', () => {
    const sim = clusterOf(`
name: installed
cluster:
  nodes:
    - { name: w, os: ubuntu-22.04, count: 3 }
plan: { concurrency: 1 }
`);
    const [a, b, c] = ['w-1', 'w-2', 'w-3'].map((n) => sim.state.require(n).installed);
    const before = b!.get('openssl');
    a!.set('openssl', '9.9.9');
    expect(a!.get('openssl')).toBe('9.9.9');
    expect(b!.get('openssl')).toBe(before);
    // A second node patched alike reads the same, and a third still has the image's.
    b!.set('openssl', '9.9.9');
    expect(b!.get('openssl')).toBe('9.9.9');
    expect(c!.get('openssl')).toBe(before);
    // A package the image lacks comes last, on that node only.
    a!.set('extra-tool', '1.0');
    expect([...a!.keys()].at(-1)).toBe('extra-tool');
    expect(b!.has('extra-tool')).toBe(false);
  });
});
