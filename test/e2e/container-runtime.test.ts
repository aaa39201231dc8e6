/** The cheap check that decides whether the container suites run or skip (it runs everywhere: no runtime needed). */
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';
import { probeContainerRuntime } from '../../src/harness/container-runtime.ts';

const scratch = scratchDirs('runtime-probe');
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A fake Docker API on a Unix socket that answers every request with `response` (or never, when null). */
async function fakeDaemon(response: string | null): Promise<string> {
  const path = join(scratch(), 'docker.sock');
  const server = createServer((socket) => {
    socket.on('data', () => {
      if (response !== null) socket.end(response);
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
}

describe('probeContainerRuntime', () => {
  it('finds a daemon that answers /_ping at DOCKER_HOST', async () => {
    const path = await fakeDaemon('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK');
    expect(await probeContainerRuntime({ DOCKER_HOST: `unix://${path}` })).toEqual({ ok: true, endpoint: `unix://${path}` });
  });

  it.each([
    { name: 'an error status', response: 'HTTP/1.1 500 Internal Server Error\r\n\r\n', reason: 'unexpected answer: HTTP/1.1 500' },
    { name: 'no answer', response: null, reason: 'no answer within 100 ms' },
  ])('refuses a socket that gives $name', async ({ response, reason }) => {
    const path = await fakeDaemon(response);
    const probe = await probeContainerRuntime({ DOCKER_HOST: `unix://${path}` }, 100);
    expect(probe.ok).toBe(false);
    if (!probe.ok) expect(probe.reason).toContain(reason);
  });

  it('says why when DOCKER_HOST points nowhere or is not a URL', async () => {
    const missing = await probeContainerRuntime({ DOCKER_HOST: `unix://${join(scratch(), 'none.sock')}` });
    expect(missing).toMatchObject({ ok: false, reason: expect.stringContaining('ENOENT') });
    expect(await probeContainerRuntime({ DOCKER_HOST: 'not a url' })).toMatchObject({ ok: false, reason: expect.stringContaining('not a URL') });
  });
});
