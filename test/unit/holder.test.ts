/** The lease holder identity: one per process, readable by people, and honest about identities it did not write. */
import { describe, expect, it } from 'vitest';
import { describeHolder, holderIdentity, parseHolder, processHolder } from '../../src/service/holder.ts';

describe('holder identity', () => {
  it('names host, pid, start time and a random suffix, and reads back', () => {
    const parts = { host: 'bastion-1', pid: 4242, startedAt: Date.parse('2026-12-06T04:00:00Z'), suffix: 'c0ffee' };
    const id = holderIdentity(parts);
    expect(id).toBe('patchpilot/bastion-1/4242/2026-12-06T04:00:00Z/c0ffee');
    expect(parseHolder(id)).toEqual(parts);
    expect(describeHolder(id)).toBe('process 4242 on bastion-1 (started 2026-12-06T04:00:00Z, c0ffee)');
  });

  it('is this process, not this host: the pid is in it, and it stays the same within the process', () => {
    expect(parseHolder(processHolder())).toMatchObject({ pid: process.pid });
    expect(processHolder()).toBe(processHolder());
  });

  it.each([
    ['patchpilot@vm', '"patchpilot@vm" (not a patchpilot process identity)'],
    ['', 'nobody (released)'],
    ['patchpilot/h/notapid/2026-12-06T04:00:00Z/ab', '"patchpilot/h/notapid/2026-12-06T04:00:00Z/ab" (not a patchpilot process identity)'],
  ])('describes an identity it did not write as it is: %j', (id, described) => {
    expect(describeHolder(id)).toBe(described);
  });
});
