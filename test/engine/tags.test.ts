/**
 * What the machines tell the rest of patchpilot instead of their states' names: the fleet's tags (and the store status
 * the journal derives from them), the node phases, and the rejection rule beside the approval rule.
 */
import { describe, expect, it } from 'vitest';
import { createActor, type AnyStateNode } from 'xstate';
import {
  FLEET_PHASES,
  fleetMachine,
  rejectionVerdict,
  type FleetInput,
  type FleetTag,
} from '../../src/engine/fleet.machine.ts';
import { NODE_PHASES, nodeMachine } from '../../src/engine/node.machine.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { runStatusOf } from '../../src/service/journal.ts';

/** Every state node of a machine, with the tags it has in a snapshot (its own and its ancestors'). */
function statesWithTags(root: AnyStateNode): Array<{ path: string; node: AnyStateNode; tags: string[] }> {
  const out: Array<{ path: string; node: AnyStateNode; tags: string[] }> = [];
  const walk = (node: AnyStateNode, path: string[], inherited: string[]) => {
    const tags = [...inherited, ...node.tags];
    if (path.length > 0) out.push({ path: path.join('.'), node, tags });
    for (const [key, child] of Object.entries(node.states)) walk(child, [...path, key], tags);
  };
  walk(root, [], []);
  return out;
}

const fleetStates = statesWithTags(fleetMachine.root);
const tagsOf = (path: string) => fleetStates.find((s) => s.path === path)!.tags as FleetTag[];

describe('fleet tags', () => {
  it('give every state of a run exactly one phase', () => {
    for (const { path, tags } of fleetStates) {
      expect(tags.filter((t) => (FLEET_PHASES as readonly string[]).includes(t)), path).toHaveLength(1);
    }
  });

  // The statuses the journal derived from the states' names before the tags existed.
  it.each([
    ['scheduled', 'scheduled'],
    ['gate', 'scheduled'],
    ['awaitingApproval', 'awaiting-approval'],
    ['selecting.listing', 'selecting'],
    ['selecting.backoff', 'selecting'],
    ['selected', 'selecting'],
    ['prefetching', 'selecting'],
    ['rolling.route', 'rolling'],
    ['rolling.gating', 'rolling'],
    ['rolling.active', 'rolling'],
    ['rolling.canarySoak', 'rolling'],
    ['rolling.halting', 'rolling'],
    ['rolling.blocked', 'blocked'],
    ['rolling.paused', 'paused'],
    ['rolling.waitingForWindow', 'paused'],
    ['cancelling', 'cancelling'],
    ['done', 'done'],
  ])('a run in %s has the store status %s', (path, status) => {
    expect(runStatusOf(tagsOf(path))).toBe(status);
  });

  it('mark as waiting exactly the states in which nothing starts by rule', () => {
    const waiting = fleetStates.filter((s) => s.tags.includes('waiting')).map((s) => s.path);
    expect(waiting.sort()).toEqual(['rolling.blocked', 'rolling.canarySoak', 'rolling.paused', 'rolling.waitingForWindow']);
    expect(fleetStates.filter((s) => s.tags.includes('decision-open')).map((s) => s.path).sort()).toEqual(['awaitingApproval', 'scheduled']);
  });
});

describe('node phases', () => {
  it('tag each state a node rests in with one phase, its own name; transient and final states have none', () => {
    const tagged = new Map<string, string[]>();
    for (const { path, node, tags } of statesWithTags(nodeMachine.root)) {
      if (path.includes('.')) continue;
      const transient = node.always !== undefined && node.always.length > 0;
      if (transient || node.type === 'final') expect(tags, path).toEqual([]);
      else tagged.set(path, tags);
    }
    for (const [path, tags] of tagged) expect(tags, path).toEqual([path]);
    expect([...tagged.keys()].sort()).toEqual([...NODE_PHASES].sort());
  });
});

describe('who may reject a run', () => {
  const plan = (approvers: string[]) => parsePlan({ cluster: 'prod', approval: { required: true, approvers, twoPersonRule: true } });

  it.each([
    ['an approver named in the plan', ['U_BOB'], 'U_BOB', [], true],
    ['a member of an approver group', ['S_OPS'], 'U_CAROL', ['S_OPS'], true],
    ['the requester, withdrawing their own request (two-person rule or not)', ['U_BOB'], 'U_ALICE', [], true],
    ['anyone when the plan names no approvers', [], 'U_MALLORY', [], true],
    ['someone else', ['U_BOB'], 'U_MALLORY', [], false],
    ['a member of a group that is not an approver', ['S_OPS'], 'U_MALLORY', ['S_OTHER'], false],
  ])('%s: %s', (_what, approvers, by, memberOf, ok) => {
    expect(rejectionVerdict(plan(approvers), 'U_ALICE', by, memberOf).ok).toBe(ok);
  });

  it('the fleet machine takes REJECT only from them, before notBefore and while awaiting approval', () => {
    const input: FleetInput = { runId: 'r', plan: plan(['U_BOB', 'S_OPS']), hash: 'h', requestedBy: 'U_ALICE', createdAt: 0, notBefore: 600_000 };
    const actor = createActor(fleetMachine, { input }).start();
    const stranger = { type: 'REJECT', by: 'U_MALLORY', at: 1 } as const;
    expect(actor.getSnapshot().hasTag('scheduled')).toBe(true);
    expect(actor.getSnapshot().can(stranger)).toBe(false);
    actor.send(stranger);
    expect(actor.getSnapshot().context.rejection).toBeNull();

    actor.send({ type: 'NOT_BEFORE_REACHED', at: 600_000 });
    expect(actor.getSnapshot().hasTag('awaiting-approval')).toBe(true);
    actor.send({ ...stranger, at: 600_001 });
    expect(actor.getSnapshot().hasTag('awaiting-approval')).toBe(true);
    expect(actor.getSnapshot().can({ type: 'REJECT', by: 'U_ALICE', at: 600_002 })).toBe(true);
    actor.send({ type: 'REJECT', by: 'U_CAROL', at: 600_003, reason: 'change freeze', memberOf: ['S_OPS'] });
    expect(actor.getSnapshot().hasTag('finished')).toBe(true);
    expect(actor.getSnapshot().output).toMatchObject({ outcome: 'cancelled', reason: 'rejected by U_CAROL: change freeze' });
  });
});
