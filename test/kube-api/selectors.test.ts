import { describe, expect, it } from 'vitest';
import { BUILTIN_RESOURCES, matchesLabels, parseLabelSelector } from '../../src/sim/kube-api/index.ts';
import { matchesFields, parseFieldSelector } from '../../src/sim/kube-api/selectors.ts';
import { StatusError } from '../../src/sim/kube-api/status.ts';

const labels = { app: 'web', tier: 'frontend', 'node-role.kubernetes.io/worker': '', weight: '7' };

describe('label selectors', () => {
  it.each([
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=db', false],
    ['app!=db', true],
    ['app!=web', false],
    ['missing!=x', true],
    ['app in (web,db)', true],
    ['app in (db, cache)', false],
    ['app notin (db,cache)', true],
    ['missing notin (a)', true],
    ['app notin (web)', false],
    ['tier', true],
    ['missing', false],
    ['!missing', true],
    ['!tier', false],
    ['node-role.kubernetes.io/worker', true],
    ['node-role.kubernetes.io/worker=', true],
    ['app=web,tier=frontend', true],
    ['app=web,tier=backend', false],
    ['app in (web),!missing,tier', true],
    ['weight>5', true],
    ['weight<5', false],
  ])('%j matches: %s', (selector, expected) => {
    expect(matchesLabels(parseLabelSelector(selector), labels)).toBe(expected);
  });

  it.each(['app=web,', 'app in (web', '=web', 'app=we b', 'weight>x'])('%j is a 400 BadRequest', (selector) => {
    const error = (() => {
      try {
        parseLabelSelector(selector);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(StatusError);
    expect((error as StatusError).status).toMatchObject({ code: 400, reason: 'BadRequest' });
  });
});

describe('field selectors', () => {
  const pods = BUILTIN_RESOURCES.find((r) => r.plural === 'pods')!;
  const events = BUILTIN_RESOURCES.find((r) => r.plural === 'events')!;
  const pod = { metadata: { name: 'p1', namespace: 'ns1' }, spec: { nodeName: 'n1' }, status: { phase: 'Running' } };
  const event = {
    metadata: { name: 'e1', namespace: 'os-patch' },
    involvedObject: { kind: 'Job', name: 'patch-n1', namespace: 'os-patch', uid: 'u-1', fieldPath: 'spec.containers{agent}' },
    reason: 'Completed',
    type: 'Normal',
    source: { component: 'job-controller' },
  };

  it.each([
    ['spec.nodeName=n1', true],
    ['spec.nodeName==n1', true],
    ['spec.nodeName=n2', false],
    ['spec.nodeName!=n2', true],
    ['metadata.name=p1,metadata.namespace=ns1', true],
    ['status.phase!=Succeeded,status.phase!=Failed', true],
    ['status.phase=Pending', false],
  ])('pods %j matches: %s', (selector, expected) => {
    expect(matchesFields(parseFieldSelector(selector, pods), pods, pod)).toBe(expected);
  });

  it.each([
    ['involvedObject.kind=Job,involvedObject.name=patch-n1,involvedObject.namespace=os-patch,involvedObject.uid=u-1', true],
    ['involvedObject.fieldPath=spec.containers{agent}', true],
    ['reason=Completed,type=Normal', true],
    ['source=job-controller', true],
    ['type=Warning', false],
  ])('events %j matches: %s', (selector, expected) => {
    expect(matchesFields(parseFieldSelector(selector, events), events, event)).toBe(expected);
  });

  it('refuses a field the resource does not index, as the server does', () => {
    expect(() => parseFieldSelector('spec.hostname=x', pods)).toThrow('field label not supported: spec.hostname');
  });
});
