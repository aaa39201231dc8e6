/**
 * One node: `unshare --mount --pid --net --fork` around an overlay of the node image (lower layers on the harness's
 * tmpfs, a fresh upper per node), with its own /proc (a fresh PID namespace: a simulated boot for needs-restarting),
 * /dev, devpts and loopback. The repository is reachable only through a socat bridge on the node's 127.0.0.1:18080 to
 * the host's Unix socket; fault servers run in the node's namespace too. When the node's PID 1 exits, every process
 * and mount of the node is gone (--kill-child covers the harness dying or timing out).
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { exec, q } from './exec.ts';
import { NODE_REPO_PORT } from './repos.ts';

export interface NodeRunOptions {
  /** Read-only lower layers, topmost first. */
  lowers: string[];
  /** Node directory: upper/, work/, merged/ and out/ are created in it. The upper layer stays afterwards. */
  dir: string;
  /** Unix socket of the repository server to bridge to 127.0.0.1:18080, or null (the repository is unreachable). */
  bridge: string | null;
  /** Bash run inside the node's namespaces after set-up; $M is the node's root, $OUT an output directory, and
   * `inroot CMD...` runs a command chrooted with a clean environment. */
  body: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

export interface NodeRunResult {
  code: number;
  stdout: string;
  stderr: string;
  out: string;
}

const PRELUDE = `
set -euo pipefail
M=$NODE/merged
mkdir -p "$NODE/upper" "$NODE/work" "$M" "$OUT"
mount -t overlay overlay -o "lowerdir=$LOWERS,upperdir=$NODE/upper,workdir=$NODE/work" "$M"
mount -t proc proc "$M/proc"
stat "$M/proc/1" >/dev/null   # procfs stamps /proc/1 on its first lookup: the node's boot time for needs-restarting
mount -t tmpfs -o mode=755,size=1m devtmp "$M/dev"
for d in null zero full random urandom tty; do touch "$M/dev/$d"; mount --bind "/dev/$d" "$M/dev/$d"; done
mkdir -p "$M/dev/pts" "$M/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$M/dev/pts"
ln -s pts/ptmx "$M/dev/ptmx"; ln -s /proc/self/fd "$M/dev/fd"
ln -s /proc/self/fd/0 "$M/dev/stdin"; ln -s /proc/self/fd/1 "$M/dev/stdout"; ln -s /proc/self/fd/2 "$M/dev/stderr"
ip link set lo up
inroot() { chroot "$M" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
if [[ -n "\${BRIDGE:-}" ]]; then
  socat TCP-LISTEN:${NODE_REPO_PORT},bind=127.0.0.1,fork,reuseaddr "UNIX-CONNECT:$BRIDGE" &
  for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/${NODE_REPO_PORT}) 2>/dev/null && break; sleep 0.02; done
fi
`;

export async function runNode(opts: NodeRunOptions): Promise<NodeRunResult> {
  const out = join(opts.dir, 'out');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const script = `${PRELUDE}\n${opts.body}\n`;
  const r = await exec('unshare', ['--mount', '--pid', '--net', '--fork', '--kill-child', '--propagation', 'private', 'bash', '--norc', '-c', script], {
    env: {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C.UTF-8',
      NODE: opts.dir,
      OUT: out,
      LOWERS: opts.lowers.join(':'),
      BRIDGE: opts.bridge ?? '',
      ...opts.env,
    },
    timeoutMs: opts.timeoutMs ?? 120_000,
  });
  return { ...r, out };
}

export function readOut(out: string, name: string): string {
  try {
    return readFileSync(join(out, name), 'utf8');
  } catch {
    return '';
  }
}

export { q };
