/** Waiting in tests for something another process or an event loop turn will do. */

export interface UntilOptions {
  /** Default 30 s: generous, because a loaded CI machine is slow, and a pass never waits for it. */
  timeoutMs?: number;
  /** What to show when the wait fails, such as a child process's output so far. */
  context?: () => string;
  /** A reason to give up at once rather than at the timeout, such as "kubectl exited with 1". */
  giveUpIf?: () => string | undefined;
}

/** Polls until `probe` returns a truthy value and returns it; on timeout, throws naming what it waited for. */
export async function until<T>(what: string, probe: () => T | undefined | null | false, options: UntilOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const value = probe();
    if (value) return value;
    const reason = options.giveUpIf?.() ?? (Date.now() > deadline ? 'timed out' : undefined);
    if (reason !== undefined) {
      const context = options.context?.();
      throw new Error(`${reason} waiting for ${what}${context ? `\n${context}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
