/**
 * A kubeconfig pointing at something that is not a Kubernetes API server (a plain web server, a server answering
 * text, a list of the wrong shape), or at one that keeps failing: every command that talks to the cluster says so in
 * one line and exits 2, never a stack trace, an HTML page over many lines, "8 node(s)" counted from the letters of a
 * string, or "the Lease is free" read from a 404 page.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';
import { runCliAsync, type CliResult } from '../helpers/cli.ts';

const scratch = scratchDirs('wrong-server');

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

const HTML_404 = '<!DOCTYPE HTML>\n<html lang="en">\n<head>\n<title>Error response</title>\n</head>\n<body>\n<h1>Error response</h1>\n<p>Error code: 404</p>\n</body>\n</html>\n';

const SERVERS: Record<string, Answer> = {
  // What `python3 -m http.server` answers for /api/v1/nodes.
  web: (_req, res) => void res.writeHead(404, { 'content-type': 'text/html;charset=utf-8' }).end(HTML_404),
  notJson: (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('not json at all'),
  // Retry-After 0: the CLI's five attempts take no wall-clock time.
  failing: (_req, res) => void res.writeHead(500, { 'content-type': 'text/html', 'retry-after': '0' }).end('<html><head><title>500 Internal Server Error</title></head>\n<body>\n<p>oops</p>\n</body></html>'),
  // What an API server answers for a path it does not serve: a server URL with a wrong path (a Rancher-style proxy
  // https://host/k8s/clusters/WRONG), or another service that speaks Kubernetes' Status.
  unserved: (_req, res) =>
    void res
      .writeHead(404, { 'content-type': 'application/json' })
      .end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the server could not find the requested resource', reason: 'NotFound', details: {}, code: 404 })),
  badShape: (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'NodeList', apiVersion: 'v1', items: 'notalist' })),
};

const servers: Server[] = [];
const kubeconfigs: Record<string, string> = {};

beforeAll(async () => {
  const dir = scratch();
  for (const [name, answer] of Object.entries(SERVERS)) {
    const server = createServer(answer);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    servers.push(server);
    const { port } = server.address() as AddressInfo;
    const path = join(dir, `${name}.kubeconfig`);
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:${port}\n    insecure-skip-tls-verify: true`,
        'users:\n- name: u\n  user:\n    token: t',
        'contexts:\n- name: c\n  context:\n    cluster: c\n    user: u',
        'current-context: c',
      ].join('\n'),
    );
    kubeconfigs[name] = path;
  }
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
});

function runCli(args: string[]): Promise<CliResult> {
  const home = scratch();
  return runCliAsync(args, home, { HOME: home });
}

/** One `error:` line (and at most a hint), nothing of the server's page, no stack trace. */
function refusedInOneLine(result: CliResult, expected: RegExp): void {
  expect(result.code, result.stderr + result.stdout).toBe(2);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(expected);
  expect(lines.slice(1).every((l) => l.startsWith('hint: ')), result.stderr).toBe(true);
  expect(result.stderr + result.stdout).not.toMatch(/<|\n\s+at .+:\d+:\d+\)?/);
}

const NOT_API = /^error: (cluster c: )?the server at http:\/\/127\.0\.0\.1:\d+ is not a Kubernetes API server \(/;

describe('a kubeconfig pointing at a plain web server', () => {
  it.each(['run --dry-run', 'run', 'doctor', 'reset --yes', 'status', 'scan'])('%s: one line naming the server and the 404, exit 2', async (command) => {
    const result = await runCli([...command.split(' '), '--kubeconfig', kubeconfigs.web!]);
    refusedInOneLine(result, NOT_API);
    expect(result.stderr).toContain('(HTTP 404 for /api/v1/nodes)');
  });

  it('unstick does not take the 404 page for a free Lease', async () => {
    const result = await runCli(['unstick', '--kubeconfig', kubeconfigs.web!]);
    refusedInOneLine(result, NOT_API);
    expect(result.stderr).toContain('HTTP 404 for /apis/coordination.k8s.io/v1/namespaces/os-patch/leases/');
    expect(result.stdout).not.toContain('free');
  });
});

describe("a server answering Kubernetes' 404 for a path it does not serve (not a missing object)", () => {
  it.each(['run --dry-run', 'doctor', 'reset --yes', 'unstick'])('%s: one line naming the server and the path, exit 2', async (command) => {
    const result = await runCli([...command.split(' '), '--kubeconfig', kubeconfigs.unserved!]);
    refusedInOneLine(result, NOT_API);
    expect(result.stderr).toMatch(/\(HTTP 404 for \/(api\/v1\/nodes|apis\/coordination\.k8s\.io\/v1\/namespaces\/os-patch\/leases\/patchpilot-c)\)/);
    expect(result.stdout).not.toContain('free');
  });
});

describe('a server answering 200 with a body that is not JSON', () => {
  it.each(['run --dry-run', 'unstick'])('%s: one line, exit 2', async (command) => {
    const result = await runCli([...command.split(' '), '--kubeconfig', kubeconfigs.notJson!]);
    refusedInOneLine(result, NOT_API);
    expect(result.stderr).toContain('an answer that is not JSON');
  });
});

describe('a server answering a list whose items are not a list of objects', () => {
  it.each(['run --dry-run', 'doctor', 'status'])('%s: refused instead of counting letters as nodes', async (command) => {
    const result = await runCli([...command.split(' '), '--kubeconfig', kubeconfigs.badShape!]);
    refusedInOneLine(result, NOT_API);
    expect(result.stderr).toContain('a list answer whose items are not objects with metadata.name for /api/v1/nodes');
    expect(result.stdout).not.toMatch(/node\(s\)|on node \?/);
  });
});

describe('an API server that keeps answering 500', () => {
  it.each(['run', 'doctor', 'unstick', 'status'])('%s: one line after the retries, exit 2 (nothing was changed)', async (command) => {
    const result = await runCli([...command.split(' '), '--kubeconfig', kubeconfigs.failing!]);
    refusedInOneLine(result, /^error: .*after 5 attempt\(s\): (list nodes|get leases "patchpilot-c" in namespace os-patch): HTTP 500: an HTML page titled "500 Internal Server Error"$/);
  });
});
