/**
 * Mistakes a user can fix, each with what to do about it: main.ts prints the message and the hint and exits 2, never
 * a stack trace. Kept free of imports so that any command can name them without loading what they are about.
 */
export class UserError extends Error {
  readonly hint: string;

  constructor(message: string, hint: string) {
    super(message);
    this.hint = hint;
  }
}

/** A reason `patchpilot run` cannot start. */
export class RunError extends UserError {
  override readonly name = 'RunError';
}

/** A sandbox that cannot start (its port taken). */
export class SandboxError extends UserError {
  override readonly name = 'SandboxError';
}
