import { describe, expect, it } from 'vitest';
import type { ClusterHealth, NodeHealth } from '../../src/engine/effects.ts';
import { gateVerdict, type GateContext } from '../../src/engine/gate.ts';
import { parsePlan, type PlanInput } from '../../src/engine/plan.ts';

const node = (name: string, over: Partial<NodeHealth> = {}): NodeHealth => ({ name, ready: true, unschedulable: false, cordonedBy: null, ...over });
const healthy = (over: Partial<ClusterHealth> = {}): ClusterHealth => ({
  nodes: [node('w1'), node('w2'), node('w3'), node('db-1')],
  controlPlane: { ready: true, detail: 'ok' },
  blockingPods: [],
  alerts: null,
  ...over,
});
const context = (plan: PlanInput = {}, over: Partial<GateContext> = {}): GateContext => ({
  plan: parsePlan(plan),
  inFlight: [],
  starting: ['w1'],
  failedHere: [],
  adopting: [],
  ...over,
});
const prometheus = { blockers: { prometheus: { url: 'http://prom:9090', alertFilter: '^(KubeNodeNotReady|etcd.*)$' } } };

describe('gateVerdict', () => {
  it.each([
    { name: 'a healthy cluster', health: healthy(), ctx: context(), reason: null },
    {
      name: 'another node NotReady (maxNotReady 0)',
      health: healthy({ nodes: [node('w1'), node('db-1', { ready: false })] }),
      ctx: context(),
      reason: '1 other node(s) NotReady: db-1 (healthGate.maxNotReady 0)',
    },
    { name: 'one NotReady within maxNotReady 1', health: healthy({ nodes: [node('w1'), node('db-1', { ready: false })] }), ctx: context({ healthGate: { maxNotReady: 1 } }), reason: null },
    { name: 'the node about to start is NotReady (preflight decides)', health: healthy({ nodes: [node('w1', { ready: false })] }), ctx: context(), reason: null },
    {
      name: 'a node in flight rebooting and cordoned by this run',
      health: healthy({ nodes: [node('w2', { ready: false, unschedulable: true, cordonedBy: 'run-1' }), node('w1')] }),
      ctx: context({}, { inFlight: ['w2'] }),
      reason: null,
    },
    {
      name: 'a node left cordoned by an earlier run',
      health: healthy({ nodes: [node('w1'), node('w3', { unschedulable: true, cordonedBy: 'run-0' })] }),
      ctx: context(),
      reason: 'node(s) still cordoned by patchpilot: w3 (run run-0)',
    },
    {
      name: 'a node left cordoned by a holder that lost the cluster, which this run adopts first',
      health: healthy({ nodes: [node('w1'), node('w3', { unschedulable: true, cordonedBy: 'run-0' })] }),
      ctx: context({}, { starting: ['w2'], adopting: ['w3'] }),
      reason: null,
    },
    {
      name: 'a node this run failed, kept cordoned and NotReady (spent from the error budget)',
      health: healthy({ nodes: [node('w1'), node('w3', { ready: false, unschedulable: true, cordonedBy: 'run-1' })] }),
      ctx: context({}, { failedHere: ['w3'] }),
      reason: null,
    },
    { name: 'a node cordoned by a human', health: healthy({ nodes: [node('w1'), node('w3', { unschedulable: true })] }), ctx: context(), reason: null },
    {
      name: 'the control plane not ready',
      health: healthy({ controlPlane: { ready: false, detail: 'HTTP 500: [-]etcd failed' } }),
      ctx: context(),
      reason: 'the control plane is not ready (/readyz: HTTP 500: [-]etcd failed)',
    },
    {
      name: 'a blocking pod',
      health: healthy({ blockingPods: ['ops/backup-7f9'] }),
      ctx: context({ blockers: { podSelector: 'app=backup' } }),
      reason: 'blocking pod(s) running: ops/backup-7f9 (blockers.podSelector "app=backup")',
    },
    { name: 'a firing alert matching the filter', health: healthy({ alerts: { firing: ['etcdHighFsyncDurations', 'Watchdog'] } }), ctx: context(prometheus), reason: 'alert(s) firing: etcdHighFsyncDurations' },
    { name: 'only alerts outside the filter', health: healthy({ alerts: { firing: ['Watchdog', 'InfoInhibitor'] } }), ctx: context(prometheus), reason: null },
    {
      name: 'an empty filter: every firing alert',
      health: healthy({ alerts: { firing: ['Watchdog'] } }),
      ctx: context({ blockers: { prometheus: { url: 'http://prom:9090' } } }),
      reason: 'alert(s) firing: Watchdog',
    },
    {
      name: 'Prometheus unreachable (unknown is not healthy)',
      health: healthy({ alerts: { error: 'http://prom:9090/api/v1/alerts: connect ECONNREFUSED' } }),
      ctx: context(prometheus),
      reason: 'cannot ask Prometheus for alerts: http://prom:9090/api/v1/alerts: connect ECONNREFUSED',
    },
    {
      name: 'several reasons at once',
      health: healthy({ nodes: [node('w1'), node('db-1', { ready: false })], blockingPods: ['ops/b'] }),
      ctx: context({ blockers: { podSelector: 'app=b' } }),
      reason: '1 other node(s) NotReady: db-1 (healthGate.maxNotReady 0); blocking pod(s) running: ops/b (blockers.podSelector "app=b")',
    },
  ])('$name', ({ health, ctx, reason }) => {
    const verdict = gateVerdict(health, ctx);
    expect(verdict.open ? null : verdict.reason).toBe(reason);
  });

  it('names at most five nodes and counts the rest', () => {
    const nodes = [node('w1'), ...Array.from({ length: 8 }, (_, i) => node(`x-${i + 1}`, { ready: false }))];
    const verdict = gateVerdict(healthy({ nodes }), context());
    expect(verdict).toEqual({ open: false, reason: '8 other node(s) NotReady: x-1, x-2, x-3, x-4, x-5 and 3 more (healthGate.maxNotReady 0)' });
  });
});
