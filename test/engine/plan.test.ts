import { describe, expect, it } from 'vitest';
import { versionHash } from '../../src/engine/hash.ts';
import { DEFAULT_HOLD_PACKAGES, NATIVE_LABEL_KEY, PlanError, joinPlan, parsePlan, resolveLimits } from '../../src/engine/plan.ts';

describe('parsePlan', () => {
  it('fills every default', () => {
    const plan = parsePlan({});
    expect(plan).toMatchObject({
      mode: 'native',
      labelKey: NATIVE_LABEL_KEY,
      concurrency: 1,
      maxFailures: 0,
      securityOnly: true,
      rebootIfRequired: true,
      holdPackages: [...DEFAULT_HOLD_PACKAGES],
      trigger: { kind: 'on-demand' },
      approval: { required: false, approvers: [], twoPersonRule: true },
      drain: { gracePeriodSeconds: -1, onTimeout: 'uncordon' },
    });
  });

  it.each([
    { name: 'concurrency 0', input: { concurrency: 0 }, problem: 'concurrency: must be at least 1' },
    { name: 'fractional concurrency', input: { concurrency: 1.5 }, problem: 'concurrency: must be a whole number' },
    { name: 'negative error budget', input: { maxFailures: -1 }, problem: 'maxFailures: cannot be negative' },
    { name: 'zero drain timeout', input: { drainTimeoutSeconds: 0 }, problem: 'drainTimeoutSeconds: must be > 0' },
    { name: 'unknown top-level field', input: { concurrancy: 2 }, problem: '(root): unknown field(s) "concurrancy"' },
    { name: 'unknown nested field', input: { drain: { timeout: 3 } }, problem: 'drain: unknown field(s) "timeout"' },
    { name: 'bad drain policy', input: { drain: { onTimeout: 'panic' } }, problem: 'drain.onTimeout:' },
    { name: 'bad hold package entry', input: { holdPackages: ['kubelet', ''] }, problem: 'holdPackages[1]:' },
    { name: 'bad label key', input: { labelKey: 'not a key!' }, problem: 'labelKey: not a valid Kubernetes label key' },
    { name: 'bad mode', input: { mode: 'rancher' }, problem: 'mode:' },
    { name: 'bad window time', input: { window: { start: '25:00', end: '04:00' } }, problem: 'window.start' },
    { name: 'bad window zone', input: { window: { start: '01:00', end: '04:00', timeZone: 'Mars/Olympus' } }, problem: 'window.timeZone' },
    { name: 'bad cron', input: { trigger: { kind: 'cron', expression: '61 * * * *' } }, problem: 'trigger' },
  ])('refuses $name, naming the field', ({ input, problem }) => {
    let error: unknown;
    try {
      parsePlan(input);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PlanError);
    const problems = (error as PlanError).problems;
    expect(problems.some((p) => p.startsWith(problem) || p.includes(problem)), problems.join('\n')).toBe(true);
  });

  it('lists every problem at once, in a message that names the source', () => {
    const error = (() => {
      try {
        parsePlan({ concurrency: 0, maxFailures: -2 }, 'plan.yaml');
      } catch (err) {
        return err as PlanError;
      }
      throw new Error('expected a PlanError');
    })();
    expect(error.problems).toHaveLength(2);
    expect(error.message).toMatch(/^invalid plan\.yaml:\n  - concurrency: .*\n  - maxFailures: /);
  });
});

describe('versionHash', () => {
  const base = parsePlan({});
  it.each([
    { name: 'a different trigger', other: base, trigger: 'trigger-2', same: false },
    { name: 'the same plan and trigger', other: parsePlan({}), trigger: 'trigger-1', same: true },
    { name: 'a rollout knob (concurrency)', other: parsePlan({ concurrency: 5 }), trigger: 'trigger-1', same: true },
    { name: 'a rollout knob (window)', other: parsePlan({ window: { start: '01:00', end: '03:00' } }), trigger: 'trigger-1', same: true },
    { name: 'hold packages in another order', other: parsePlan({ holdPackages: [...DEFAULT_HOLD_PACKAGES].reverse() }), trigger: 'trigger-1', same: true },
    { name: 'a change of what is installed (securityOnly)', other: parsePlan({ securityOnly: false }), trigger: 'trigger-1', same: false },
    { name: 'a change of what is held', other: parsePlan({ holdPackages: ['kubelet'] }), trigger: 'trigger-1', same: false },
  ])('$name → hash same: $same', ({ other, trigger, same }) => {
    expect(versionHash(other, trigger) === versionHash(base, 'trigger-1')).toBe(same);
  });

  it('fits a Kubernetes label value', () => {
    expect(versionHash(base, 'x')).toMatch(/^[0-9a-f]{20}$/);
  });
});

describe('rollout safety keys', () => {
  it('defaults: scan first, a strict health gate with a one-hour timeout, no canary, no soak, no blockers', () => {
    expect(parsePlan({})).toMatchObject({
      scanFirst: true,
      prefetch: false,
      healthGate: { maxNotReady: 0, blockedTimeoutSeconds: 3600 },
      canary: { nodes: 0, soakSeconds: 0 },
      soakSeconds: 0,
      blockers: { podSelector: '' },
    });
    expect(parsePlan({}).blockers.prometheus).toBeUndefined();
  });

  it.each([
    { input: { scanFirst: 'yes' }, problem: 'scanFirst:' },
    { input: { prefetch: 1 }, problem: 'prefetch:' },
    { input: { healthGate: { maxNotReady: -1 } }, problem: 'healthGate.maxNotReady: cannot be negative' },
    { input: { healthGate: { blockedTimeoutSeconds: 0 } }, problem: 'healthGate.blockedTimeoutSeconds: must be > 0' },
    { input: { healthGate: { maxNotready: 1 } }, problem: 'healthGate: unknown field(s) "maxNotready"' },
    { input: { canary: { nodes: 1.5 } }, problem: 'canary.nodes: must be a whole number' },
    { input: { canary: { soakSeconds: -5 } }, problem: 'canary.soakSeconds: cannot be negative' },
    { input: { soakSeconds: 'ten' }, problem: 'soakSeconds:' },
    { input: { blockers: { podSelector: 'app in (a' } }, problem: 'blockers.podSelector: not a valid label selector' },
    { input: { blockers: { prometheus: { url: 'ftp://prom' } } }, problem: 'blockers.prometheus.url: must be an http(s) URL' },
    { input: { blockers: { prometheus: { url: 'http://prom:9090', alertFilter: '(' } } }, problem: 'blockers.prometheus.alertFilter: not a valid regular expression' },
    { input: { blockers: { prometheus: { alertFilter: 'x' } } }, problem: 'blockers.prometheus.url' },
    { input: { concurrency: '0%' }, problem: 'concurrency: must be more than 0%' },
    { input: { concurrency: '150%' }, problem: 'concurrency: must be a whole number or a percentage' },
    { input: { concurrency: 'half' }, problem: 'concurrency: must be a whole number or a percentage' },
    { input: { maxFailures: '-5%' }, problem: 'maxFailures: must be a whole number or a percentage' },
    { input: { maxFailures: true }, problem: 'maxFailures: must be a whole number or a percentage' },
    // A nodeSelector no node can match selected nothing, silently: refused as the API server refuses such labels.
    { input: { nodeSelector: { 'bad key!': 'x' } }, problem: 'nodeSelector: key "bad key!": not a valid Kubernetes label key' },
    { input: { nodeSelector: { '': '' } }, problem: 'nodeSelector: key "": not a valid Kubernetes label key' },
    { input: { nodeSelector: { [`${'a'.repeat(64)}`]: 'x' } }, problem: 'nodeSelector: key "aaaa' },
    { input: { nodeSelector: { 'Example.com/pool': 'x' } }, problem: 'nodeSelector: key "Example.com/pool"' },
    { input: { nodeSelector: { pool: 'a b' } }, problem: 'nodeSelector.pool: not a valid Kubernetes label value' },
    { input: { nodeSelector: { pool: 'x'.repeat(64) } }, problem: 'nodeSelector.pool: not a valid Kubernetes label value' },
  ])('refuses $input, naming the key', ({ input, problem }) => {
    let error: unknown;
    try {
      parsePlan(input);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PlanError);
    const problems = (error as PlanError).problems;
    expect(problems.some((p) => p.startsWith(problem)), problems.join('\n')).toBe(true);
  });

  it('takes the label keys and values nodes can carry', () => {
    const nodeSelector = { pool: 'gpu', 'example.com/zone': 'eu-1', 'node.kubernetes.io/instance-type': 'm5.large', empty: '' };
    expect(parsePlan({ nodeSelector }).nodeSelector).toEqual(nodeSelector);
  });

  it.each([
    { concurrency: '25%', maxFailures: '25%', selected: 8, expected: { concurrency: 2, maxFailures: 2 } },
    { concurrency: '25%', maxFailures: '25%', selected: 3, expected: { concurrency: 1, maxFailures: 0 } },
    { concurrency: '100%', maxFailures: '10%', selected: 7, expected: { concurrency: 7, maxFailures: 0 } },
    { concurrency: '1%', maxFailures: '50%', selected: 0, expected: { concurrency: 1, maxFailures: 0 } },
    { concurrency: 3, maxFailures: 1, selected: 100, expected: { concurrency: 3, maxFailures: 1 } },
    { concurrency: '12.5%', maxFailures: '0%', selected: 16, expected: { concurrency: 2, maxFailures: 0 } },
  ])('resolves concurrency $concurrency and maxFailures $maxFailures of $selected nodes', ({ concurrency, maxFailures, selected, expected }) => {
    expect(resolveLimits(parsePlan({ concurrency, maxFailures }), selected)).toEqual(expected);
  });

  it('a joining node gets a plan of its own: that node, no scan first, no canary, the same hash', () => {
    const plan = parsePlan({ trigger: { kind: 'on-boot' }, canary: { nodes: 2, soakSeconds: 60 } });
    const join = joinPlan(plan, 'new-1');
    expect(join).toMatchObject({ nodes: ['new-1'], scanFirst: false, canary: { nodes: 0, soakSeconds: 0 } });
    expect(versionHash(join, 't1')).toBe(versionHash(plan, 't1'));
  });
});
