/**
 * Notifications: a receiver on 127.0.0.1 that checks every signature and counts deliveries while it is down (503,
 * garbage, dropped connections), slow, or refusing; retries with backoff in virtual time; dead letters in the store;
 * no secret in any log line; the events of a real simulated run become run.started, node.failed and run.finished.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/engine/clock.ts';
import { Notifier, SlackWebhookSink, WebhookSink, sinksFromEnv, type FetchLike, type Notification } from '../../src/service/notify.ts';
import type { RunEvent } from '../../src/service/progress.ts';
import { runScenario } from '../../src/sim/runner.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { openStore, type Store } from '../../src/store/index.ts';

const SECRET = 'whsec-3f9a7c1e5b2d4f60';

interface Received {
  verified: boolean;
  delivery: string;
  event: string;
  body: Notification;
}

/** A webhook receiver that verifies the HMAC as its docs would tell a user to, and answers as `answer` says. */
async function receiver(answer: (n: number, req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; received: Received[]; attempts: number; close(): Promise<void> }> {
  const state = { received: [] as Received[], attempts: 0 };
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      state.attempts += 1;
      const timestamp = String(req.headers['x-patchpilot-timestamp'] ?? '');
      const given = Buffer.from(String(req.headers['x-patchpilot-signature'] ?? ''));
      const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(`${timestamp}.${raw}`).digest('hex')}`);
      const verified = given.length === expected.length && timingSafeEqual(given, expected);
      answer(state.attempts, req, res);
      // Counted as received only when the receiver answered, and with 2xx (not a dropped or held connection).
      if (res.writableEnded && res.statusCode >= 200 && res.statusCode < 300) {
        state.received.push({ verified, delivery: String(req.headers['x-patchpilot-delivery']), event: String(req.headers['x-patchpilot-event']), body: JSON.parse(raw) as Notification });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hooks/patchpilot`,
    get received() {
      return state.received;
    },
    get attempts() {
      return state.attempts;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** fetch, counting requests in flight, so virtual time only jumps while nothing is on the wire. */
function countingFetch(): { fetch: FetchLike; inFlight: () => number } {
  let active = 0;
  return {
    inFlight: () => active,
    fetch: async (url, init) => {
      active += 1;
      try {
        const response = await fetch(url, init);
        const text = await response.text();
        return { status: response.status, text: async () => text };
      } finally {
        active -= 1;
      }
    },
  };
}

/** Drives the notifier to idle: real I/O runs; the virtual clock jumps to the next timer whenever none is in flight. */
async function drain(notifier: Notifier, clock: VirtualClock, inFlight: () => number): Promise<void> {
  let done = false;
  const idle = notifier.idle().then(() => (done = true));
  while (!done) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (!done && inFlight() === 0) clock.advanceToNext();
  }
  await idle;
}

const stores: Store[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  for (const s of stores.splice(0)) s.close();
});

function note(event: Notification['event'] = 'run.finished'): Omit<Notification, 'id'> {
  return { event, cluster: 'prod', runId: 'run-1', at: '2026-12-06T00:00:00.000Z', text: 'run run-1 of cluster prod finished SUCCEEDED', details: { outcome: 'succeeded' } };
}

describe('webhook notifications through an outage', () => {
  it('retries with backoff until the receiver is back; every delivery is signed; each notification arrives once', { timeout: 30_000 }, async () => {
    // Down for the first five requests: 503, garbage with 502, a dropped connection, 503, 500; then up.
    const rx = await receiver((n, _req, res) => {
      if (n === 1) return void res.writeHead(503).end('Service Unavailable');
      if (n === 2) return void res.writeHead(502, { 'content-type': 'text/html' }).end('<html>\u0000\u0001garbage');
      if (n === 3) return void res.socket?.destroy();
      if (n <= 5) return void res.writeHead(n === 4 ? 503 : 500).end();
      res.writeHead(204).end();
    });
    closers.push(rx.close);
    const clock = new VirtualClock(Date.parse('2026-12-06T00:00:00Z'));
    const store = openStore(':memory:');
    stores.push(store);
    const logs: string[] = [];
    const wire = countingFetch();
    const notifier = new Notifier({ sinks: [new WebhookSink(rx.url, SECRET)], clock, store, fetch: wire.fetch, log: (l) => logs.push(l), retry: { attempts: 8, baseMs: 1000, maxMs: 60_000 } });
    const started = clock.now();
    notifier.notify(note('run.started'));
    await drain(notifier, clock, wire.inFlight);
    // Five failures then success: waits of 1 + 2 + 4 + 8 + 16 s in virtual time, no wall-clock sleeping.
    expect(clock.now() - started).toBe(31_000);
    expect(rx.attempts).toBe(6);
    expect(rx.received).toHaveLength(1);
    expect(rx.received[0]).toMatchObject({ verified: true, event: 'run.started', body: { event: 'run.started', cluster: 'prod', runId: 'run-1' } });
    expect(store.deadLetters()).toEqual([]);

    notifier.notify(note('node.failed'));
    notifier.notify(note('run.finished'));
    await drain(notifier, clock, wire.inFlight);
    expect(rx.received.map((r) => r.event)).toEqual(['run.started', 'node.failed', 'run.finished']);
    expect(rx.received.every((r) => r.verified)).toBe(true);
    expect(new Set(rx.received.map((r) => r.delivery)).size).toBe(3);
    expect(logs.length).toBeGreaterThanOrEqual(5);
    for (const line of logs) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain('/hooks/patchpilot');
    }
    expect(logs[2]).toMatch(/run\.started to webhook http:\/\/127\.0\.0\.1:\d+: attempt 3 failed \((ECONNRESET|UND_ERR_SOCKET|network error|other side closed)\)/);
  });

  it('a receiver that stays down: the notification is dead-lettered with its body, and nothing secret is kept', { timeout: 30_000 }, async () => {
    const rx = await receiver((_n, _req, res) => void res.writeHead(503).end());
    closers.push(rx.close);
    const clock = new VirtualClock(0);
    const store = openStore(':memory:');
    stores.push(store);
    const wire = countingFetch();
    const notifier = new Notifier({ sinks: [new WebhookSink(rx.url, SECRET)], clock, store, fetch: wire.fetch, retry: { attempts: 4, baseMs: 500 } });
    notifier.notify(note());
    await drain(notifier, clock, wire.inFlight);
    expect(rx.attempts).toBe(4);
    const [letter, ...more] = store.deadLetters();
    expect(more).toEqual([]);
    expect(letter).toMatchObject({ event: 'run.finished', attempts: 4, lastError: 'HTTP 503', failedAt: 500 + 1000 + 2000 });
    expect(letter!.sink).toMatch(/^webhook http:\/\/127\.0\.0\.1:\d+$/);
    expect((JSON.parse(letter!.body) as Notification).text).toBe(note().text);
    expect(JSON.stringify(letter)).not.toContain(SECRET);
  });

  it('a 4xx other than 408/429 is not retried; a slow receiver counts as failed after the timeout', { timeout: 30_000 }, async () => {
    let holding: ServerResponse | null = null;
    const rx = await receiver((n, _req, res) => {
      if (n === 1) return void res.writeHead(404).end('no such hook');
      if (n === 2) return void (holding = res); // never answers
      res.writeHead(200).end();
    });
    closers.push(rx.close);
    const clock = new VirtualClock(0);
    const store = openStore(':memory:');
    stores.push(store);
    const wire = countingFetch();
    const notifier = new Notifier({ sinks: [new WebhookSink(rx.url, SECRET)], clock, store, fetch: wire.fetch, retry: { attempts: 3, baseMs: 1000, timeoutMs: 10_000 } });
    notifier.notify(note('node.failed'));
    await drain(notifier, clock, wire.inFlight);
    expect(store.deadLetters()).toMatchObject([{ event: 'node.failed', lastError: 'HTTP 404', attempts: 1 }]);
    expect(rx.attempts).toBe(1);

    notifier.notify(note('run.finished'));
    let done = false;
    const idle = notifier.idle().then(() => (done = true));
    // The receiver holds the request: only the per-attempt timeout (virtual) ends it; then the retry succeeds.
    while (!done) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (!done && (wire.inFlight() === 0 || holding !== null)) {
        holding = null;
        clock.advanceToNext();
      }
    }
    await idle;
    expect(rx.received.map((r) => r.event)).toEqual(['run.finished']);
    expect(store.deadLetters()).toHaveLength(1);
  });
});

describe('Slack incoming webhooks', () => {
  it('posts {text}, and retries a 200 that is not Slack\'s "ok"', { timeout: 30_000 }, async () => {
    const bodies: string[] = [];
    const rx = await receiver((n, req, res) => {
      void req;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(n === 1 ? '<html>maintenance</html>' : 'ok');
    });
    closers.push(rx.close);
    const clock = new VirtualClock(0);
    const url = rx.url.replace('/hooks/patchpilot', '/services/T000/B000/XXXXSECRETXXXX');
    const seen: string[] = [];
    const wire = countingFetch();
    const logs: string[] = [];
    const notifier = new Notifier({
      sinks: [new SlackWebhookSink(url)],
      clock,
      fetch: async (u, init) => {
        bodies.push(init.body);
        seen.push(u);
        return wire.fetch(u, init);
      },
      log: (l) => logs.push(l),
      retry: { attempts: 3, baseMs: 1000 },
    });
    notifier.notify(note('node.failed'));
    await drain(notifier, clock, wire.inFlight);
    expect(rx.attempts).toBe(2);
    expect(JSON.parse(bodies[1]!)).toEqual({ text: `:x: ${note().text}` });
    expect(logs.join('\n')).not.toContain('XXXXSECRETXXXX');
    expect(logs[0]).toMatch(/without Slack's "ok"/);
  });
});

describe('sinks from the environment', () => {
  it('needs a signing secret for the webhook, and http(s) URLs', () => {
    expect(sinksFromEnv({ PATCHPILOT_WEBHOOK_URL: 'https://example.test/hook' }).problems).toEqual([expect.stringMatching(/PATCHPILOT_WEBHOOK_SECRET must be set/)]);
    expect(sinksFromEnv({ PATCHPILOT_SLACK_WEBHOOK_URL: 'hooks.slack.com/x' }).problems).toEqual([expect.stringMatching(/must be an http\(s\) URL/)]);
    const ok = sinksFromEnv({ PATCHPILOT_WEBHOOK_URL: 'https://example.test/hook/abc', PATCHPILOT_WEBHOOK_SECRET: SECRET, PATCHPILOT_SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/Z' });
    expect(ok.problems).toEqual([]);
    expect(ok.sinks.map((s) => s.name)).toEqual(['webhook https://example.test', 'slack webhook https://hooks.slack.com']);
  });
});

describe('run events become notifications', () => {
  it('a simulated run with a failing node: run.started, node.failed, run.finished, in order', async () => {
    const scenario = loadScenario('fixtures/scenarios/repo-unreachable.yaml');
    const clock = new VirtualClock(0);
    const sent: Notification[] = [];
    const notifier = new Notifier({
      sinks: [new WebhookSink('http://127.0.0.1:9/unused', SECRET)],
      clock,
      fetch: async (_url, init) => {
        sent.push(JSON.parse(init.body) as Notification);
        return { status: 200, text: async () => '' };
      },
    });
    const events: RunEvent[] = [];
    await runScenario(scenario, { onEvent: (e) => (events.push(e), notifier.observeRun(scenario.clusterName, e)) });
    await notifier.idle();
    expect(sent.map((n) => n.event)).toEqual(['run.started', 'node.failed', 'run.finished']);
    expect(sent[1]).toMatchObject({ cluster: scenario.clusterName, details: { node: 'worker-2', error: { code: 'REPO_UNREACHABLE' } } });
    expect(sent[2]!.text).toMatch(/finished PARTIAL: 3 patched, 1 failed/);
    expect(new Set(sent.map((n) => n.runId)).size).toBe(1);
  });

  it('a run held by the health gate: run.blocked once, with the reason, then it finishes', async () => {
    const scenario = loadScenario('fixtures/scenarios/health-gate-not-ready.yaml');
    const sent: Notification[] = [];
    const notifier = new Notifier({
      sinks: [new WebhookSink('http://127.0.0.1:9/unused', SECRET)],
      clock: new VirtualClock(0),
      fetch: async (_url, init) => {
        sent.push(JSON.parse(init.body) as Notification);
        return { status: 200, text: async () => '' };
      },
    });
    await runScenario(scenario, { onEvent: (e) => notifier.observeRun(scenario.clusterName, e) });
    await notifier.idle();
    expect(sent.map((n) => n.event)).toEqual(['run.started', 'run.blocked', 'run.finished']);
    expect(sent[1]!.text).toMatch(/is blocked: .*worker-3/);
  });
});

describe('patchpilot dead-letters', () => {
  it('lists what could not be delivered, from the database', async () => {
    const { spawnSync } = await import('node:child_process');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { join, resolve } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'patchpilot-dead-letters-'));
    try {
      const store = openStore(join(dir, 'pp.db'));
      const clock = new VirtualClock(Date.parse('2026-12-06T05:00:00Z'));
      const notifier = new Notifier({ sinks: [new WebhookSink('https://hooks.example.test/abc/TOKENPART', SECRET)], clock, store, fetch: async () => ({ status: 410, text: async () => 'gone' }) });
      notifier.notify(note('run.blocked'));
      await notifier.idle();
      store.close();
      const bin = resolve(import.meta.dirname, '../../bin/patchpilot.js');
      const run = spawnSync(process.execPath, [bin, 'dead-letters', '--db', join(dir, 'pp.db')], { encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout.trim()).toBe('2026-12-06T05:00:00.000Z  run.blocked  to webhook https://hooks.example.test: HTTP 410 after 1 attempt(s)');
      expect(run.stdout).not.toContain('TOKENPART');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
