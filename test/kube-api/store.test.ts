import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/engine/clock.ts';
import { KubeStore, StatusError, type ChangeEvent, type KubeObject, type WatchEvent } from '../../src/sim/kube-api/index.ts';
import { clusterStore, node, patchJob, runningPod } from './fixtures.ts';

function failure(fn: () => unknown): StatusError['status'] {
  try {
    fn();
  } catch (error) {
    if (error instanceof StatusError) return error.status;
    throw error;
  }
  throw new Error('expected a StatusError');
}

function replicaSet(store: KubeStore, name: string): KubeObject {
  return store.create('replicasets', {
    metadata: { name, namespace: 'default' },
    spec: { replicas: 2, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } } },
  });
}

function ownedBy(owner: KubeObject) {
  return { apiVersion: owner.apiVersion!, kind: owner.kind!, name: owner.metadata.name!, uid: owner.metadata.uid! };
}

describe('KubeStore: create, get, list', () => {
  it('assigns uid, creationTimestamp from the clock and resourceVersions from one counter', () => {
    const clock = new VirtualClock(Date.parse('2026-11-22T10:00:00Z'));
    const store = clusterStore(clock);
    clock.increment(1500);
    const n1 = store.create('nodes', node('n1'));
    const cm = store.create('configmaps', { metadata: { name: 'agent', namespace: 'os-patch' }, data: { a: '1' } });
    expect(n1.metadata.creationTimestamp).toBe('2026-11-22T10:00:01Z');
    expect(n1.metadata.uid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number(cm.metadata.resourceVersion)).toBe(Number(n1.metadata.resourceVersion) + 1);
    expect(store.resourceVersion).toBe(cm.metadata.resourceVersion);
    expect(cm).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap' });
    expect(Object.isFrozen(n1.metadata.labels)).toBe(true);
  });

  it('generates names, refuses duplicates and invalid names with the server messages', () => {
    const store = clusterStore(new VirtualClock());
    const generated = store.create('pods', { metadata: { generateName: 'drain-', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'i' }] } });
    expect(generated.metadata.name).toMatch(/^drain-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    store.create('nodes', node('n1'));
    expect(failure(() => store.create('nodes', node('n1')))).toEqual({
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: 'nodes "n1" already exists', reason: 'AlreadyExists', details: { name: 'n1', kind: 'nodes' }, code: 409,
    });
    const bad = failure(() => store.create('nodes', node('Bad_Name')));
    expect(bad).toMatchObject({ code: 422, reason: 'Invalid', details: { name: 'Bad_Name', kind: 'Node', causes: [{ field: 'metadata.name', reason: 'FieldValueInvalid' }] } });
    expect(bad.message).toMatch(/^Node "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
    expect(failure(() => store.get('jobs', { namespace: 'os-patch', name: 'x' }))).toMatchObject({
      message: 'jobs.batch "x" not found', reason: 'NotFound', details: { name: 'x', group: 'batch', kind: 'jobs' }, code: 404,
    });
  });

  it('lists sorted by namespace and name, filtered by namespace and selectors', () => {
    const store = clusterStore(new VirtualClock());
    for (const name of ['n3', 'n1', 'n2']) store.create('nodes', node(name, { labels: { pool: name === 'n2' ? 'b' : 'a' }, unschedulable: name === 'n3' }));
    expect(store.list('nodes').items.map((n) => n.metadata.name)).toEqual(['n1', 'n2', 'n3']);
    expect(store.list('nodes', { labelSelector: 'pool=a' }).items.map((n) => n.metadata.name)).toEqual(['n1', 'n3']);
    expect(store.list('nodes', { fieldSelector: 'spec.unschedulable=true' }).items.map((n) => n.metadata.name)).toEqual(['n3']);
    expect(store.list('nodes', { fieldSelector: 'spec.unschedulable=false' }).items.map((n) => n.metadata.name)).toEqual(['n1', 'n2']);
    store.create('pods', runningPod('a', 'default', 'n1'), { internal: true });
    store.create('pods', runningPod('b', 'kube-system', 'n2'), { internal: true });
    expect(store.list('pods', { namespace: 'kube-system' }).items.map((p) => p.metadata.name)).toEqual(['b']);
    expect(store.list('pods', { fieldSelector: 'spec.nodeName=n1' }).items.map((p) => p.metadata.name)).toEqual(['a']);
  });

  it('refuses content in a namespace that does not exist or is terminating', () => {
    const store = clusterStore(new VirtualClock());
    expect(failure(() => store.create('configmaps', { metadata: { name: 'c', namespace: 'nope' } }))).toMatchObject({ code: 404, message: 'namespaces "nope" not found' });
  });

  it('defaults a Job as the API server does', () => {
    const store = clusterStore(new VirtualClock());
    const job = store.create('jobs', { ...patchJob('patch-n1', 'n1'), status: { succeeded: 5 } });
    const uid = job.metadata.uid;
    expect(job.spec).toMatchObject({
      selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } },
      completions: 1,
      parallelism: 1,
      backoffLimit: 0,
      template: {
        metadata: {
          labels: { 'batch.kubernetes.io/controller-uid': uid, 'controller-uid': uid, 'batch.kubernetes.io/job-name': 'patch-n1', 'job-name': 'patch-n1' },
        },
      },
    });
    expect(job.status).toEqual({});
    expect(job.metadata.generation).toBe(1);
    const invalid = failure(() => store.create('jobs', { metadata: { name: 'j', namespace: 'os-patch' }, spec: { template: { spec: { containers: [{ name: 'c', image: 'i' }] } } } }));
    expect(invalid.message).toBe('Job.batch "j" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"');
  });
});

describe('KubeStore: update and patch', () => {
  it('refuses a PUT with a stale resourceVersion with the real Conflict, and accepts one without', () => {
    const store = clusterStore(new VirtualClock());
    const first = store.create('nodes', node('n1'));
    const stale = structuredClone(first);
    store.patch('nodes', { name: 'n1' }, 'merge', { metadata: { labels: { a: 'b' } } });
    expect(failure(() => store.update('nodes', stale))).toEqual({
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: 'Operation cannot be fulfilled on nodes "n1": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict', details: { name: 'n1', kind: 'nodes' }, code: 409,
    });
    delete stale.metadata.resourceVersion;
    const unconditional = store.update('nodes', stale);
    expect(unconditional.metadata.labels?.a).toBeUndefined();
    expect(failure(() => store.patch('nodes', { name: 'n1' }, 'merge', { metadata: { resourceVersion: first.metadata.resourceVersion } })).code).toBe(409);
  });

  it('keeps the resourceVersion when nothing changes and bumps generation only for spec changes', () => {
    const store = clusterStore(new VirtualClock());
    const ds = store.create('daemonsets', {
      metadata: { name: 'agent', namespace: 'kube-system' },
      spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'c', image: 'i:1' }] } } },
    });
    expect(store.patch('daemonsets', { namespace: 'kube-system', name: 'agent' }, 'merge', { metadata: { labels: {} } }).metadata.resourceVersion).toBe(ds.metadata.resourceVersion);
    const labelled = store.patch('daemonsets', { namespace: 'kube-system', name: 'agent' }, 'merge', { metadata: { labels: { x: 'y' } } });
    expect(labelled.metadata.generation).toBe(1);
    const changed = store.patch('daemonsets', { namespace: 'kube-system', name: 'agent' }, 'strategic', { spec: { template: { spec: { containers: [{ name: 'c', image: 'i:2' }] } } } });
    expect(changed.metadata.generation).toBe(2);
  });

  it('keeps status out of main-resource writes from clients, and spec out of status writes', () => {
    const store = clusterStore(new VirtualClock());
    store.create('nodes', node('n1'));
    const patched = store.patch('nodes', { name: 'n1' }, 'merge', { spec: { unschedulable: true }, status: { nodeInfo: { bootID: 'changed' } } });
    expect(patched.spec).toMatchObject({ unschedulable: true });
    expect(patched.status).toMatchObject({ nodeInfo: { bootID: 'n1-boot-1' } });
    const statusOnly = store.patch('nodes', { name: 'n1' }, 'merge', { spec: { unschedulable: false }, status: { nodeInfo: { bootID: 'b2' } } }, { subresource: 'status' });
    expect(statusOnly.spec).toMatchObject({ unschedulable: true });
    expect(statusOnly.status).toMatchObject({ nodeInfo: { bootID: 'b2' } });
    const internal = store.modify('nodes', { name: 'n1' }, (n) => ((n.status as { nodeInfo: { bootID: string } }).nodeInfo.bootID = 'b3'), { internal: true });
    expect(internal.status).toMatchObject({ nodeInfo: { bootID: 'b3' } });
  });

  it('runs admission hooks for client writes only: they mutate, reject, and see the user', () => {
    const store = clusterStore(new VirtualClock());
    const seen: string[] = [];
    store.hooks.admit('nodes', (request) => {
      seen.push(`${request.operation} ${request.verb} ${request.name} by ${request.user.name}`);
      if (request.operation === 'CREATE') (request.object.metadata.labels ??= {}).admitted = 'yes';
      if (request.operation === 'UPDATE' && (request.object.spec as { unschedulable?: boolean }).unschedulable) {
        throw new StatusError(500, 'InternalError', 'Internal error occurred: injected');
      }
    });
    expect(store.create('nodes', node('n1')).metadata.labels?.admitted).toBe('yes');
    expect(failure(() => store.patch('nodes', { name: 'n1' }, 'strategic', { spec: { unschedulable: true } }, { user: { name: 'alice', groups: [] } })).code).toBe(500);
    expect(store.get('nodes', { name: 'n1' }).spec).not.toHaveProperty('unschedulable');
    store.modify('nodes', { name: 'n1' }, (n) => ((n.spec as Record<string, unknown>).unschedulable = true), { internal: true });
    expect(seen).toEqual(['CREATE create n1 by system:admin', 'UPDATE patch n1 by alice']);
  });
});

describe('KubeStore: delete', () => {
  it('keeps an object with finalizers, marked, until the last finalizer goes', () => {
    const clock = new VirtualClock(Date.parse('2026-11-22T10:00:00Z'));
    const store = clusterStore(clock);
    store.create('configmaps', { metadata: { name: 'c', namespace: 'default', finalizers: ['example.com/keep', 'example.com/other'] } });
    clock.increment(60_000);
    const result = store.delete('configmaps', { namespace: 'default', name: 'c' });
    expect(result.removed).toBe(false);
    expect(result.object.metadata).toMatchObject({ deletionTimestamp: '2026-11-22T10:01:00Z', deletionGracePeriodSeconds: 0 });
    const adding = failure(() => store.patch('configmaps', { namespace: 'default', name: 'c' }, 'strategic', { metadata: { finalizers: ['example.com/late'] } }));
    expect(adding.message).toContain('metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted');
    store.patch('configmaps', { namespace: 'default', name: 'c' }, 'strategic', { metadata: { '$deleteFromPrimitiveList/finalizers': ['example.com/keep'] } });
    expect(store.find('configmaps', { namespace: 'default', name: 'c' })).toBeDefined();
    store.patch('configmaps', { namespace: 'default', name: 'c' }, 'json', [{ op: 'remove', path: '/metadata/finalizers' }]);
    expect(store.find('configmaps', { namespace: 'default', name: 'c' })).toBeUndefined();
  });

  it('checks preconditions.uid', () => {
    const store = clusterStore(new VirtualClock());
    const n1 = store.create('nodes', node('n1'));
    expect(failure(() => store.delete('nodes', { name: 'n1' }, { preconditions: { uid: 'other' } }))).toMatchObject({
      code: 409, reason: 'Conflict', message: `Operation cannot be fulfilled on nodes "n1": Precondition failed: UID in precondition: other, UID in object meta: ${n1.metadata.uid}`,
    });
    expect(store.delete('nodes', { name: 'n1' }, { preconditions: { uid: n1.metadata.uid! } }).removed).toBe(true);
  });

  it('Background deletes dependents, Orphan keeps them without the reference', () => {
    const store = clusterStore(new VirtualClock());
    const rs = replicaSet(store, 'web');
    store.create('pods', runningPod('web-1', 'default', 'n1', { owner: ownedBy(rs) }), { internal: true });
    store.create('pods', runningPod('other', 'default', 'n1'), { internal: true });
    store.delete('replicasets', { namespace: 'default', name: 'web' }, { propagationPolicy: 'Background' });
    expect(store.list('pods').items.map((p) => p.metadata.name)).toEqual(['other']);

    const kept = replicaSet(store, 'kept');
    store.create('pods', runningPod('kept-1', 'default', 'n1', { owner: ownedBy(kept) }), { internal: true });
    store.delete('replicasets', { namespace: 'default', name: 'kept' }, { propagationPolicy: 'Orphan' });
    expect(store.get('pods', { namespace: 'default', name: 'kept-1' }).metadata.ownerReferences).toBeUndefined();
  });

  it('orphans a Job\'s pods when no policy is given (batch/v1 default) and deletes them with Background', () => {
    const store = clusterStore(new VirtualClock());
    const job = store.create('jobs', patchJob('patch-n1', 'n1'));
    store.create('pods', runningPod('patch-n1-abcde', 'os-patch', 'n1', { owner: ownedBy(job) }), { internal: true });
    store.delete('jobs', { namespace: 'os-patch', name: 'patch-n1' });
    expect(store.list('pods', { namespace: 'os-patch' }).items).toHaveLength(1);
    const again = store.create('jobs', patchJob('patch-n1', 'n1'));
    store.create('pods', runningPod('patch-n1-fghjk', 'os-patch', 'n1', { owner: ownedBy(again) }), { internal: true });
    store.delete('jobs', { namespace: 'os-patch', name: 'patch-n1' }, { propagationPolicy: 'Background' });
    expect(store.list('pods', { namespace: 'os-patch' }).items.map((p) => p.metadata.name)).toEqual(['patch-n1-abcde']);
  });

  it('Foreground keeps the owner until its dependents are gone, through graceful pod termination', () => {
    const clock = new VirtualClock(Date.parse('2026-11-22T10:00:00Z'));
    const store = clusterStore(clock);
    store.hooks.admit('pods', (request) => (request.operation === 'DELETE' ? 'deferred' : undefined));
    const rs = replicaSet(store, 'web');
    store.create('pods', runningPod('web-1', 'default', 'n1', { owner: ownedBy(rs) }), { internal: true });
    const result = store.delete('replicasets', { namespace: 'default', name: 'web' }, { propagationPolicy: 'Foreground' });
    expect(result.removed).toBe(false);
    expect(result.object.metadata.finalizers).toEqual(['foregroundDeletion']);
    const terminating = store.get('pods', { namespace: 'default', name: 'web-1' });
    expect(terminating.metadata).toMatchObject({ deletionTimestamp: '2026-11-22T10:00:30Z', deletionGracePeriodSeconds: 30 });
    clock.increment(30_000);
    store.delete('pods', { namespace: 'default', name: 'web-1' }, { internal: true });
    expect(store.find('pods', { namespace: 'default', name: 'web-1' })).toBeUndefined();
    expect(store.find('replicasets', { namespace: 'default', name: 'web' })).toBeUndefined();
  });

  it('deletes a namespace with its content', () => {
    const store = clusterStore(new VirtualClock());
    store.create('jobs', patchJob('patch-n1', 'n1'));
    store.create('configmaps', { metadata: { name: 'agent', namespace: 'os-patch' } });
    const result = store.delete('namespaces', { name: 'os-patch' });
    expect(result.removed).toBe(true);
    expect(store.list('jobs').items).toEqual([]);
    expect(store.find('namespaces', { name: 'os-patch' })).toBeUndefined();
  });
});

describe('KubeStore: watches and listeners', () => {
  function collect(store: KubeStore, resource: string, options: Parameters<KubeStore['watch']>[1]) {
    const events: WatchEvent[] = [];
    let ended = false;
    const handle = store.watch(resource, options, (e) => events.push(e), () => (ended = true));
    return { events, handle, ended: () => ended, summary: () => events.map((e) => `${e.type} ${e.object.metadata.name ?? e.object.metadata.resourceVersion ?? ''}`) };
  }

  it('starts with ADDED for what exists without a resourceVersion, and replays changes after a given one', () => {
    const store = clusterStore(new VirtualClock());
    store.create('nodes', node('n1'));
    const listed = store.list('nodes').resourceVersion;
    store.create('nodes', node('n2'));
    store.patch('nodes', { name: 'n1' }, 'strategic', { spec: { unschedulable: true } });
    expect(collect(store, 'nodes', {}).summary()).toEqual(['ADDED n1', 'ADDED n2']);
    const resumed = collect(store, 'nodes', { resourceVersion: listed });
    expect(resumed.summary()).toEqual(['ADDED n2', 'MODIFIED n1']);
    store.delete('nodes', { name: 'n2' });
    expect(resumed.summary()).toEqual(['ADDED n2', 'MODIFIED n1', 'DELETED n2']);
    expect(Number(resumed.events[2]!.object.metadata.resourceVersion)).toBe(Number(store.resourceVersion));
  });

  it('turns entering and leaving a selector into ADDED and DELETED', () => {
    const store = clusterStore(new VirtualClock());
    store.create('nodes', node('n1'));
    const cordoned = collect(store, 'nodes', { fieldSelector: 'spec.unschedulable=true', resourceVersion: store.resourceVersion });
    const pool = collect(store, 'nodes', { labelSelector: 'pool=a', resourceVersion: store.resourceVersion });
    store.patch('nodes', { name: 'n1' }, 'strategic', { spec: { unschedulable: true } });
    store.patch('nodes', { name: 'n1' }, 'merge', { metadata: { labels: { pool: 'a' } } });
    store.patch('nodes', { name: 'n1' }, 'strategic', { spec: { unschedulable: null } });
    expect(cordoned.summary()).toEqual(['ADDED n1', 'MODIFIED n1', 'DELETED n1']);
    expect(pool.summary()).toEqual(['ADDED n1', 'MODIFIED n1']);
  });

  it('answers a resourceVersion older than the history with a 410 ERROR event', () => {
    const store = new KubeStore({ clock: new VirtualClock(), watchHistory: 3 });
    for (let i = 1; i <= 5; i++) store.create('nodes', node(`n${i}`));
    const tooOld = collect(store, 'nodes', { resourceVersion: '1' });
    expect(tooOld.events).toEqual([
      { type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version: 1 (3)', reason: 'Expired', code: 410 } },
    ]);
    expect(tooOld.ended()).toBe(true);
    expect(collect(store, 'nodes', { resourceVersion: '2' }).summary()).toEqual(['ADDED n3', 'ADDED n4', 'ADDED n5']);
  });

  it('forgets changes older than the compaction window (5 minutes of clock time): resuming from before them is 410', () => {
    const clock = new VirtualClock();
    const store = new KubeStore({ clock });
    store.create('nodes', node('n1'));
    const seen = store.resourceVersion;
    store.create('nodes', node('n2'));
    clock.increment(4 * 60_000);
    expect(collect(store, 'nodes', { resourceVersion: seen }).summary()).toEqual(['ADDED n2']);
    clock.increment(2 * 60_000);
    store.create('nodes', node('n3'));
    const late = collect(store, 'nodes', { resourceVersion: seen });
    expect(late.events[0]).toMatchObject({ type: 'ERROR', object: { code: 410, reason: 'Expired' } });
    expect(late.ended()).toBe(true);
    // A client already at the newest forgotten change, however long ago, is not behind.
    expect(collect(store, 'nodes', { resourceVersion: String(Number(store.resourceVersion) - 1) }).summary()).toEqual(['ADDED n3']);
  });

  it('ends a watch without timeoutSeconds after 1-2x the minimum request timeout, as the API server spreads them', () => {
    const clock = new VirtualClock();
    const store = new KubeStore({ clock, minRequestTimeoutSeconds: 1800 });
    const watches = Array.from({ length: 20 }, () => collect(store, 'nodes', {}));
    clock.increment(1800 * 1000 - 1);
    expect(watches.filter((w) => w.ended())).toHaveLength(0);
    clock.increment(900 * 1000);
    const halfway = watches.filter((w) => w.ended()).length;
    expect(halfway).toBeGreaterThan(0);
    expect(halfway).toBeLessThan(20);
    clock.increment(900 * 1000);
    expect(watches.filter((w) => w.ended())).toHaveLength(20);
  });

  it('sends bookmarks on the clock when asked, and one last bookmark at timeoutSeconds', () => {
    const clock = new VirtualClock();
    const store = new KubeStore({ clock, bookmarkIntervalMs: 10_000 });
    store.create('nodes', node('n1'));
    const plain = collect(store, 'nodes', { resourceVersion: store.resourceVersion });
    const watch = collect(store, 'nodes', { resourceVersion: store.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 25 });
    clock.increment(10_000);
    store.create('nodes', node('n2'));
    clock.increment(10_000);
    expect(watch.summary()).toEqual(['BOOKMARK 1', 'ADDED n2', 'BOOKMARK 2']);
    expect(watch.events[0]!.object).toEqual({ kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: '1' } });
    clock.increment(5_000);
    expect(watch.summary()).toEqual(['BOOKMARK 1', 'ADDED n2', 'BOOKMARK 2', 'BOOKMARK 2']);
    expect(watch.ended()).toBe(true);
    expect(plain.summary()).toEqual(['ADDED n2']);
    expect(plain.ended()).toBe(false);
  });

  it('tells listeners after the write, in order, so a listener can create what a controller would', () => {
    const store = clusterStore(new VirtualClock());
    const log: string[] = [];
    store.hooks.onChange('jobs', (event) => {
      log.push(`${event.type} job ${event.object.metadata.name}`);
      if (event.type !== 'ADDED') return;
      const job = event.object;
      const labels = (job.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
      store.create('pods', { ...runningPod(`${job.metadata.name}-x`, 'os-patch', 'n1', { owner: ownedBy(job) }), metadata: { name: `${job.metadata.name}-x`, namespace: 'os-patch', labels, ownerReferences: [ownedBy(job)] } }, { internal: true });
    });
    store.hooks.onChange('*', (event: ChangeEvent) => log.push(`${event.type} ${event.resource.plural} ${event.object.metadata.name} rv${event.object.metadata.resourceVersion}`));
    const job = store.create('jobs', patchJob('patch-n1', 'n1'));
    const pods = store.list('pods', { labelSelector: `batch.kubernetes.io/controller-uid=${job.metadata.uid}` }).items;
    expect(pods.map((p) => p.metadata.name)).toEqual(['patch-n1-x']);
    const rv = Number(job.metadata.resourceVersion);
    expect(log).toEqual([`ADDED jobs patch-n1 rv${rv}`, 'ADDED job patch-n1', `ADDED pods patch-n1-x rv${rv + 1}`]);
  });
});
