/**
 * Is a container runtime reachable? Answered cheaply (a `GET /_ping` on the Docker API socket, one second at most) so that
 * suites needing one can skip with a reason before importing testcontainers, whose import and failed discovery cost far
 * more. It looks where testcontainers looks: DOCKER_HOST, then the default and rootless Docker sockets.
 */
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type RuntimeProbe = { ok: true; endpoint: string } | { ok: false; reason: string };

type Endpoint = { path: string } | { host: string; port: number };

function ping(endpoint: Endpoint, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    let answer = '';
    let socket: Socket;
    const done = (error: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(error);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket = connect(endpoint, () => socket.write('GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n'));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('end', () => done(/^HTTP\/1\.[01] 200/.test(answer) ? null : `unexpected answer: ${answer.split('\r\n')[0] ?? ''}`));
    socket.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

export async function probeContainerRuntime(env: NodeJS.ProcessEnv = process.env, timeoutMs = 1000): Promise<RuntimeProbe> {
  const dockerHost = env.DOCKER_HOST?.trim();
  if (dockerHost) {
    let url: URL;
    try {
      url = new URL(dockerHost);
    } catch {
      return { ok: false, reason: `DOCKER_HOST=${dockerHost} is not a URL` };
    }
    if (url.protocol === 'unix:') {
      const error = await ping({ path: url.pathname }, timeoutMs);
      return error ? { ok: false, reason: `DOCKER_HOST=${dockerHost}: ${error}` } : { ok: true, endpoint: dockerHost };
    }
    if (url.protocol === 'tcp:') {
      // With TLS the ping would need the client certificates; a plain answer or a TLS refusal both mean someone listens.
      const error = await ping({ host: url.hostname, port: Number(url.port || 2375) }, timeoutMs);
      const listening = !error || env.DOCKER_TLS_VERIFY || error.startsWith('unexpected answer');
      return listening ? { ok: true, endpoint: dockerHost } : { ok: false, reason: `DOCKER_HOST=${dockerHost}: ${error}` };
    }
    // ssh:// and npipe:// cannot be checked cheaply: let testcontainers try.
    return { ok: true, endpoint: dockerHost };
  }
  const candidates = [
    '/var/run/docker.sock',
    ...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, 'docker.sock')] : []),
    join(homedir(), '.docker', 'run', 'docker.sock'),
    join(homedir(), '.docker', 'desktop', 'docker.sock'),
  ];
  const tried: string[] = [];
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    const error = await ping({ path }, timeoutMs);
    if (!error) return { ok: true, endpoint: `unix://${path}` };
    tried.push(`${path}: ${error}`);
  }
  return {
    ok: false,
    reason: tried.length
      ? `no container runtime answers (${tried.join('; ')})`
      : `no container runtime: DOCKER_HOST is unset and there is no Docker socket (${candidates.join(', ')})`,
  };
}
