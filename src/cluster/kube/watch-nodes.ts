/**
 * A live view of the cluster's nodes: list, then watch from the list's resourceVersion; list again when the API
 * server says the version is too old (410 Gone), and re-watch from the last version seen when the stream ends (the
 * server closes watches every few minutes). Runs until the signal aborts.
 */
import { Watch, type CoreV1Api, type KubeConfig, type V1Node } from '@kubernetes/client-node';
import type { Clock } from '../../engine/clock.ts';
import { sleep } from '../in-process.ts';
import type { ClusterNode } from '../port.ts';
import { toClusterNode } from './node-patches.ts';
import type { KubeRequests } from './requests.ts';

export type NodeWatchEvent = { type: 'synced'; nodes: ClusterNode[] } | { type: 'added' | 'modified' | 'deleted'; node: ClusterNode };

export interface WatchContext {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  requests: KubeRequests;
  clock: Clock;
  /** Pause before re-watching after an error. */
  retryMs: number;
  onNode?: (node: V1Node) => void;
}

type WatchEnd = { kind: 'gone' } | { kind: 'closed' } | { kind: 'failed'; error: unknown };

const PHASES: Record<string, 'added' | 'modified' | 'deleted'> = { ADDED: 'added', MODIFIED: 'modified', DELETED: 'deleted' };

export async function watchNodes(ctx: WatchContext, onChange: (event: NodeWatchEvent) => void, signal: AbortSignal): Promise<void> {
  let resourceVersion: string | null = null;
  while (!signal.aborted) {
    if (resourceVersion === null) {
      const list = await ctx.requests.send({ verb: 'list', resource: 'nodes', group: '' }, (o) => ctx.core.listNode({}, o), { signal });
      list.items.forEach((n) => ctx.onNode?.(n));
      onChange({ type: 'synced', nodes: list.items.map(toClusterNode) });
      resourceVersion = list.metadata?.resourceVersion ?? '';
    }
    const from: string = resourceVersion;
    const end = await watchOnce(ctx, from, signal, (phase, node, version) => {
      resourceVersion = version || resourceVersion;
      if (node) {
        ctx.onNode?.(node);
        onChange({ type: phase, node: toClusterNode(node) });
      }
    });
    if (signal.aborted) return;
    if (end.kind === 'gone') resourceVersion = null;
    else if (end.kind === 'failed') await sleep(ctx.clock, ctx.retryMs, signal).catch(() => undefined);
  }
}

function watchOnce(
  ctx: WatchContext,
  resourceVersion: string,
  signal: AbortSignal,
  onEvent: (phase: 'added' | 'modified' | 'deleted', node: V1Node | null, version: string) => void,
): Promise<WatchEnd> {
  return new Promise((resolve) => {
    let gone = false;
    let controller: AbortController | null = null;
    const onAbort = () => controller?.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const finish = (end: WatchEnd) => {
      signal.removeEventListener('abort', onAbort);
      resolve(end);
    };
    new Watch(ctx.kubeConfig)
      .watch(
        '/api/v1/nodes',
        { resourceVersion, allowWatchBookmarks: true },
        (type: string, object: unknown) => {
          if (type === 'ERROR') {
            const status = object as { code?: number };
            if (status.code === 410) gone = true;
            controller?.abort();
            return;
          }
          const node = object as V1Node;
          const version = node.metadata?.resourceVersion ?? '';
          if (type === 'BOOKMARK') onEvent('modified', null, version);
          else if (PHASES[type]) onEvent(PHASES[type], node, version);
        },
        (err: unknown) => {
          if (gone || (err as { statusCode?: number } | null)?.statusCode === 410) finish({ kind: 'gone' });
          else if (err && !signal.aborted) finish({ kind: 'failed', error: err });
          else finish({ kind: 'closed' });
        },
      )
      .then(
        (c) => {
          controller = c;
          if (signal.aborted) c.abort();
        },
        (error: unknown) => finish({ kind: 'failed', error }),
      );
  });
}
